"""Stored trials -> the report's tables and its one sentence per searched axis (no invented text)."""

from __future__ import annotations

import statistics
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from search._format import fmt
from search.goal import Bound
from search.records import StudyRecord, curve, member_label
from search.report._render import Block, Para, Table
from search.sources import source_text
from search.trials import feasible, metric_of, trial_seconds

TOP = 10


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def answer(best: FrozenTrial, metric: str, evaluated: dict | None) -> Para:
    """The report's first sentence: the best trial, its value, and its test accuracy when the
    best config was retrained (`--evaluate`)."""
    parts = [("The best trial is ", False), (f"#{best.number}", True),
             (f", {metric} {fmt(best.values[0])}", False)]
    if evaluated is not None:
        parts += [("; retrained from scratch it reaches ", False),
                  (f"test accuracy {evaluated['test_accuracy']:.4f}", True)]
    parts.append((". Its config follows; then what each searched axis did.", False))
    return Para(parts)


def summary_table(record: StudyRecord, facts: dict, trials: list[FrozenTrial], evaluated: dict | None = None) -> Table:
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    compute = sum(trial_seconds(t) for t in trials)
    states = ", ".join(f"{n} {s.lower()}" for s, n in facts["states"].items() if n)
    rows = [
        ["dataset", source_text(record.dataset)],
        ["description", record.description or "-"],
        ["search space", "; ".join(f"{k}: {v}" for k, v in record.space.items()) or "-"],
        ["sampler / pruner", f"{record.sampler} / {record.pruner}"],
        *([["definition changed", "; ".join(record.changes)]] if record.changes else []),
        ["goal", str(facts["goal"])],
        ["trials", f"{facts['n_trials']}: {states}"],
        ["wall time", f"{duration(wall)} (training and evaluation inside trials: {duration(compute)})"],
        ["training images per trial", fmt(record.train_images())],
        ["best value", f"{fmt(facts['best_value'])} (trial #{facts['best_trial']})"
         if facts["best_value"] is not None else "-"],
        *([["test accuracy (best config retrained)", f"{evaluated['test_accuracy']:.4f}"]] if evaluated else []),
    ]
    return Table(["", ""], rows)


def top_table(ranked: list[FrozenTrial], metrics: list[str], bounds: tuple[Bound, ...] = ()) -> Table:
    """The given trials (best first) with every objective, the metrics of the study's floors
    and ceilings, and whether they meet them."""
    names = sorted({k for t in ranked for k in t.params})
    bounded = [m for m in dict.fromkeys(b.metric for b in bounds) if m not in metrics]
    constrained = any(t.constraints for t in ranked)
    header = ["#", *metrics, *bounded, *(["meets bounds"] if constrained else []), "epochs run",
              "train loss sum (first \u2192 last epoch)", "val loss", "seconds", *names]
    rows = []
    for t in ranked:
        sums, val_loss = curve(t, "train_loss_sum"), curve(t, "val_loss")
        rows.append([str(t.number), *[fmt(v) for v in t.values], *[fmt(metric_of(t, m)) for m in bounded],
                     *(["yes" if feasible(t) else "no"] if constrained else []),
                     str(len(sums) or len(t.intermediate_values)),
                     f"{fmt(sums[0])}\u00a0\u2192\u00a0{fmt(sums[-1])}" if sums else "-",  # one unbreakable cell
                     fmt(val_loss[-1]) if val_loss else "-", f"{trial_seconds(t):.1f}",
                     *[fmt(t.params.get(n)) for n in names]])
    return Table(header, rows)


def axis_sentences(trials: list[FrozenTrial], direction: str, metric: str) -> list[Para]:
    """One sentence per sampled axis (per-layer axes one per layer), computed from the trials."""
    names = sorted({k for t in trials for k in t.params})
    if not names:
        return [Para([("no axis was searched: every parameter was fixed", False)], bullet=True)]
    return [Para([(name, True), (": " + _axis_sentence(name, trials, direction, metric) + ".", False)], bullet=True)
            for name in names]


def _axis_sentence(name: str, trials: list[FrozenTrial], direction: str, metric: str) -> str:
    with_axis = [t for t in trials if name in t.params]
    complete = [t for t in with_axis if t.state == TrialState.COMPLETE]
    sign = 1 if direction == "maximize" else -1
    values = sorted({t.params[name] for t in with_axis}, key=_sort_key)
    parts = []
    if len(values) <= 6:
        stats = []
        for v in values:
            done = [t.values[0] for t in complete if t.params[name] == v]
            if done:
                stats.append((statistics.mean(done), v, len(done)))
        if len(stats) >= 2:
            stats.sort(key=lambda s: sign * s[0], reverse=True)
            (m1, v1, n1), (m2, v2, n2) = stats[0], stats[-1]
            parts.append(f"best at {fmt(v1)} (mean {metric} {fmt(m1)} over {n1} completed), "
                         f"worst at {fmt(v2)} ({fmt(m2)} over {n2})")
        elif stats:
            parts.append(f"only {fmt(stats[0][1])} completed (mean {metric} {fmt(stats[0][0])})")
        for v in values:
            n = sum(t.params[name] == v for t in with_axis)
            for state, word in ((TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed")):
                k = sum(t.params[name] == v and t.state == state for t in with_axis)
                if k:
                    parts.append(f"{fmt(v)} {word} in {k} of {n} trials")
    else:
        ranked = sorted(complete, key=lambda t: sign * t.values[0], reverse=True)
        top = ranked[:max(1, len(ranked) // 4)]
        if top:
            lo, hi = min(t.params[name] for t in top), max(t.params[name] for t in top)
            span = [t.params[name] for t in with_axis]
            where = (f"the best of {len(complete)} completed trials has {fmt(lo)}" if len(top) == 1 else
                     f"the best {len(top)} of {len(complete)} completed trials lie in {fmt(lo)}..{fmt(hi)}")
            parts.append(f"{where} (sampled {fmt(min(span))}..{fmt(max(span))})")
        for state, word in ((TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed")):
            xs = [t.params[name] for t in with_axis if t.state == state]
            if xs and complete:
                parts.append(f"{len(xs)} {word} trials had median {fmt(statistics.median(xs))} vs "
                             f"{fmt(statistics.median(t.params[name] for t in complete))} for completed ones")
    return "; ".join(parts) if parts else "no completed trial to compare"


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _of_studies(stored: dict[str, Any]) -> str:
    studies = stored.get("studies", ())
    return f" of {len(studies)} studies ({', '.join(studies)})" if len(studies) > 1 else ""


def ensemble_blocks(stored: dict[str, Any]) -> list[Block]:
    """The ensemble `search ensemble` chose last (StudyRecord.ensemble): a sentence and its members."""
    members = stored["members"]
    best = max(m["test_accuracy"] for m in members)
    text = (f"Greedy selection with replacement on the validation images (Caruana et al. 2004) picked "
            f"{sum(m['weight'] for m in members)} times among the {stored['candidates']} kept checkpoints: "
            f"{len(members)} distinct trials{_of_studies(stored)}, their softmax averaged by weight. Test accuracy ")
    studies = stored.get("studies", ())
    rows = [[member_label(m, studies), str(m["weight"]), fmt(m["val_accuracy"]), fmt(m["test_accuracy"])]
            for m in members]
    rows.append(["ensemble", str(sum(m["weight"] for m in members)), fmt(stored["val_accuracy"]),
                 fmt(stored["test_accuracy"])])
    return [Para([(text, False), (f"{stored['test_accuracy']:.2%}", True),
                  (f" (the best member alone: {best:.2%}); retrain it with `search train --config` of the "
                   "config `search ensemble` wrote.", False)]),
            Table(["trial", "weight", "val_accuracy", "test_accuracy"], rows)]
