"""Trials -> MLflow runs and TensorBoard event files: each trial's parameters, per-epoch curves,
outcome and kept checkpoint, under the study's tags, as the trial runs.

`--track mlflow[:URI]` (MLflow's own default store where no URI is given: MLFLOW_TRACKING_URI,
else sqlite:///mlflow.db with artifacts in ./mlruns) makes one parent run per study, named after
it, in an experiment of the same name; every trial is a run nested under it (its id is stored in
the Optuna study, so every worker, on any host, nests under the same one). `--track
tensorboard[:DIR]` writes DIR/STUDY/trial-NNNNN (DIR: ./runs, torch.utils.tensorboard's default).

Why not optuna-integration's MLflowCallback / TensorBoardCallback: they are study callbacks,
called once a trial has ended, so they log its final value and parameters but no learning
curve; per-epoch metrics need a hook inside the trial (search/objective.py calls `epoch`). They
also log into the process's global active run, which a nested parent shared by workers on
several hosts cannot be.

Tracking is a copy for people's tools: nothing in the Optuna storage depends on it. A backend
that fails (server down, disk full, a bad URI) is switched off for the rest of the run with one
warning line, and the study goes on.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import _check, _optuna, records
from search.errors import Notice, SearchError
from search.samplers import describe_named
from search.storage import mask_url
from search.trials import Failure

__all__ = ["KINDS", "METRICS", "PARENT_ATTR", "TB_DIR", "Target", "Tracker", "TrackingOff", "check_installed",
           "code_version", "open_tracker", "parse_track", "study_tags"]

KINDS = ("mlflow", "tensorboard")
EXTRA = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # kind -> the import it needs (pip extra of that name)
TB_DIR = "runs"  # torch.utils.tensorboard's default log dir
METRICS = ("train_loss", "val_loss", "val_accuracy", "epoch_seconds")  # per epoch, named as records.CURVES
PARENT_ATTR = "mnist_search:mlflow_parent"  # study system attr: {masked tracking URI: parent run id}
# A down tracking server must not hold a trial for MLflow's default ~4 minutes of retries
# (7 retries, backoff factor 2, 120 s timeout); a user's own settings win.
MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class TrackingOff(Notice):
    """A tracking backend failed and is off for the rest of this run (the study goes on)."""


@dataclass(frozen=True)
class Target:
    """One place to track to: `mlflow` with a tracking URI, or `tensorboard` with a log dir
    (None: the backend's default)."""

    kind: str
    where: str | None = None

    def __str__(self) -> str:
        return self.kind + (f":{mask_url(self.where)}" if self.where else "")


def parse_track(value: Any, where: str, key: str = "track") -> tuple[Target, ...]:
    """`mlflow`, `mlflow:URI`, `tensorboard`, `tensorboard:DIR`, a list of them, or `none`."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[Target] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise SearchError(f"{where}: {key}: expected mlflow[:URI], tensorboard[:DIR] or none, "
                              f"got {_check.kind(item)}")
        kind, _, rest = item.strip().partition(":")
        if kind == "none" and not rest:
            continue
        if kind not in KINDS:
            close = _check.did_you_mean(kind, KINDS)
            raise SearchError(f"{where}: {key}: unknown tracker {kind!r}" + (f" (did you mean {close}?)" if close else "")
                              + ": expected mlflow[:URI], tensorboard[:DIR] or none")
        if any(t.kind == kind for t in out):
            raise SearchError(f"{where}: {key}: {kind} named twice: give it once")
        out.append(Target(kind, rest or None))
    return tuple(out)


def check_installed(targets: tuple[Target, ...]) -> None:
    """One line before anything runs for a tracker whose package is not installed."""
    for t in targets:
        if importlib.util.find_spec(EXTRA[t.kind]) is None:
            raise SearchError(f"--track {t.kind} needs the {EXTRA[t.kind]} package: "
                              f"pip install 'mnist-search[{t.kind}]'")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """This package's version and, in a git checkout, its commit ('0.1.0+g1d751c4', '+dirty')."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        out = version("mnist-search")
    except PackageNotFoundError:
        out = "unknown"
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return out
    return out + (f"+g{commit}" + ("+dirty" if dirty else "") if commit else "")


def study_tags(study: optuna.Study, spec, device: str, url: str) -> dict[str, str]:
    """What every run of the study carries: where it comes from and how it samples."""
    return {"optuna.study": study.study_name, "optuna.storage": mask_url(url), "study_file": str(Path(spec.path).resolve()),
            "sampler": describe_named(spec.sampler), "pruner": describe_named(spec.pruner),
            "dataset": str(spec.dataset), "device": device, "code_version": code_version(),
            "goal": str(spec.goal)}


class Tracker:
    """One worker's trackers. Each call goes to every backend still on; one that raises is
    warned about once (`TrackingOff`) and switched off for the rest of the run."""

    def __init__(self, backends: list[Any] | None = None) -> None:
        self.backends = list(backends or [])

    def _each(self, call: Callable[[Any], None]) -> None:
        for b in list(self.backends):
            try:
                call(b)
            except Exception as e:  # anything a tracking backend raises: the study goes on
                self.backends.remove(b)
                _off(b.target, e)

    def start(self, number: int, config: dict[str, Any], seed: int, retry_of: int | None) -> None:
        self._each(lambda b: b.start(number, config, seed, retry_of))

    def epoch(self, number: int, epoch: int, point: dict[str, float]) -> None:
        """One epoch of a trial, as the curves store it (`records.curve_point`)."""
        if not self.backends:  # untracked runs pay nothing per epoch
            return
        metrics = {k: point[k] for k in METRICS}
        self._each(lambda b: b.epoch(number, epoch, metrics))

    def end(self, study: optuna.Study, trial: FrozenTrial, checkpoint: Path | None = None,
            name: str = "checkpoint.pt") -> None:
        """A trial finished (any state); `checkpoint`: its kept weights, logged as `name`."""
        self._each(lambda b: b.end(study, trial, checkpoint, name))

    def close(self, study: optuna.Study, study_done: bool) -> None:
        """The run ends: what this worker left open is closed (and MLflow runs of trials failed
        elsewhere); with `study_done`, the study's parent run is FINISHED."""
        self._each(lambda b: b.close(study, study_done))


def _off(target: Target, e: BaseException) -> None:
    line = (str(e).strip().splitlines() or [""])[0][:200]
    warnings.warn(TrackingOff(f"tracking to {target} failed ({type(e).__name__}: {mask_url(line)}): off for the "
                              "rest of this run; the study goes on (nothing in its storage depends on it)"),
                  stacklevel=3)


def open_tracker(targets: tuple[Target, ...], study: optuna.Study, spec, device: str, url: str,
                 lock: Callable[[], Any]) -> Tracker:
    """The worker's tracker: each backend opened (MLflow's experiment and the study's parent run
    found or made under `lock`, the study lock); one that cannot be reached is warned about and
    left out."""
    tags = study_tags(study, spec, device, url)
    backends = []
    for t in targets:
        try:
            backends.append(_MLflow(t, study, spec, tags, lock) if t.kind == "mlflow" else _TensorBoard(t, study, tags))
        except Exception as e:  # the backend is unreachable or refuses: the study runs without it
            _off(t, e)
    return Tracker(backends)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _outcome(trial: FrozenTrial) -> tuple[str, dict[str, str]]:
    """(MLflow run status, tags) for a finished trial."""
    reason = records.fail_reason(trial) or ""
    tags = {"state": trial.state.name}
    if reason:
        tags["fail_reason"] = reason[:500]
    if trial.state == TrialState.FAIL:
        return ("KILLED" if reason.startswith(Failure.INTERRUPTED.value) else "FAILED"), tags
    return "FINISHED", tags


def _final(trial: FrozenTrial, study: optuna.Study) -> dict[str, float]:
    names = study.metric_names or ["value"]
    out = {f"objective/{name}": float(v) for name, v in zip(names, trial.values or [], strict=False)}
    n_params = records.TrialRecord.of(trial).n_params
    if n_params is not None:
        out["n_params"] = float(n_params)
    return out


class _MLflow:
    def __init__(self, target: Target, study: optuna.Study, spec, tags: dict[str, str],
                 lock: Callable[[], Any]) -> None:
        for k, v in MLFLOW_HTTP.items():
            os.environ.setdefault(k, v)
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # its store's migrations log at INFO on first use (set on import)
            logging.getLogger(name).setLevel(logging.WARNING)

        self.target = target
        self.client = MlflowClient(tracking_uri=target.where)
        self.tags = tags
        self.runs: dict[int, str] = {}  # trial number -> run id, for the trials this worker runs
        key = mask_url(self.client.tracking_uri)
        storage, sid = _optuna.storage_of(study), _optuna.study_id(study)
        with lock():  # one experiment and one parent run, whichever worker comes first
            experiment = self.client.get_experiment_by_name(study.study_name)
            self.experiment = (experiment.experiment_id if experiment is not None else
                               self.client.create_experiment(study.study_name, tags={"optuna.study": study.study_name}))
            parents = dict(storage.get_study_system_attrs(sid).get(PARENT_ATTR) or {})
            parent = parents.get(key)
            if parent is not None:
                run = self._run_or_none(parent)
                if run is None or run.info.lifecycle_stage == "deleted" or run.info.experiment_id != self.experiment:
                    parent = None
                elif run.info.status != "RUNNING":
                    self.client.update_run(parent, status="RUNNING")  # resumed
            if parent is None:
                parent = self.client.create_run(self.experiment, run_name=study.study_name,
                                                tags={**tags, "mnist_search.role": "study"}).info.run_id
                self._log_study(parent, spec)
                parents[key] = parent
                storage.set_study_system_attr(sid, PARENT_ATTR, parents)
        self.parent = parent

    def _run_or_none(self, run_id: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException:
            return None

    def _log_study(self, run_id: str, spec) -> None:
        from mlflow.entities import Param

        params = {"n_trials": spec.n_trials, "seed": spec.seed, "train_size": spec.train_size,
                  **{f"space.{k}": v for k, v in spec.describe_space().items()}}
        self.client.log_batch(run_id, params=[Param(k, _text(v)[:6000]) for k, v in params.items()])
        if Path(spec.path).is_file():
            self.client.log_artifact(run_id, spec.path)  # the study file as it was when the study began here

    def start(self, number: int, config: dict[str, Any], seed: int, retry_of: int | None) -> None:
        from mlflow.entities import Param

        tags = {**self.tags, "mlflow.parentRunId": self.parent, "optuna.trial_number": str(number)}
        if retry_of is not None:
            tags["retry_of"] = str(retry_of)
        run = self.client.create_run(self.experiment, run_name=f"trial-{number}", tags=tags)
        self.runs[number] = run.info.run_id
        params = {**config, "seed": seed}
        self.client.log_batch(run.info.run_id, params=[Param(k, _text(v)[:6000]) for k, v in params.items()])

    def epoch(self, number: int, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        run_id = self.runs.get(number)
        if run_id is not None:
            now = int(time.time() * 1000)
            self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def end(self, study: optuna.Study, trial: FrozenTrial, checkpoint: Path | None, name: str) -> None:
        run_id = self.runs.pop(trial.number, None)
        if run_id is None:  # another worker's trial (failed here as its worker was gone): its run, if any
            found = self.client.search_runs([self.experiment], filter_string=(
                f"tags.`mlflow.parentRunId` = '{self.parent}' and tags.`optuna.trial_number` = '{trial.number}'"),
                max_results=1)
            if not found or found[0].info.status != "RUNNING":
                return
            run_id = found[0].info.run_id
        self._finish(run_id, study, trial, checkpoint, name)

    def _finish(self, run_id: str, study: optuna.Study, trial: FrozenTrial, checkpoint: Path | None,
                name: str) -> None:
        from mlflow.entities import Metric, RunTag

        status, tags = _outcome(trial)
        now = int(time.time() * 1000)
        step = max(trial.intermediate_values, default=0)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in _final(trial, study).items()],
                              tags=[RunTag(k, v) for k, v in tags.items()])
        if checkpoint is not None:
            with tempfile.TemporaryDirectory() as tmp:  # the store names files by id: logged by its name
                named = Path(tmp) / name
                try:
                    os.link(checkpoint, named)
                except OSError:
                    shutil.copyfile(checkpoint, named)
                self.client.log_artifact(run_id, str(named))
        self.client.set_terminated(run_id, status=status)

    def close(self, study: optuna.Study, study_done: bool) -> None:
        for run_id in self.runs.values():  # started here, never told (the run ended by an error)
            self.client.set_terminated(run_id, status="FAILED")
        self.runs.clear()
        # Runs still RUNNING whose trial has finished: their worker died and Optuna's
        # fail_stale_trials (a heartbeat) failed the trial, which no worker of ours is told of.
        open_runs = self.client.search_runs([self.experiment], filter_string=(
            f"tags.`mlflow.parentRunId` = '{self.parent}' and attributes.status = 'RUNNING'"), max_results=1000)
        if open_runs:
            trials = {t.number: t for t in study.get_trials(deepcopy=False)}
            for run in open_runs:
                trial = trials.get(int(run.data.tags.get("optuna.trial_number", -1)))
                if trial is not None and trial.state.is_finished():
                    self._finish(run.info.run_id, study, trial, None, "")
        if study_done:
            self.client.set_terminated(self.parent, status="FINISHED")


class _TensorBoard:
    def __init__(self, target: Target, study: optuna.Study, tags: dict[str, str]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.target = target
        self.writer_class = SummaryWriter
        self.root = Path(target.where or TB_DIR) / study.study_name
        self.root.mkdir(parents=True, exist_ok=True)
        self.tags = tags
        self.writers: dict[int, Any] = {}

    def start(self, number: int, config: dict[str, Any], seed: int, retry_of: int | None) -> None:
        w = self.writer_class(log_dir=str(self.root / f"trial-{number:05d}"), flush_secs=10)
        self.writers[number] = w
        w.add_text("config", "\n".join(f"    {k}: {_text(v)}" for k, v in {**config, "seed": seed}.items()))
        w.add_text("study", "\n".join(f"    {k}: {v}" for k, v in self.tags.items())
                   + (f"\n    retry_of: {retry_of}" if retry_of is not None else ""))

    def epoch(self, number: int, step: int, metrics: dict[str, float]) -> None:
        w = self.writers.get(number)
        if w is not None:
            for k, v in metrics.items():
                w.add_scalar(k, v, step)

    def end(self, study: optuna.Study, trial: FrozenTrial, checkpoint: Path | None, name: str) -> None:
        from torch.utils.tensorboard.summary import hparams

        w = self.writers.pop(trial.number, None)
        if w is None:
            return
        _, tags = _outcome(trial)
        final = _final(trial, study)
        record = records.TrialRecord.of(trial)
        config = {k: (v if isinstance(v, (int, float, str, bool)) else _text(v))
                  for k, v in {**record.config, "seed": record.seed}.items() if v is not None}
        # the HParams dashboard's row, in the trial's own folder (SummaryWriter.add_hparams makes a subfolder)
        for summary in hparams(config, final):
            w.file_writer.add_summary(summary)
        for k, v in final.items():
            w.add_scalar(k, v, max(trial.intermediate_values, default=0))
        w.add_text("outcome", "\n".join(f"    {k}: {v}" for k, v in tags.items()))
        w.close()

    def close(self, study: optuna.Study, study_done: bool) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()
