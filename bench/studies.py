"""Tabulate what the shipped studies reached on this machine, next to the hand-tuned figures.

    python bench/studies.py --storage sqlite:///runs/results.db [--tests tests.json] > docs/results.md
    python bench/studies.py --storage sqlite:///runs/results.db --json     # the same rows as JSON

`--tests` takes {"study": {"test_accuracy": ...}} from `search train --json` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402

from search.storage import open_storage  # noqa: E402
from search.trials import best_or_none, study_facts  # noqa: E402

from _common import emit_json, guarded  # noqa: E402

HAND = {
    "quickstart": "-",
    "batch-vs-lr": "(reported as losses, see the study's report)",
    "optimizer-and-depth": "95.7 % -> 98.4 %",
    "mlp-grid": "97.9 % (81 runs, hours on a GPU; lr 1e-3, hidden 200, epochs 10, batch 64)",
    "mlp-grid-tpe": "97.9 % (the grid's best)",
    "mlp-depth-activation-dropout": "98.36 % validation (3 x 200, dropout 0.2, lr 5e-4, batch 64, 20 epochs)",
    "two-layer-sgd": "0.87 (numerical gradients, an hour per run)",
    "lenet5-vs-mlp": "LeNet-5 99.03 %, regularised MLP 99.23 % test",
    "best-mlp": "aim >= 98.5 % test",
    "best-cnn": "aim >= 99.5 % test",
    "fashion-mlp": "~89 % is typical for an MLP",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", required=True)
    ap.add_argument("--tests", type=Path)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a Markdown table")
    args = ap.parse_args()
    tests = json.loads(args.tests.read_text()) if args.tests else {}
    storage = open_storage(args.storage, create=False)  # a bad URL or a missing file: one line, exit 2
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        facts = study_facts(study)
        trials = study.get_trials(deepcopy=False)
        starts = [t.datetime_start for t in trials if t.datetime_start]
        ends = [t.datetime_complete for t in trials if t.datetime_complete]
        wall = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else 0
        s = facts["states"]
        best = best_or_none(study)
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (best.params if best else {}).items())
        test = tests.get(summary.study_name, {}).get("test_accuracy")
        rows.append({"study": summary.study_name, "states": s, "n_trials": facts["n_trials"], "wall_minutes": wall,
                     "best_value": facts["best_value"], "best_params": best.params if best else {},
                     "test_accuracy": test, "by_hand": HAND.get(summary.study_name, "-"), "params_text": params})
    if args.json:
        emit_json(rows)
        return
    print("| study | trials (complete / pruned / failed) | wall time | best validation | best params | "
          "test (search train) | by hand |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        s, test, best = r["states"], r["test_accuracy"], r["best_value"]
        print(f"| {r['study']} | {r['n_trials']} ({s['COMPLETE']} / {s['PRUNED']} / {s['FAIL']}) | "
              f"{r['wall_minutes']:.1f} min | {'-' if best is None else f'{best:.4f}'} | {r['params_text']} | "
              f"{'-' if test is None else f'{test:.2%}'} | {r['by_hand']} |")


if __name__ == "__main__":
    guarded("studies", main)
