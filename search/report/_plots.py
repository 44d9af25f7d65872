"""Stored trials -> PNG plots (matplotlib, headless). Each returns False when there is nothing to draw."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from optuna.visualization.matplotlib import plot_param_importances  # noqa: E402

from search import _optuna  # noqa: E402
from search.records import StudyRecord, curve  # noqa: E402
from search.report._stats import fmt as _fmt  # noqa: E402
from search.trials import best_first, best_or_none, feasible, metric_of, pareto_front, primary, ranked  # noqa: E402


def save(fig, path: Path, tight: bool = True) -> bool:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def _finish(fig, ax, xlabel: str, ylabel: str, path: Path, legend: str = "best") -> bool:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)
    return save(fig, path)


def plot_history(study, trials, metric, path) -> bool:
    """Each trial's `metric` after its last epoch and the best so far (among trials meeting
    the study's bounds). Not Optuna's plot_optimization_history: that one leaves out pruned
    trials, which here show where they were stopped."""
    def value(t):
        return primary(t) if t.state == TrialState.COMPLETE else metric_of(t, metric)

    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and value(t) is not None]
    if not done:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    comp = [t for t in done if t.state == TrialState.COMPLETE]
    pruned = [t for t in done if t.state == TrialState.PRUNED]
    ax.scatter([t.number for t in comp], [value(t) for t in comp], label="complete", color="tab:blue", zorder=3)
    ax.scatter([t.number for t in pruned], [value(t) for t in pruned],
               label="pruned (last epoch)", color="tab:orange", marker="x", zorder=3)
    ok = [t for t in comp if feasible(t)]
    if ok:
        better = max if best_first(study) < 0 else min
        xs, best, running = [], [], None
        for t in sorted(ok, key=lambda t: t.number):
            running = value(t) if running is None else better(running, value(t))
            xs.append(t.number)
            best.append(running)
        last = max(t.number for t in done)
        if xs[-1] < last:  # the best so far holds to the last trial
            xs.append(last)
            best.append(running)
        ax.step(xs, best, where="post", color="tab:green", label="best so far" + (
            " (meeting the bounds)" if any(t.constraints for t in comp) else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers are whole
    return _finish(fig, ax, "trial", metric, path)


def plot_tradeoff(study, trials, metric, path) -> bool:
    """Two metrics of every complete trial: the first two objectives with their Pareto front,
    or a cost objective against the metric of its floor/ceiling, the bound drawn."""
    names = study.metric_names or [metric]
    bounds = StudyRecord.of(study).bounds
    if len(names) >= 2:
        x, y = names[1], names[0]
    elif bounds:
        x, y = names[0], bounds[0].metric
    else:
        return False
    def point(t) -> tuple[float, float] | None:  # None where either metric was not recorded
        px, py = metric_of(t, x), metric_of(t, y)
        return None if px is None or py is None else (px, py)

    pts = [(p, t) for t in trials if t.state == TrialState.COMPLETE and (p := point(t)) is not None]
    if not pts:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for ok, color, marker, label in ((True, "tab:blue", "o", "complete"),
                                     (False, "tab:grey", "x", "complete, misses a bound")):
        sel = [p for p, t in pts if feasible(t) == ok]
        if sel:
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], zorder=3, color=color, marker=marker, label=label)
    front = pareto_front(study)
    if front:
        fx = sorted(p for t in front if (p := point(t)) is not None)
        ax.step([p[0] for p in fx], [p[1] for p in fx], where="post", color="tab:green", lw=2,
                label=f"Pareto front ({len(front)})")
    best = best_or_none(study)
    if best is not None and (p := point(best)) is not None:
        ax.scatter([p[0]], [p[1]], s=140, facecolors="none", edgecolors="tab:green", lw=2, zorder=4,
                   label=f"exported (#{best.number})")
    for bound in bounds:
        if bound.metric == y:
            ax.axhline(bound.value, color="tab:red", ls="--", lw=1, label=str(bound))
    return _finish(fig, ax, x, y, path)


def plot_curves(study, trials, metric, path) -> bool:
    """Per-epoch curves. Not Optuna's plot_intermediate_values: it draws every trial alike,
    and here pruned trials are dashed and the best trial is bold; when the early epochs
    stretch the axis, an inset zooms on the last epochs of the best few."""
    name = metric if metric in ("val_accuracy", "val_loss") else "val_accuracy"  # a per-epoch metric
    curves = [t for t in trials if curve(t, name)]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    best_trial = best_or_none(study)
    best = best_trial.number if best_trial else None
    for t in curves:
        ys = curve(t, name)
        steps = list(range(1, len(ys) + 1))
        if t.number == best:
            ax.plot(steps, ys, color="tab:green", lw=2.5, zorder=4, label=f"best (#{best})")
        elif t.state == TrialState.PRUNED:  # a trial pruned after one epoch is one point: a dot, not nothing
            ax.plot(steps, ys, color="tab:orange", ls="--", alpha=0.6, marker="." if len(ys) == 1 else None)
        else:
            ax.plot(steps, ys, color="tab:blue", alpha=0.5)
    ax.plot([], [], color="tab:orange", ls="--", label="pruned")
    ax.plot([], [], color="tab:blue", label="complete")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    zoomed = _zoom_on_the_best(ax, study, curves, name)
    return _finish(fig, ax, "epoch", name, path, legend="lower right" if zoomed else "best")


def _zoom_on_the_best(ax, study, curves, name: str, few: int = 3) -> bool:
    """An inset with the last epochs of the `few` best complete trials, when their final
    values span less than a fifth of the axis (they would overlap in one line); False when
    there is none."""
    complete = [t for t in curves if t.state == TrialState.COMPLETE]
    top = sorted(complete, key=lambda t: best_first(study) * curve(t, name)[-1])[:few]
    if len(top) < 2:
        return False
    finals = [curve(t, name)[-1] for t in top]
    everything = [y for t in curves for y in curve(t, name)]
    spread, span = max(finals) - min(finals), max(everything) - min(everything)
    epochs = max(len(curve(t, name)) for t in top)
    if span == 0 or spread > span / 5 or epochs < 2:
        return False
    inset = ax.inset_axes([0.27, 0.12, 0.4, 0.45])  # clear of the legend, lower right
    start = max(1, epochs - 4)
    for t in top:
        ys = curve(t, name)
        xs = [i for i in range(start, len(ys) + 1)]
        inset.plot(xs, ys[start - 1:], color="tab:green" if t is top[0] else "tab:blue", lw=1.5,
                   marker="o", ms=3)
        inset.annotate(f"#{t.number}", (xs[-1], ys[-1]), fontsize=7, xytext=(3, 0), textcoords="offset points")
    pad = max(spread * 0.3, 1e-4)
    tail = [y for t in top for y in curve(t, name)[start - 1:]]
    inset.set_ylim(min(tail) - pad, max(tail) + pad)
    inset.xaxis.set_major_locator(MaxNLocator(integer=True))
    inset.tick_params(labelsize=7)
    inset.set_title(f"the best {len(top)}, last epochs", fontsize=8)
    inset.grid(alpha=0.3)
    return True


PLOT_SAMPLE = 5_000  # trials a plot draws at most (of a 100,000-trial study: a readable plot, in seconds)
KEEP_BEST = 100  # the best complete trials are always among them


def plot_sample(study, trials: list) -> list:
    """The trials the plots draw: all of them up to PLOT_SAMPLE; beyond, the KEEP_BEST best
    and the Pareto front, and others evenly spaced by number (the history keeps its shape)."""
    if len(trials) <= PLOT_SAMPLE:
        return trials
    keep = {t.number for t in ranked(study, KEEP_BEST)} | {t.number for t in pareto_front(study)}
    rest = [t for t in trials if t.number not in keep]
    others = min(max(PLOT_SAMPLE - len(keep), 0), len(rest))
    keep |= {rest[int(i * len(rest) / others)].number for i in range(others)}
    return [t for t in trials if t.number in keep]


def _study_of(study, trials: list):
    """An in-memory study holding `trials` (Optuna's importance evaluators read a study whole)."""
    copy = optuna.create_study(directions=study.directions)
    copy.add_trials(trials)
    return copy


def plot_importances(study, trials, metric, path) -> bool:
    """Optuna's own importance plot (the default PED-ANOVA evaluator), on the plots' sample."""
    if len(trials) < len(study.get_trials(deepcopy=False)):
        study = _study_of(study, trials)
    try:
        with _optuna.quiet_experimental(), warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # "too few trials": equal importances say nothing
            target = (lambda t: t.values[0]) if len(study.directions) > 1 else None  # the first objective
            if not optuna.importance.get_param_importances(study, target=target):
                return False
            ax = plot_param_importances(study, target=target, target_name=metric)
    except Exception:  # too few trials, or a single-valued space: nothing to rank
        plt.close("all")
        return False
    ax.set_title("")
    return save(ax.figure, path)


def _sampled(trials):
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    names = sorted({k for t in complete for k in t.params})
    return complete, names


def _numeric(values: list[Any]) -> tuple[list[float], list[str] | None]:
    """Values on an axis: numbers as they are, others as category indices (with labels)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], None
    labels = sorted({str(v) for v in values})
    return [float(labels.index(str(v))) for v in values], labels


def plot_slices(study, trials, metric, path) -> bool:
    """Value against each parameter. Not Optuna's plot_slice: it draws a grid's lr choices
    as evenly spaced categories, where a log axis shows their real spacing."""
    complete, names = _sampled(trials)
    if not complete or not names:
        return False
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols + 1, 3 * rows), squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, names, strict=False):
        pts = [t for t in complete if name in t.params]
        xs, labels = _numeric([t.params[name] for t in pts])
        dots = ax.scatter(xs, [primary(t) for t in pts], c=[t.number for t in pts], cmap="viridis", s=18,
                          vmin=0, vmax=max(t.number for t in complete))
        if labels:
            ax.set_xticks(range(len(labels)), labels, rotation=30)
        elif _is_log(study, name, xs):
            ax.set_xscale("log")
        elif all(float(x).is_integer() for x in xs):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # n_layers 1, 2, 3: not 1.2, 1.4
        ax.set_title(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    key = fig.colorbar(dots, ax=axes.ravel().tolist(), label="trial number", shrink=0.8)  # the dots' colour
    key.locator = MaxNLocator(integer=True)  # trials are whole numbers
    key.update_ticks()
    return save(fig, path, tight=False)  # the constrained layout keeps titles off the tick labels


def _is_log(study, name, values=None) -> bool:
    """A log-uniform range, or positive choices spanning two orders of magnitude (lr grids)."""
    if values is None:
        values = [t.params[name] for t in study.get_trials(deepcopy=False) if name in t.params]
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if nums and len(nums) == len(values) and min(nums) > 0 and max(nums) / min(nums) >= 100:
        return True
    for t in study.get_trials(deepcopy=False):
        d = t.distributions.get(name)
        if d is not None:
            return bool(getattr(d, "log", False))
    return False


def plot_parallel(study, trials, metric, path) -> bool:
    """Parallel coordinates. Not Optuna's plot_parallel_coordinate: same reason as the slices
    (log scale for lr grids given as choices), and its colour bar does not fit a 7-inch figure."""
    complete, names = _sampled(trials)
    if len(complete) < 2 or not names:
        return False
    axes_names = [*names, metric]
    cols, categories = [], []
    for name in names:
        xs, labels = _numeric([t.params.get(name, float("nan")) for t in complete])
        if labels is None and _is_log(study, name):
            xs = [math.log10(x) for x in xs]
        cols.append(xs)
        categories.append(labels)
    cols.append([t.values[0] for t in complete])
    data = np.array(cols, dtype=float)
    lo, hi = np.nanmin(data, 1, keepdims=True), np.nanmax(data, 1, keepdims=True)
    norm = (data - lo) / np.where(hi > lo, hi - lo, 1)
    fig, ax = plt.subplots(figsize=(1.6 * len(axes_names) + 2, 4))
    values = data[-1]
    cmap = plt.get_cmap("viridis")
    vmin, vmax = values.min(), values.max()
    for j in np.argsort(-best_first(study) * values):
        shade = (values[j] - vmin) / (vmax - vmin) if vmax > vmin else 1.0
        ax.plot(range(len(axes_names)), norm[:, j], color=cmap(shade), alpha=0.7)
    ax.set_xticks(range(len(axes_names)), [n + (" (log)" if _is_log(study, n) else "") for n in axes_names],
                  rotation=20)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    for x, name in enumerate(axes_names):
        ax.axvline(x, color="grey", lw=0.5)
        labels = categories[x] if x < len(names) else None
        if labels is not None:  # a choice: each value by name, where its lines cross the axis
            for k, label in enumerate(labels):
                at = k / (len(labels) - 1) if len(labels) > 1 else 0.5
                ax.text(x + 0.04, at, label, ha="left", va="center", fontsize=8,
                        bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
            continue
        low, high = lo[x, 0], hi[x, 0]
        if x < len(names) and _is_log(study, name):
            low, high = 10 ** low, 10 ** high
        ax.text(x, -0.06, _fmt(float(low), 3), ha="center", va="top", fontsize=8)
        ax.text(x, 1.06, _fmt(float(high), 3), ha="center", va="bottom", fontsize=8)
    key = plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap=cmap)
    fig.colorbar(key, ax=ax, label=metric, pad=0.02)
    return save(fig, path)
