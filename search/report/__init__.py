"""`search report`: the experiment report a person would otherwise write by hand.

Everything comes from the storage (trials, their per-epoch user attributes, the study's
attributes); `evaluate=True` also retrains the best config and tests it once. Writes
report.md, a self-contained report.html (images inlined) and PNG plots beside them.
Split by job: `_stats` (tables, sentences), `_plots`, `_evaluate` (retraining), `_render`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from search import records
from search._files import writable_dir
from search.artifacts import open_store, upload_files, write_study_note
from search.config import best_config, config_text
from search.errors import SearchError
from search.fit import Step
from search.outputs import disk_error
from search.records import StudyRecord
from search.report import _plots
from search.report._evaluate import evaluation
from search.report._render import Block, Code, Image, Report, to_html, to_markdown
from search.report._stats import TOP, answer, axis_sentences, ensemble_blocks, summary_table, top_table
from search.trials import best_or_none, pareto_front, ranked, study_facts

__all__ = ["PLOTS", "Report", "write_report"]

FEW = 20  # complete trials below which an importance ranking is a rough guess (said under the plot)
PLOTS = [
    (_plots.plot_tradeoff, "tradeoff.png", "Trade-off: each complete trial's two metrics; the Pareto front (several "
                                           "objectives) or the floor/ceiling (a cost objective) drawn"),
    (_plots.plot_history, "history.png", "Optimisation history: each trial's final value, the best so far as a line"),
    (_plots.plot_curves, "curves.png", "Learning curves: validation metric per epoch; pruned trials dashed, the best bold"),
    (_plots.plot_importances, "importances.png", "Parameter importances (Optuna's default evaluator) from {complete} "
                                                 "complete trials{caveat}"),
    (_plots.plot_slices, "slices.png", "Slice plots: {metric} against each sampled parameter"),
    (_plots.plot_parallel, "parallel.png", "Parallel coordinates of the completed trials, coloured by value"),
]


def write_report(study: optuna.Study, out: Path, *, evaluate: bool = False, device: str = "auto",
                 data_dir: str | None = None, artifacts: Path | None = None,
                 on_step: Callable[[Step], None] | None = None) -> Report:
    """Write the report files; then show its summary in the study's dashboard note and, with
    `evaluate`, attach the confusion matrix and curves to the best trial (when the study
    has an artifact folder). The files are written into a hidden folder inside `out` and
    moved into place once all are written: an error, Ctrl-C or a full disk leaves the
    report that was there before, whole."""
    writable_dir(out, "the report")
    trials = study.get_trials(deepcopy=False)
    if not trials:
        raise SearchError(f"study {study.study_name!r} has no trials yet: run it first")
    if evaluate and not any(t.state == TrialState.COMPLETE for t in trials):
        raise SearchError(f"study {study.study_name!r} has no completed trial to evaluate")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".report-", suffix=".part", dir=out))
    try:
        report, summary, sentences = _write(study, trials, work, evaluate, device, data_dir, on_step)
        for src in report.files:  # renames within one folder: all written, then all moved
            src.replace(out / src.name)
    except OSError as e:
        raise disk_error(e, out, "the report") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.files = [out / p.name for p in report.files]
    _to_dashboard(study, [summary], list(sentences), artifacts if evaluate else None, out)
    return report


def _write(study: optuna.Study, trials: list, out: Path, evaluate: bool, device: str,
           data_dir: str | None, on_step: Callable[[Step], None] | None = None) -> tuple[Report, Block, list[Block]]:
    """The report's files in `out`: plots, the evaluation's, report.md and report.html."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    facts = study_facts(study)
    metric = facts["metric"] or "value"
    direction = facts["direction"].split(",")[0]
    record = StudyRecord.of(study)
    report = Report(f"Study {study.study_name}")
    evaluated = evaluation(study, out, device, data_dir, on_step) if evaluate else None
    summary = summary_table(record, facts, trials, evaluated[2] if evaluated else None)
    best = best_or_none(study)
    report.add("Summary", *([answer(best, metric, evaluated[2] if evaluated else None)] if best else []), summary)
    if best is not None:
        report.add("Best config (as search export writes it)", Code(config_text(best_config(study))))
    if record.ensemble:
        report.add("Ensemble (search ensemble)", *ensemble_blocks(record.ensemble))
    sentences = axis_sentences(trials, direction, metric)
    report.add("What the search learned, axis by axis", *sentences)
    front = pareto_front(study)
    if front:
        report.add(f"Pareto front ({len(front)} trials no other trial beats in every objective)",
                   top_table(front, facts["metrics"], record.bounds))
    if complete:
        report.add(f"Top trials (by {metric}{', those meeting the bounds first' if facts['constrained'] else ''})",
                   top_table(ranked(study, TOP), facts["metrics"], record.bounds))
    images = []
    shown = _plots.plot_sample(study, trials)
    sampled = (f" (a sample of {len(shown):,} of the {len(trials):,} trials: the best {_plots.KEEP_BEST} and "
               "others evenly spaced by number)" if len(shown) < len(trials) else "")
    drawn = sum(t.state == TrialState.COMPLETE for t in shown)
    for plot, name, caption in PLOTS:
        if plot(study, shown, metric, out / name):
            caveat = (": too few to rank by, and an axis present in only some of them (conditional) ranks on "
                      "those alone" if drawn < FEW else "")
            text = caption.format(metric=metric, complete=f"{drawn:,}", caveat=caveat) + sampled
            images.append(Image(out / name, text))
            report.files.append(out / name)
    report.add("Plots", *images)
    if evaluated is not None:
        report.add("Test-set evaluation of the best config", *evaluated[0])
        report.files += evaluated[1]
    (out / "report.md").write_text(to_markdown(report, out))
    (out / "report.html").write_text(to_html(report))
    report.files += [out / "report.md", out / "report.html"]
    return report, summary, list(sentences)


def _to_dashboard(study: optuna.Study, summary: list[Block], sentences: list[Block], artifacts: Path | None,
                  out: Path) -> None:
    note = Report("", [("Report (search report)", summary), ("What the search learned, axis by axis", sentences)])
    records.write_report_note(study, to_markdown(note, out).removeprefix("# \n").strip())
    write_study_note(study)
    store = open_store(artifacts)
    best = best_or_none(study)
    if store is not None and best is not None:
        files = [p for p in (out / "confusion.png", out / "curves.png") if p.is_file()]
        upload_files(study, store, best, files)
