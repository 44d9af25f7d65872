"""Python calls -> what the CLI does: run a study, export its best trial, choose an
ensemble of its kept checkpoints, retrain a config (or an ensemble's).

For notebooks and scripts (README, "Python API"). Every call takes what the CLI takes, with
the same defaults: the storage is `SEARCH_STORAGE` or `sqlite:///search.db` in the working
directory, the device `SEARCH_DEVICE` or `auto`, data in `SEARCH_DATA_DIR` or found by name. Progress is the CLI's (live bars in a
terminal or a notebook, plain lines elsewhere) or nothing with `progress=False`. Mistakes
raise `search.SearchError` with the CLI's one-line message.

    import search
    result = search.run("studies/quickstart.yaml", n_trials=10)
    config = search.export("quickstart", "best.yaml")
    trained = search.train("best.yaml")
    trained.summary["test_accuracy"]
    chosen = search.ensemble("quickstart", "ensemble.yaml", size=5)  # needs keep_checkpoints
    search.train("ensemble.yaml").summary["test_accuracy"]
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from search.artifacts import Exported, artifact_dir, export_trial
from search.config import EnsembleJob, TrainJob, load_job, parse_job
from search.ensembles import (
    Chosen,
    EnsembleResult,
    choose_ensemble,
    retrain_ensemble,
    save_ensemble,
    write_ensemble_config,
)
from search.errors import SearchError
from search.outputs import check_output
from search.progress import RunView, best_text, fit_bar, trial_line
from search.spec import StudySpec, parse_study, read_study_file
from search.storage import mask_url, storage_url
from search.study import RunOptions, RunResult, load_stored_study, run_study
from search.trained import TrainResult, retrain, save_weights
from search.trials import best_or_none, primary, study_facts

__all__ = ["best_config", "ensemble", "export", "load_study", "run", "train"]

def _data_dir(given: str | None) -> str | None:
    return given or os.environ.get("SEARCH_DATA_DIR") or None  # as the CLI's --data-dir reads it


def _device(given: str | None) -> str:
    return given or os.environ.get("SEARCH_DEVICE") or "auto"  # as the CLI's --device


StudyLike = str | Path | dict[str, Any] | StudySpec
ConfigLike = str | Path | dict[str, Any] | TrainJob | EnsembleJob


def _spec(study: StudyLike, sets: list[str] | None) -> StudySpec:
    if isinstance(study, StudySpec):
        if sets:
            raise SearchError("sets=: give the study as a file name or a dict to amend it (a StudySpec is already read)")
        return study
    if isinstance(study, dict):
        from search.spec import apply_overrides

        doc = apply_overrides(dict(study), sets) if sets else study
        return parse_study(doc, Path.cwd() / f"{study.get('name', 'study')}.yaml")  # relative paths: from here
    return read_study_file(str(study), overrides=sets)


def run(study: StudyLike, *, storage: str | None = None, n_trials: int | None = None, timeout: float | None = None,
        seed: int | None = None, device: str | None = None, data_dir: str | None = None, workers: int = 1,
        sets: list[str] | None = None, artifacts: str | None = None, allow_change: bool = False,
        track: list[str] | None = None, progress: bool = True) -> RunResult:
    """Run or resume a study, as `search run` does; returns when its budget is full.

    `study`: a study file's path or name in studies/ (`"quickstart"`), a dict with the same
    keys (its `name` names the study, else "study"), or a `StudySpec`. `sets`: the CLI's
    `--set KEY=VALUE` lines. `workers > 1` runs that many processes on this machine. `track`:
    the CLI's `--track` values (`["mlflow"]`, `["tensorboard:runs"]`); None: the file's `track`.
    The result's `.study` is the `optuna.Study`, stored in `storage`."""
    spec = _spec(study, sets)
    url = storage_url(storage)
    opts = RunOptions(device=_device(device), data_dir=_data_dir(data_dir), n_trials=n_trials, timeout=timeout, seed=seed,
                      workers=workers, artifacts=artifacts, allow_change=allow_change,
                      track=None if track is None else tuple(track))
    console = Console(emoji=False, highlight=False)
    if workers > 1:
        from search.workers import run_workers

        start = time.perf_counter()
        done = run_workers(spec, url, opts)
        if done.errors:
            raise SearchError(done.errors[0])
        st = load_stored_study(spec.name, url)
        return RunResult(st, done.facts["done"], time.perf_counter() - start, done.notes)
    view = RunView(console, show=progress)

    def on_start(st, remaining: int, header: list[str]) -> None:
        if progress:
            console.print(f"study {spec.name}: {len(st.trials)} trials stored, {remaining} to run; "
                          f"storage {mask_url(url)}", markup=False, soft_wrap=True)
        view.start(remaining)

    def on_trial(st, trial) -> None:
        top = best_or_none(st)
        view.finished(trial_line(trial, spec.goal, best_text(None if top is None else primary(top),
                                                             None if top is None else top.number), console.width))

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is ours, as in the CLI
    try:
        result = run_study(spec, url, opts, on_trial=on_trial, on_start=on_start, on_step=view.step)
    finally:
        view.stop()
        optuna.logging.set_verbosity(level)
    for note in result.notes:
        warnings.warn(note, stacklevel=2)
    if progress:
        facts = study_facts(result.study)
        console.print(f"ran {result.ran} trials in {result.seconds:.0f}s; best: trial #{facts['best_trial']} "
                      f"{facts['best_value']}", markup=False)
    return result


def export(study: str, out: str | Path = "best.yaml", *, storage: str | None = None, trial: int | None = None,
           model_format: str | None = None, image_input: str = "uint8", data_dir: str | None = None,
           artifacts: str | None = None) -> Exported:
    """Write a stored study's best (or `trial`) config to `out`, its kept checkpoint beside it,
    and with `model_format` ('onnx', 'torchscript') a model that takes raw images, as
    `search export` does. The result's `.config` is the config as a dict."""
    url = storage_url(storage)
    st = load_stored_study(study, url)
    return export_trial(st, url, artifacts, trial, Path(out), model_format, _data_dir(data_dir), image_input)


def best_config(study: str, *, storage: str | None = None, trial: int | None = None) -> dict[str, Any]:
    """The config of a stored study's best (or `trial`) trial as a dict, what `search export`
    writes; `search.train` takes it as it is."""
    from search.config import best_config as config_of_best

    return config_of_best(load_stored_study(study, storage_url(storage)), trial)


def ensemble(study: str | list[str], out: str | Path = "ensemble.yaml", *, size: int = 5, storage: str | None = None,
             device: str | None = None, data_dir: str | None = None, artifacts: str | None = None) -> Chosen:
    """Choose an ensemble among a stored study's kept checkpoints (or several studies' on
    one dataset: a list of names) and write its config to `out`, as `search ensemble` does:
    greedy selection with replacement on the validation images, at most `size` picks,
    nothing retrained. The result has `.members` (study, trial, weight, val_accuracy,
    test_accuracy), `.val_accuracy`, `.test_accuracy` and `.job`, the config `search.train` takes."""
    url, path = storage_url(storage), Path(out)
    check_output(path, url, artifact_dir(url, artifacts), "the ensemble config")  # before any work, as the CLI
    studies = [load_stored_study(name, url) for name in ([study] if isinstance(study, str) else study)]
    chosen = choose_ensemble(studies, url, artifacts, size, data_dir=_data_dir(data_dir), device=_device(device))
    write_ensemble_config(chosen, path)
    return chosen


def train(config: ConfigLike, *, device: str | None = None, data_dir: str | None = None, full: bool = False,
          save: str | Path | None = None, image_input: str = "uint8",
          progress: bool = True) -> TrainResult | EnsembleResult:
    """Retrain a config from scratch and test it once, as `search train` does: `config` is a
    config file, the dict `search.export(...).config` holds, or a `TrainJob`. `save`: a
    checkpoint (.pt), ONNX (.onnx) or TorchScript (.ts). The result has `.model`, `.summary`
    (test_accuracy, val_accuracy, train_seconds, ...) and `.check` (how a saved ONNX or
    TorchScript file compared with PyTorch).

    An ensemble config (`search.ensemble`'s file, its dict, or an `EnsembleJob`) retrains its
    members one by one and tests their weighted average once: the result's `.summary` has
    the ensemble's accuracies and a row per member, `.results` each member's own result
    (with `save`, each member's file is `model-trialN.pt` beside it, its `.check` set)."""
    if isinstance(config, (TrainJob, EnsembleJob)):
        job = config
    elif isinstance(config, dict):
        job = parse_job(config, Path.cwd() / "config")
    else:
        job = load_job(Path(config))
    dev, where = _device(device), _data_dir(data_dir)
    bar = fit_bar(Console(emoji=False, highlight=False), "training", show=progress)
    if isinstance(job, EnsembleJob):
        with bar as on_step:
            together = retrain_ensemble(job, device=dev, data_dir=where, full=full, on_step=on_step)
        if save is not None:
            for r, check in zip(together.results, save_ensemble(together, job, Path(save), image_input), strict=True):
                r.check = check
        return together
    with bar as on_step:
        result = retrain(job, device=dev, data_dir=where, full=full, on_step=on_step)
    if save is not None:
        result.check = save_weights(result, job, Path(save), image_input)
    return result


def load_study(study: str, studies_dir: Path | None = None, overrides: list[str] | None = None) -> StudySpec:
    """Deprecated: `search.read_study_file` (this name reads a file; `optuna.load_study` loads a stored study)."""
    warnings.warn("search.load_study is deprecated: it reads a study file, use search.read_study_file "
                  "(search.load_stored_study loads a stored one)", DeprecationWarning, stacklevel=2)
    return read_study_file(study, studies_dir, overrides)
