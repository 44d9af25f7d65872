"""Recorded curve studies -> bench/data/mlp-curves.csv.gz, one row per (configuration, seed, epoch).

    python bench/curves/table.py --storage sqlite:///runs/curves.db [--out bench/data/mlp-curves.csv.gz]

Reads every study whose name starts with `mlp-curves` (the grid and its extra-seed runs).
Columns: the searched axes as a study file spells them, `train_size`, then `config_id`
(the same id for the same values in every study), `seed` (the trial's seed: `search
export --trial N` + `search train` retrains exactly that row), `epoch`, `val_accuracy`,
`val_loss`, `train_loss`, `seconds`. A configuration that diverged has one last row with
empty values at the epoch it diverged in.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402

from search.records import StudyRecord, TrialRecord, curve  # noqa: E402
from search.spec import read_study_file  # noqa: E402
from search.storage import open_storage  # noqa: E402
from search.trials import failure_of, params_of  # noqa: E402

from _common import guarded  # noqa: E402

AXES = ("lr", "batch_size", "hidden_size", "n_layers", "activation", "dropout", "optimizer")
VALUES = ("val_accuracy", "val_loss", "train_loss", "seconds")
OUT = ROOT / "bench" / "data" / "mlp-curves.csv.gz"


def grid_configs() -> list[tuple]:
    """Every configuration of the grid, in a fixed order: its index is the config_id."""
    spec = read_study_file(str(ROOT / "bench" / "curves" / "mlp-curves.yaml"))
    grid = spec.grid()
    configs = [()]
    for axis in AXES:
        configs = [c + (v,) for c in configs for v in grid[axis]]
    return sorted(configs, key=lambda c: tuple(str(v) for v in c))


def rows(url: str):
    ids = {c: i for i, c in enumerate(grid_configs())}
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url, create=False)  # a bad URL or a missing file: one line, exit 2
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if not summary.study_name.startswith("mlp-curves"):
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        train_size = StudyRecord.of(study).train_size
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.FAIL)):
            failure = failure_of(t)
            if t.state.name == "FAIL" and (failure is None or not failure.counts):
                continue  # interrupted or killed: retried elsewhere in the study
            p = params_of(t)
            key = tuple(getattr(p, a) for a in AXES)
            base = {a: getattr(p, a) for a in AXES} | {"train_size": train_size, "config_id": ids[key],
                                                         "seed": TrialRecord.of(t).seed}
            series = {"val_accuracy": curve(t, "val_accuracy"), "val_loss": curve(t, "val_loss"),
                      "train_loss": curve(t, "train_loss"), "seconds": curve(t, "epoch_seconds")}
            n = len(series["val_accuracy"])
            for e in range(n):
                yield base | {"epoch": e + 1} | {k: series[k][e] for k in VALUES}
            if t.state.name == "FAIL":
                yield base | {"epoch": n + 1} | {k: "" for k in VALUES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    out = sorted(rows(args.storage), key=lambda r: (r["config_id"], r["seed"], r["epoch"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out, "wt", newline="") as f:
        writer = csv.DictWriter(f, [*AXES, "train_size", "config_id", "seed", "epoch", *VALUES])
        writer.writeheader()
        writer.writerows(out)
    configs = {r["config_id"] for r in out}
    print(f"wrote {args.out}: {len(out)} rows, {len(configs)} configurations", file=sys.stderr)


if __name__ == "__main__":
    guarded("table", main)
