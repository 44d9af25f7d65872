"""The benchmark script runs (a smoke test: figures are reported in docs, never asserted)."""

import json
import subprocess
import sys

from conftest import MNIST, ROOT, needs_mnist

pytestmark = needs_mnist


def _bench(tmp_path, section: str) -> dict:
    """`bench.py --quick --only SECTION` in its own process; the results it wrote."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--only", section,
                        "--results", str(tmp_path / "r.json"), "--out", str(tmp_path / "b.md")],
                       capture_output=True, text=True, timeout=300, env={"SEARCH_DATA_DIR": str(MNIST),
                                                                        "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return json.loads((tmp_path / "r.json").read_text())


def test_bench_eval_section_runs_and_renders(tmp_path):
    results = _bench(tmp_path, "eval")
    assert set(results["eval"]) >= {"MLP 784-100-10", "LeNet-5"}
    md = (tmp_path / "b.md").read_text()
    assert "## 2. Evaluation throughput" in md and "Machine:" in md
    for x in results["eval"].values():
        if isinstance(x, dict):
            assert f"{x['speedup']:.1f}x" in md


def test_bench_fast99_section_times_both_processes_and_renders(tmp_path):
    f = _bench(tmp_path, "fast99")["fast99"]
    (ours,) = f["ours"]
    assert 0.5 < ours["test_accuracy"] <= 1 and ours["seconds"] > ours["train_seconds"] > 0  # the whole process
    (epoch,) = f["recipe_epochs"]  # one epoch of 2,000 images: far from 99 %, so no speed-up claimed
    assert 0.5 < epoch["test_accuracy"] < 0.99 and f["speedup"] is None and epoch["seconds"] >= epoch["own_elapsed"]
    md = (tmp_path / "b.md").read_text()
    assert "## 9. Time to 99% test accuracy" in md and f"{ours['test_accuracy']:.2%}" in md


def test_bench_augment_section_compares_ours_with_kornia_and_renders(tmp_path):
    results = _bench(tmp_path, "augment")
    a = results["augment"]
    assert len(a["rows"]) == 8 and all(x["ours"] > 0 and x["kornia"] > 0 for x in a["rows"].values())
    md = (tmp_path / "b.md").read_text()
    assert "## 10. Augmentation" in md and results["machines"]["augment"]["cpu"] in md
    for x in a["rows"].values():
        assert f"{x['ours_over_kornia']:.1f}x" in md


def test_bench_scale_runs_workers_on_every_storage_and_growth_beside_plain_optuna(tmp_path):
    """bench/scale.py --quick: simulated workers on PostgreSQL, the proxy and a journal, each study
    exactly its budget; per-trial cost at two study sizes, the service beside plain Optuna; rendered."""
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={"SEARCH_DATA_DIR": str(MNIST),
                                                                        "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())["scale"]
    for kind in ("postgresql", "proxy", "journal"):
        for row in s["workers"][kind].values():
            assert row["exact"] and not row["running_or_waiting"] and not row["duplicates"] and not row["errors"], \
                json.dumps({"storage": kind, **{k: v for k, v in row.items() if "ms" not in k and k != "asks"}})
    for label in ("default (qmc)", "tpe", "random"):
        assert all(x["service"]["ms"] > 0 and x["plain"]["ms"] > 0 for x in s["growth"][label].values())
    assert all(v["rc"] == 0 for part in ("readers", "readers_small") for v in s["growth"][part].values()
               if isinstance(v, dict))
    sys.path.insert(0, str(ROOT / "bench"))
    from render import render

    md = render({"scale": s})
    assert "## 11. Scale" in md and "| proxy | 4 |" in md
