"""The benchmark script runs (a smoke test: figures are reported in docs, never asserted)."""

import json
import subprocess
import sys

from conftest import MNIST, ROOT, needs_mnist

pytestmark = needs_mnist


def test_bench_eval_section_runs_and_renders(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--only", "eval",
                        "--results", str(tmp_path / "r.json"), "--out", str(tmp_path / "b.md")],
                       capture_output=True, text=True, timeout=300, env={"SEARCH_DATA_DIR": str(MNIST),
                                                                        "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results["eval"]) >= {"MLP 784-100-10", "LeNet-5"}
    md = (tmp_path / "b.md").read_text()
    assert "## 2. Evaluation throughput" in md and "Machine:" in md
    for name, x in results["eval"].items():
        if isinstance(x, dict):
            assert f"{x['speedup']:.1f}x" in md
