"""Enqueue the grid configurations that no mlp-curves* study holds yet into mlp-curves-fill.

    python bench/curves/fill.py --storage sqlite:///runs/curves.db
    search run --study bench/curves/mlp-curves-fill.yaml --storage sqlite:///runs/curves.db --n-trials N

(The first recording ran a second worker on the grid study, whose sampler was seeded with
an offset: GridSampler shuffles its grid by its seed and gives trial k the k-th point, so
that worker walked another order and trained 235 points twice and 235 not at all. Fixed
in search/samplers.py, the grid keeps the study seed (tests/test_grid.py); this filled
the gap in the recorded table.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
sys.path.insert(0, str(ROOT / "bench" / "curves"))

import optuna  # noqa: E402

from search.spec import read_study_file  # noqa: E402
from search.storage import open_storage  # noqa: E402
from search.study import RunOptions, open_study  # noqa: E402
from search.trials import params_of  # noqa: E402

from _common import guarded  # noqa: E402
from table import AXES, grid_configs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", required=True)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    have = set()
    storage = open_storage(args.storage, create=False)  # a bad URL or a missing file: one line, exit 2
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if s.study_name in ("mlp-curves", "mlp-curves-fill"):
            for t in optuna.load_study(study_name=s.study_name, storage=storage).trials:
                have.add(tuple(getattr(params_of(t), a) for a in AXES))
    missing = [c for c in grid_configs() if c not in have]
    study = open_study(read_study_file(str(ROOT / "bench" / "curves" / "mlp-curves-fill.yaml")), args.storage, RunOptions())
    for c in missing:
        study.enqueue_trial(dict(zip(AXES, c, strict=True)), skip_if_exists=True)
    print(f"enqueued {len(missing)} configurations", file=sys.stderr)


if __name__ == "__main__":
    guarded("fill", main)
