"""`search report`: the experiment report a person would otherwise write by hand.

Everything comes from the storage (trials, their per-epoch user attributes, the study's
attributes); `evaluate=True` also retrains the best config and tests it once. Writes
report.md, a self-contained report.html (images inlined) and PNG plots beside them.
"""

from __future__ import annotations

import base64
import html
import math
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import yaml  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from search.errors import SearchError  # noqa: E402
from search.export import TrainJob, best_config, retrain  # noqa: E402
from search.spec import check_params  # noqa: E402
from search.study import best_or_none, study_facts  # noqa: E402

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}
TOP = 10


@dataclass
class Report:
    """The report as data; rendered to Markdown and HTML."""

    title: str
    sections: list[tuple[str, list[Any]]] = field(default_factory=list)  # (heading, blocks)
    files: list[Path] = field(default_factory=list)

    def add(self, heading: str, *blocks: Any) -> None:
        self.sections.append((heading, list(blocks)))


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Code:
    text: str


def write_report(study: optuna.Study, out: Path, *, evaluate: bool = False, device: str = "auto",
                 data_dir: str | None = None) -> Report:
    trials = study.get_trials(deepcopy=False)
    if not trials:
        raise SearchError(f"study {study.study_name!r} has no trials yet: run it first")
    out.mkdir(parents=True, exist_ok=True)
    facts = study_facts(study)
    metric = facts["metric"] or "value"
    report = Report(f"Study {study.study_name}")
    report.add("Summary", _summary_table(study, facts, trials))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        report.add(f"Top trials (by {metric})", _top_table(complete, facts["direction"], metric))
        config = best_config(study)
        report.add("Best config (`search export`)", Code(yaml.safe_dump(config, sort_keys=False)))
    report.add("What each axis did", *[f"- {s}" for s in axis_sentences(trials, facts["direction"], metric)])
    plots = [
        (_plot_history, "history.png", "Optimisation history: each trial's final value, the best so far as a line"),
        (_plot_curves, "curves.png", f"Learning curves: {metric} per epoch; pruned trials dashed, the best bold"),
        (_plot_importances, "importances.png", "Parameter importances (Optuna's default evaluator)"),
        (_plot_slices, "slices.png", f"Slice plots: {metric} against each sampled parameter"),
        (_plot_parallel, "parallel.png", "Parallel coordinates of the completed trials, coloured by value"),
    ]
    images = []
    for fn, name, caption in plots:
        if fn(study, trials, metric, out / name):
            images.append(Image(out / name, caption))
            report.files.append(out / name)
    report.add("Plots", *images)
    if evaluate:
        if not complete:
            raise SearchError(f"study {study.study_name!r} has no completed trial to evaluate")
        report.add("Test-set evaluation of the best config", *_evaluation(study, out, report, device, data_dir))
    (out / "report.md").write_text(to_markdown(report, out))
    (out / "report.html").write_text(to_html(report))
    report.files += [out / "report.md", out / "report.html"]
    return report


# ---------------------------------------------------------------- tables


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.{digits}g}"
    return str(v)


def _summary_table(study: optuna.Study, facts: dict, trials: list[FrozenTrial]) -> Table:
    attrs = study.user_attrs
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    compute = sum(sum(t.user_attrs.get("epoch_seconds", [])) for t in trials)
    states = ", ".join(f"{n} {s.lower()}" for s, n in facts["states"].items() if n)
    space = attrs.get("space") or {}
    rows = [
        ["dataset", str(attrs.get("dataset"))],
        ["description", str(attrs.get("description") or "-")],
        ["search space", "; ".join(f"{k}: {v}" for k, v in space.items()) or "-"],
        ["sampler / pruner", f"{attrs.get('sampler', '-')} / {attrs.get('pruner', '-')}"],
        ["metric", f"{facts['metric']} ({facts['direction']})"],
        ["trials", f"{facts['n_trials']}: {states}"],
        ["wall time", f"{_duration(wall)} (training and evaluation inside trials: {_duration(compute)})"],
        ["training images per trial", _fmt(attrs.get("train_size"))],
        ["best value", f"{_fmt(facts['best_value'])} (trial #{facts['best_trial']})"
         if facts["best_value"] is not None else "-"],
    ]
    return Table(["", ""], rows)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _top_table(complete: list[FrozenTrial], direction: str, metric: str) -> Table:
    ranked = sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")[:TOP]
    names = sorted({k for t in ranked for k in t.params})
    header = ["#", metric, "epochs run", "train loss sum (first -> last epoch)", "val loss", "seconds", *names]
    rows = []
    for t in ranked:
        sums = t.user_attrs.get("train_loss_sum") or []
        val_loss = t.user_attrs.get("val_loss") or []
        rows.append([str(t.number), _fmt(t.value), str(len(t.intermediate_values)),
                     f"{_fmt(sums[0])} -> {_fmt(sums[-1])}" if sums else "-",
                     _fmt(val_loss[-1]) if val_loss else "-",
                     f"{sum(t.user_attrs.get('epoch_seconds', [])):.1f}",
                     *[_fmt(t.params.get(n)) for n in names]])
    return Table(header, rows)


# ---------------------------------------------------------------- what each axis did


def axis_sentences(trials: list[FrozenTrial], direction: str, metric: str) -> list[str]:
    """One sentence per sampled axis, computed from the trials; no invented text."""
    names = sorted({k for t in trials for k in t.params})
    if not names:
        return ["no axis was searched: every parameter was fixed"]
    return [_axis_sentence(name, trials, direction, metric) for name in names]


def _axis_sentence(name: str, trials: list[FrozenTrial], direction: str, metric: str) -> str:
    with_axis = [t for t in trials if name in t.params]
    complete = [t for t in with_axis if t.state == TrialState.COMPLETE]
    sign = 1 if direction == "maximize" else -1
    values = sorted({t.params[name] for t in with_axis}, key=_sort_key)
    parts = []
    if len(values) <= 6:
        stats = []
        for v in values:
            done = [t.value for t in complete if t.params[name] == v]
            if done:
                stats.append((statistics.mean(done), v, len(done)))
        if len(stats) >= 2:
            stats.sort(key=lambda s: sign * s[0], reverse=True)
            (m1, v1, n1), (m2, v2, n2) = stats[0], stats[-1]
            parts.append(f"best at {_fmt(v1)} (mean {metric} {_fmt(m1)} over {n1} completed), "
                         f"worst at {_fmt(v2)} ({_fmt(m2)} over {n2})")
        elif stats:
            parts.append(f"only {_fmt(stats[0][1])} completed (mean {metric} {_fmt(stats[0][0])})")
        for v in values:
            n = sum(t.params[name] == v for t in with_axis)
            for state, word in ((TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed")):
                k = sum(t.params[name] == v and t.state == state for t in with_axis)
                if k:
                    parts.append(f"{_fmt(v)} {word} in {k} of {n} trials")
    else:
        ranked = sorted(complete, key=lambda t: sign * t.value, reverse=True)
        top = ranked[:max(1, len(ranked) // 4)]
        if top:
            lo, hi = min(t.params[name] for t in top), max(t.params[name] for t in top)
            span = [t.params[name] for t in with_axis]
            parts.append(f"the best {len(top)} of {len(complete)} completed trials lie in {_fmt(lo)}..{_fmt(hi)} "
                         f"(sampled {_fmt(min(span))}..{_fmt(max(span))})")
        for state, word in ((TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed")):
            xs = [t.params[name] for t in with_axis if t.state == state]
            if xs and complete:
                parts.append(f"{len(xs)} {word} trials had median {_fmt(statistics.median(xs))} vs "
                             f"{_fmt(statistics.median(t.params[name] for t in complete))} for completed ones")
    return f"**{name}**: " + ("; ".join(parts) if parts else "no completed trial to compare") + "."


def _sort_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


# ---------------------------------------------------------------- plots


def _save(fig, path: Path) -> bool:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _finish(fig, ax, xlabel: str, ylabel: str, path: Path) -> bool:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _plot_history(study, trials, metric, path) -> bool:
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.intermediate_values]
    if not done:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    comp = [t for t in done if t.state == TrialState.COMPLETE]
    pruned = [t for t in done if t.state == TrialState.PRUNED]
    ax.scatter([t.number for t in comp], [t.value for t in comp], label="complete", color="tab:blue", zorder=3)
    ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
               label="pruned (last reported)", color="tab:orange", marker="x", zorder=3)
    if comp:
        better = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        xs, best, running = [], [], None
        for t in sorted(comp, key=lambda t: t.number):
            running = t.value if running is None else better(running, t.value)
            xs.append(t.number)
            best.append(running)
        ax.step(xs, best, where="post", color="tab:green", label="best so far")
    return _finish(fig, ax, "trial", metric, path)


def _plot_curves(study, trials, metric, path) -> bool:
    curves = [t for t in trials if t.intermediate_values]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    best_trial = best_or_none(study)
    best = best_trial.number if best_trial else None
    for t in curves:
        steps = sorted(t.intermediate_values)
        ys = [t.intermediate_values[s] for s in steps]
        if t.number == best:
            ax.plot(steps, ys, color="tab:green", lw=2.5, zorder=4, label=f"best (#{best})")
        elif t.state == TrialState.PRUNED:
            ax.plot(steps, ys, color="tab:orange", ls="--", alpha=0.6, marker="x", ms=4)
        else:
            ax.plot(steps, ys, color="tab:blue", alpha=0.5)
    ax.plot([], [], color="tab:orange", ls="--", label="pruned")
    ax.plot([], [], color="tab:blue", label="complete")
    return _finish(fig, ax, "epoch", metric, path)


def _plot_importances(study, trials, metric, path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # "too few trials": equal importances say nothing
            importances = optuna.importance.get_param_importances(study)
    except Exception:  # too few trials, or a single-valued space: nothing to rank
        return False
    if not importances:
        return False
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance for {metric}")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


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


def _plot_slices(study, trials, metric, path) -> bool:
    complete, names = _sampled(trials)
    if not complete or not names:
        return False
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        pts = [t for t in complete if name in t.params]
        xs, labels = _numeric([t.params[name] for t in pts])
        ax.scatter(xs, [t.value for t in pts], c=[t.number for t in pts], cmap="viridis", s=18)
        if labels:
            ax.set_xticks(range(len(labels)), labels, rotation=30)
        elif _is_log(study, name, xs):
            ax.set_xscale("log")
        ax.set_title(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    return _save(fig, path)


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


def _plot_parallel(study, trials, metric, path) -> bool:
    complete, names = _sampled(trials)
    if len(complete) < 2 or not names:
        return False
    axes_names = [*names, metric]
    cols = []
    for name in names:
        xs, _ = _numeric([t.params.get(name, float("nan")) for t in complete])
        if _is_log(study, name):
            xs = [math.log10(x) for x in xs]
        cols.append(xs)
    cols.append([t.value for t in complete])
    data = np.array(cols, dtype=float)
    lo, hi = np.nanmin(data, 1, keepdims=True), np.nanmax(data, 1, keepdims=True)
    norm = (data - lo) / np.where(hi > lo, hi - lo, 1)
    fig, ax = plt.subplots(figsize=(1.6 * len(axes_names) + 2, 4))
    values = data[-1]
    cmap = plt.get_cmap("viridis")
    vmin, vmax = values.min(), values.max()
    for j in np.argsort(values if study.direction == optuna.study.StudyDirection.MAXIMIZE else -values):
        shade = (values[j] - vmin) / (vmax - vmin) if vmax > vmin else 1.0
        ax.plot(range(len(axes_names)), norm[:, j], color=cmap(shade), alpha=0.7)
    ax.set_xticks(range(len(axes_names)), [n + (" (log)" if _is_log(study, n) else "") for n in axes_names],
                  rotation=20)
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    for x, name in enumerate(axes_names):
        ax.axvline(x, color="grey", lw=0.5)
        low, high = lo[x, 0], hi[x, 0]
        if x < len(names) and _is_log(study, name):
            low, high = 10 ** low, 10 ** high
        ax.text(x, -0.06, _fmt(float(low), 3), ha="center", va="top", fontsize=7)
        ax.text(x, 1.06, _fmt(float(high), 3), ha="center", va="bottom", fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------- evaluation


def _evaluation(study, out: Path, report: Report, device: str, data_dir: str | None) -> list[Any]:
    config = best_config(study)
    job = TrainJob(config["dataset"], check_params(config["params"], "best config"), config["seed"],
                   config["train_size"], config["source"])
    result = retrain(job, device=device, data_dir=data_dir)
    y = result.data.test.y.cpu().numpy()
    pred = result.test_pred.cpu().numpy()
    names = CLASS_NAMES.get(job.dataset, [str(i) for i in range(10)])
    cm = np.zeros((10, 10), dtype=int)
    np.add.at(cm, (y, pred), 1)
    s = result.summary
    per_class = Table(["class", "test images", "accuracy"],
                      [[names[i], str(cm[i].sum()), f"{cm[i, i] / max(cm[i].sum(), 1):.4f}"] for i in range(10)])
    off = [(cm[i, j], i, j) for i in range(10) for j in range(10) if i != j and cm[i, j]]
    pairs = Table(["true", "predicted as", "count"],
                  [[names[i], names[j], str(n)] for n, i, j in sorted(off, reverse=True)[:5]])
    _plot_confusion(cm, names, out / "confusion.png")
    report.files.append(out / "confusion.png")
    return [
        f"Retrained trial #{job.source.get('trial')} from scratch (seed {job.seed}, {s['train_images']} training "
        f"images, {s['epochs']} epochs, {s['train_seconds']:.1f} s on {s['device']}): validation accuracy "
        f"{_fmt(s['val_accuracy'])}, **test accuracy {s['test_accuracy']:.4f}**, test loss {s['test_loss']:.4f}.",
        per_class,
        "Most-confused pairs:",
        pairs,
        Image(out / "confusion.png", "Confusion matrix on the test set (rows: true class)"),
    ]


def _plot_confusion(cm: np.ndarray, names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = np.log1p(cm)
    ax.imshow(shown, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > shown.max() * 0.6 else "black")
    ax.set_xticks(range(10), names, rotation=45, ha="right")
    ax.set_yticks(range(10), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _save(fig, path)


# ---------------------------------------------------------------- rendering


def to_markdown(report: Report, out: Path) -> str:
    lines = [f"# {report.title}", ""]
    for heading, blocks in report.sections:
        lines += [f"## {heading}", ""]
        for b in blocks:
            if isinstance(b, Table):
                lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
                lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows]
            elif isinstance(b, Image):
                lines.append(f"![{b.caption}]({b.path.relative_to(out)})")
                lines.append(f"*{b.caption}*")
            elif isinstance(b, Code):
                lines += ["```yaml", b.text.rstrip(), "```"]
            else:
                lines.append(str(b))
            lines.append("")
    return "\n".join(lines)


def to_html(report: Report) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left}img{max-width:100%}pre{background:#f4f4f4;padding:1em}</style></head><body>",
             f"<h1>{html.escape(report.title)}</h1>"]
    for heading, blocks in report.sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for b in blocks:
            if isinstance(b, Table):
                head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
                body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(b, Image):
                data = base64.b64encode(b.path.read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b.caption)}'>"
                             f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
            elif isinstance(b, Code):
                parts.append(f"<pre>{html.escape(b.text)}</pre>")
            else:
                text = html.escape(str(b).removeprefix("- "))
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
                parts.append(f"<p>{text}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
