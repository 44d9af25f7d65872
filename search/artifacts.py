"""Trials -> what the dashboard shows beyond values: notes for the study and each finished
trial, and checkpoints of complete trials in an artifact store (only the best N kept).

The store is a folder beside a SQLite or journal file (`search.db` -> `search-artifacts/`)
or the `--artifacts DIR` given (for a PostgreSQL study shared by machines: a shared path).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import FrozenTrial, TrialState

from search import _dashboard, _optuna
from search._files import writable_dir
from search._signals import raise_held, signals_held
from search.config import (
    EXPORT_HEADER,
    TrainJob,
    best_config,
    config_of,
    config_text,
    job_of,
    load_config,
    write_config,
)
from search.data import load_dataset
from search.deploy import FORMATS, Check, format_of, write_deployable
from search.errors import SearchError
from search.outputs import check_output, disk_error, written_together
from search.records import StudyRecord, curve, fail_reason, member_label
from search.storage import StorageURL
from search.tracking import Tracker
from search.trained import load_weights
from search.trials import Failure, best_first, failure_of, feasible, last_value, rank_key, ranked

__all__ = ["CHECKPOINT", "Exported", "Recorder", "SUFFIX", "artifact_dir", "artifact_ids", "checkpoints", "deploy_checkpoint", "ensemble_lines", "export_trial", "open_store",
           "prune_checkpoints", "stop_reason", "trial_note_text", "upload_files", "write_study_note"]

SUFFIX = "-artifacts"
CHECKPOINT = "checkpoint.pt"


def artifact_dir(url: str, explicit: str | None = None) -> Path | None:
    """The artifact folder for a storage: `explicit`, else beside its SQLite or journal file."""
    if explicit:
        return Path(explicit)
    path = StorageURL.parse(url).path
    return None if path is None else path.with_name(path.stem + SUFFIX)


def open_store(directory: Path | None, create: bool = True) -> FileSystemArtifactStore | None:
    if directory is None or (not create and not directory.is_dir()):
        return None
    writable_dir(directory, "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(directory)


# ---------------------------------------------------------------- notes


def write_study_note(study: optuna.Study) -> None:
    """The study's note, from what the study stores: description, file, space, sampler,
    pruner, and the report's summary once `search report` ran."""
    r = StudyRecord.of(study)
    lines = [f"## {study.study_name}", "", r.description, "",
             f"study file `{r.study_file}`; sampler **{r.sampler}**, pruner **{r.pruner}**; goal: {r.goal}; "
             f"{r.train_images() or 'all'} training images",
             "", "| axis | searched as |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r.space.items()]
    if r.changes:  # resumed with --allow-change: its trials were not all sampled from this space
        lines += ["", "Definition changed (`--allow-change`):", *(f"- {c}" for c in r.changes)]
    if r.ensemble:
        lines += ["", *ensemble_lines(r.ensemble)]
    if r.report_note:
        lines += ["", r.report_note]
    _dashboard.set_study_note(study, "\n".join(lines) + "\n")


def ensemble_lines(stored: dict[str, Any]) -> list[str]:
    """The ensemble `search ensemble` chose (StudyRecord.ensemble) as Markdown: a sentence and
    its members' table."""
    studies = stored.get("studies", ())
    picks = ", ".join(member_label(m, studies) + (f" x{m['weight']}" if m["weight"] > 1 else "")
                      for m in stored["members"])
    lines = [f"**Ensemble** (`search ensemble`, greedy selection on validation from {stored['candidates']} kept "
             f"checkpoints, {sum(m['weight'] for m in stored['members'])} picks): {picks}; validation "
             f"{stored['val_accuracy']:.2%}, test **{stored['test_accuracy']:.2%}**", "",
             "| trial | weight | val_accuracy | test_accuracy |", "|---:|---:|---:|---:|"]
    row = "| {} | {} | {:.4f} | {:.4f} |"
    lines += [row.format(member_label(m, studies), m["weight"], m["val_accuracy"], m["test_accuracy"])
              for m in stored["members"]]
    return lines + [f"| ensemble | | {stored['val_accuracy']:.4f} | {stored['test_accuracy']:.4f} |"]


def stop_reason(trial: FrozenTrial, info: StudyRecord) -> str:
    epochs = len(curve(trial, "val_accuracy")) or len(trial.intermediate_values)
    if trial.state == TrialState.COMPLETE:
        what = (f"{info.metric} {trial.values[0]:.4g}" if len(trial.values) == 1 else
                f"{', '.join(f'{v:.4g}' for v in trial.values)} ({info.goal})")
        return f"complete: {what} after {epochs} epochs" + ("" if feasible(trial) else ", infeasible")
    if trial.state == TrialState.PRUNED:
        last = last_value(trial)
        return f"pruned at epoch {epochs}" + ("" if last is None else f" ({last:.4f})")
    failure = failure_of(trial)
    if failure is Failure.INTERRUPTED:
        return "interrupted (queued again with the same parameters)"
    return f"failed: {fail_reason(trial) or 'the worker stopped'}"


def trial_note_text(trial: FrozenTrial, info: StudyRecord) -> str:
    config = {k: v for k, v in config_of(job_of(trial, info, "")).items() if k != "source"}
    lines = [f"### Trial {trial.number}: {stop_reason(trial, info)}", "",
             "Config (as `search export --trial` writes it):", "", "```yaml", config_text(config).rstrip(), "```", ""]
    rows = list(zip(curve(trial, "train_loss"), curve(trial, "val_loss"), curve(trial, "val_accuracy"),
                    curve(trial, "epoch_seconds"), strict=True))
    if rows:
        # one word per header, numbers right-aligned: the dashboard's markdown puts no space between cells
        lines += ["| epoch | train_loss | val_loss | val_accuracy | seconds |", "|---:|---:|---:|---:|---:|"]
        lines += [f"| {i} | {tl:.4f} | {vl:.4f} | {va:.4f} | {s:.2f} |" for i, (tl, vl, va, s) in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- checkpoints


class Recorder:
    """Notes and checkpoints for one worker's trials (a checkpoint needs a store), and the
    trackers (MLflow, TensorBoard) that copy each trial as it runs and ends."""

    def __init__(self, store: FileSystemArtifactStore | None, keep: int = StudyRecord.keep_checkpoints,
                 tracker: Tracker | None = None) -> None:
        self.store = store
        self.keep = keep
        self.tracker = tracker or Tracker()
        self.saved: dict[int, str] = {}  # trial id -> checkpoint artifact id, written by this worker
        self.unsaved: SearchError | None = None  # why the last checkpoint could not be written (a full disk)
        self.bar: FrozenTrial | None = None  # the `keep`-th best trial when last ranked: the bar only rises
        self.records: dict[str, StudyRecord] = {}  # what the notes name (metric, goal: fixed for a study), read once

    def save_checkpoint(self, study: optuna.Study, trial_id: int, blob: dict[str, Any]) -> None:
        """Write a complete trial's checkpoint (records.checkpoint; loadable with weights_only=True)."""
        if self.store is None or self.keep == 0:
            return
        fd, tmp = tempfile.mkstemp(suffix=".pt")
        os.close(fd)
        where = Path(tmp).parent
        # Ctrl-C inside torch.save's write callback came out as torch's RuntimeError ("unexpected
        # pos"), read as a disk error: the signal is held over the write and raised after it
        with signals_held() as held:
            try:
                with open(tmp, "wb") as f:
                    torch.save(blob, f)
                where = _optuna.artifact_file(self.store, CHECKPOINT).parent
                self.saved[trial_id] = _dashboard.upload(self.store, study, trial_id, Path(tmp), CHECKPOINT)
            except (OSError, RuntimeError) as e:  # the trial keeps its value; the run stops after telling it
                self.unsaved = disk_error(e, where / CHECKPOINT, "the trial's checkpoint (the trial keeps its value)")
            finally:
                os.unlink(tmp)
        if held:
            raise_held(held)

    def finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """After a trial finished: its note, then keep only the best `keep` checkpoints; the
        trackers hear its outcome (with its checkpoint, where it is kept)."""
        tid = _optuna.trial_id(trial)
        if study.study_name not in self.records:  # study.user_attrs is a query each time
            self.records[study.study_name] = StudyRecord.of(study)
        _dashboard.set_trial_note(study, tid, trial_note_text(trial, self.records[study.study_name]))
        kept = None
        if self.store is not None and tid in self.saved:
            artifact_id = self.saved.pop(tid)
            if not self._may_be_kept(study, trial):
                _dashboard.remove(self.store, study, tid, artifact_id)  # not among the best: only its own goes
            else:
                prune_checkpoints(study, self.store, self.keep)  # among the best: the one it displaced goes
                kept = _optuna.artifact_file(self.store, artifact_id)
        self.tracker.end(study, trial, kept, CHECKPOINT)


    def _may_be_kept(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether a finished trial is among the `keep` best. Trials are only ever added, so a
        trial behind the `keep`-th best of an earlier ranking is behind today's too: most
        trials of a long study are told so without ranking it (a database sort of every trial:
        ~7 ms at 10,000 trials on SQLite)."""
        sign = best_first(study)
        if trial.state != TrialState.COMPLETE or not trial.values:
            return False
        if self.bar is not None and rank_key(trial, sign) > rank_key(self.bar, sign):
            return False
        best = ranked(study, self.keep)
        self.bar = best[-1] if len(best) == self.keep else None
        return trial.number in {t.number for t in best}


def checkpoints(study: optuna.Study) -> dict[int, str]:
    """trial number -> artifact id of its stored checkpoint."""
    ids = {_optuna.trial_id(t): t.number for t in study.get_trials(deepcopy=False)}
    return {ids[tid]: m["artifact_id"] for tid, metas in _dashboard.trial_artifacts(study).items()
            for m in metas if m["filename"] == CHECKPOINT and tid in ids}


def artifact_ids(study: optuna.Study) -> list[str]:
    """Every file the study's trials list in the artifact store (checkpoints, report images)."""
    return [m["artifact_id"] for metas in _dashboard.trial_artifacts(study).values() for m in metas]


def prune_checkpoints(study: optuna.Study, store: FileSystemArtifactStore, keep: int) -> list[int]:
    """Delete the checkpoints of all but the `keep` best complete trials; the trial numbers pruned."""
    stored = checkpoints(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    order = {t.number: i for i, t in enumerate(ranked(study, len(trials)))}
    dropped = sorted(stored, key=lambda n: order.get(n, len(order)))[keep:]
    for number in dropped:
        _dashboard.remove(store, study, _optuna.trial_id(trials[number]), stored[number])
    return dropped


def upload_files(study: optuna.Study, store: FileSystemArtifactStore, trial: FrozenTrial, paths: list[Path]) -> None:
    """Attach files (the report's PNGs) to a trial, replacing earlier ones of the same name."""
    names = {p.name for p in paths}
    for meta in _dashboard.trial_artifacts(study).get(_optuna.trial_id(trial), []):
        if meta["filename"] in names:
            _dashboard.remove(store, study, _optuna.trial_id(trial), meta["artifact_id"])
    for path in paths:
        _dashboard.upload(store, study, _optuna.trial_id(trial), path, path.name)


@dataclass
class Exported:
    """What `search export` wrote: the config, the checkpoint beside it (None when the study
    kept none for the trial), and the stale checkpoint of an earlier export it deleted."""

    config: dict[str, Any]
    weights: Path | None
    removed: Path | None
    model: Check | None = None  # the ONNX or TorchScript file written beside them, and how it compared


def export_trial(study: optuna.Study, url: str, artifacts: str | None, trial_number: int | None,
                 out: Path, model_format: str | None = None, data_dir: str | None = None,
                 image_input: str = "uint8") -> Exported:
    """Write the trial's config to `out` and its stored checkpoint beside it (best.yaml ->
    best.pt) as a pair or not at all; a checkpoint of an earlier export that this one does
    not replace is deleted, so a config never sits beside another trial's weights.
    `model_format` ('onnx', 'torchscript') also writes the checkpoint as a deployable model
    (best.onnx, best.ts), checked on the validation images (search/deploy.py)."""
    store_dir = artifact_dir(url, artifacts)
    pt = out.with_suffix(".pt")
    check_output(out, url, store_dir, "the config")
    check_output(pt, url, store_dir, "the weights")
    deployed = out.with_suffix(FORMATS[model_format]) if model_format in FORMATS else None
    if model_format is not None and deployed is None:
        raise SearchError(f"unknown model format {model_format!r}: expected one of {', '.join(FORMATS)}")
    if deployed is not None:
        check_output(deployed, url, store_dir, "the model")
    config = best_config(study, trial_number)
    number = config["source"]["trial"]
    store = open_store(store_dir, create=False)
    artifact_id = checkpoints(study).get(number) if store is not None else None
    if deployed is not None and artifact_id is None:
        raise SearchError(f"cannot write {deployed}: trial #{number} of {study.study_name} has no kept checkpoint "
                          f"(keep_checkpoints keeps the best few); retrain it instead: search export --out {out} "
                          f"--trial {number}, then search train --config {out} --save {deployed.name}")
    stale = pt if pt.exists() and artifact_id is None else None
    if stale is not None and not _exported_pair(out, stale):
        raise SearchError(f"cannot export trial #{number} to {out}: {stale} is there and is not the checkpoint of an "
                          f"earlier export, and trial #{number} has none to replace it; move it or choose another --out")
    copied = False
    with written_together([out, pt], "the config and its checkpoint") as (tmp_config, tmp_pt):
        write_config(config, tmp_config, shown=out)
        if store is not None and artifact_id is not None:
            copied = _copy_artifact(store, artifact_id, tmp_pt)
    if stale is not None:
        stale.unlink(missing_ok=True)
    if deployed is None:
        return Exported(config, pt if copied else None, stale)
    if not copied:
        raise SearchError(f"cannot write {deployed}: the checkpoint of trial #{number} is gone from the artifact "
                          f"store (pruned by another worker?); retrain it: search train --config {out} --save {deployed.name}")
    return Exported(config, pt, stale, deploy_checkpoint(pt, load_config(out), deployed, data_dir, image_input))


def deploy_checkpoint(pt: Path, job: TrainJob, path: Path, data_dir: str | None, image_input: str = "uint8") -> Check:
    """A checkpoint file -> the deployable model at `path` (its format from the suffix)."""
    data = load_dataset(job.dataset, data_dir, "cpu")
    net = load_weights(pt, "cpu", data.shape, job.code)
    return write_deployable(net, data, config_of(job), path, format_of(path) or "onnx", image_input)


def _exported_pair(config: Path, weights: Path) -> bool:
    """Whether `weights` is the checkpoint an earlier `search export` wrote beside `config`."""
    try:
        with open(config, "rb") as f:
            ours = f.read(len(EXPORT_HEADER)).decode(errors="replace") == EXPORT_HEADER
    except OSError:
        return False
    return ours and zipfile.is_zipfile(weights)  # torch.save writes a zip


def _copy_artifact(store: FileSystemArtifactStore, artifact_id: str, dst: Path) -> bool:
    """Copy a stored artifact to `dst`; False when it is gone (pruned by another worker, or
    deleted by hand). Write errors (a full disk) propagate."""
    try:
        src = store.open_reader(artifact_id)
    except Exception:  # the artifact file is gone
        return False
    with src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return True
