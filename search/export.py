"""Best trial -> a self-contained config file; config file -> a retrained, tested model."""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from torch import nn

from search import _check
from search._files import read_bytes, read_yaml, writable_file
from search.data import DATASETS, TRAIN_POOL, Dataset, Split, load_dataset
from search.device import resolve_device
from search.errors import SearchError
from search.experiment import build, check_fits, subset
from search.params import Params
from search.precision import PRECISIONS, Precision, forced
from search.train import evaluate, fit, warm_up
from search.trials import StudyInfo, TrialFailed, best_trial, params_of, primary

CONFIG_KEYS = ("dataset", "seed", "train_size", "precision", "params", "source")
MAX_CHECKPOINT = 8 << 30


@dataclass(frozen=True)
class TrainJob:
    """A config file as data: what `search train` retrains."""

    dataset: str
    params: Params
    seed: int
    train_size: int = TRAIN_POOL
    source: dict[str, Any] = field(default_factory=dict)
    # The numerics the trial trained with (search/precision.py picks them by timing, which
    # can differ between runs); a retrain on the same kind of device uses the same ones.
    precision: str | None = None


def best_job(study: optuna.Study, trial_number: int | None = None) -> TrainJob:
    """The best trial (or trial `trial_number`) as a job, ready to retrain or to write out."""
    trial = best_trial(study) if trial_number is None else _trial(study, trial_number)
    return job_of(trial, StudyInfo.of(study), study.study_name)


def job_of(trial: optuna.trial.FrozenTrial, info: StudyInfo, study_name: str) -> TrainJob:
    """A stored trial as the job that retrains it (what its note shows and export writes)."""
    source = {"study": study_name, "trial": trial.number, "metric": info.metric, "value": primary(trial)}
    return TrainJob(dataset=info.dataset, params=params_of(trial),
                    seed=int(trial.user_attrs.get("seed", info.seed + trial.number)),
                    train_size=info.train_size, source=source, precision=trial.user_attrs.get("precision"))


def best_config(study: optuna.Study, trial_number: int | None = None) -> dict[str, Any]:
    """The config of the best trial (or of trial `trial_number`), as `search export` writes it."""
    return config_of(best_job(study, trial_number))


def config_of(job: TrainJob) -> dict[str, Any]:
    return {"dataset": job.dataset, "seed": job.seed, "train_size": job.train_size,
            **({"precision": job.precision} if job.precision else {}),
            "params": job.params.active(), "source": job.source}


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SearchError(f"study {study.study_name!r} has no trial #{number} (it has trials 0..{len(trials) - 1})")
    trial = trials[number]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise SearchError(f"trial #{number} of {study.study_name!r} is {trial.state.name.lower()}, not complete: "
                          "export a completed trial")
    return trial


def export_checkpoint(study: optuna.Study, url: str, artifacts: str | None, trial_number: int,
                      out: Path) -> Path | None:
    """Copy the trial's stored checkpoint to `out` (None when the study kept none for it)."""
    from search.artifacts import artifact_dir, checkpoints, open_store

    store = open_store(artifact_dir(url, artifacts), create=False)
    artifact_id = checkpoints(study).get(trial_number) if store is not None else None
    if artifact_id is None:
        return None
    writable_file(out, "the weights")
    tmp = out.with_name(out.name + ".part")
    try:
        with store.open_reader(artifact_id) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SearchError(f"cannot copy the checkpoint of trial #{trial_number} to {out}: {e.strerror}") from None
    except Exception:  # the artifact file is gone (pruned by another worker, or deleted by hand)
        tmp.unlink(missing_ok=True)
        return None
    return out


class _ConfigDumper(yaml.SafeDumper):
    """Mappings as blocks, lists on one line: `widths: [512, 256]`."""


_ConfigDumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def config_text(config: dict[str, Any]) -> str:
    """A config as YAML, per-layer lists on one line ([512, 256])."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False)


def write_config(config: dict[str, Any], out: Path) -> None:
    header = "# Exported by `search export`; retrain with: search train --config " + str(out) + "\n"
    try:
        out.write_text(header + config_text(config))
    except OSError as e:
        raise SearchError(f"cannot write {out}: {e.strerror}") from None


def load_config(path: Path) -> TrainJob:
    if not path.exists():
        raise SearchError(f"config {path} does not exist: write one with `search export --out {path}`")
    doc = read_yaml(path, "config")
    where = str(path)
    _check.mapping(doc, where, "", "a mapping with dataset, seed, params")
    _check.keys(doc, CONFIG_KEYS, where, "")
    dataset = _check.choice(doc.get("dataset", "mnist"), DATASETS, where, "dataset")
    seed = _check.integer(doc.get("seed", 0), where, "seed", 0, 2**31 - 1)
    train_size = _check.integer(doc.get("train_size", TRAIN_POOL), where, "train_size", 1, TRAIN_POOL)
    params = Params.from_dict(doc.get("params", {}), where)
    source = doc.get("source") or {}
    _check.mapping(source, where, "source", "a mapping (study, trial, metric, value)")
    precision = doc.get("precision")
    if precision is not None:
        precision = _check.choice(precision, [str(p) for p in PRECISIONS], where, "precision")
    return TrainJob(dataset, params, seed, train_size, source, precision)


@dataclass
class TrainResult:
    model: nn.Module
    data: Dataset
    summary: dict[str, Any]
    test_pred: torch.Tensor


def retrain(job: TrainJob, *, device: str = "auto", data_dir: str | None = None, full: bool = False,
            on_epoch=None) -> TrainResult:
    """Train the config from scratch and evaluate it once on the test set.

    Default: the same training split as the search (so validation accuracy reproduces the
    trial's); `full=True` trains on all 60,000 training images and has no validation.
    """
    dev = resolve_device(device)
    data = load_dataset(job.dataset, data_dir, dev)
    try:
        check_fits(job.params, dev, data.num_classes)
    except TrialFailed as e:
        raise SearchError(f"cannot train this config: {e}; choose a smaller model") from None
    if full:
        train = Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y]))
        val = None
    else:
        train, val = subset(data.train, job.train_size), data.val
    warm_up()  # outside train_seconds
    model = build(job.params, job.seed, dev, data.num_classes)
    same = Precision.parse(job.precision) if job.precision and dev.type == "cpu" else None
    start = time.perf_counter()
    with forced(same) if same is not None else contextlib.nullcontext():
        history = fit(model, train, val, job.params.train_config(job.seed), on_epoch)
    seconds = time.perf_counter() - start
    test_loss, test_acc, pred = evaluate(model, data.test)
    last = history[-1]
    summary = {
        "dataset": job.dataset,
        "model": job.params.model,
        "train_images": len(train),
        "epochs": len(history),
        "train_loss": last.train_loss,
        "val_accuracy": None if full else last.val_accuracy,
        "val_loss": None if full else last.val_loss,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "train_seconds": seconds,
        "device": str(dev),
        "precision": str(getattr(model, "precision", "fp32")),
        "seed": job.seed,
        "source": job.source,
    }
    return TrainResult(model, data, summary, pred)


def save_weights(result: TrainResult, job: TrainJob, path: Path) -> None:
    blob = {"state_dict": result.model.state_dict(), "params": job.params.active(), "dataset": job.dataset,
            "seed": job.seed, "summary": {k: v for k, v in result.summary.items() if k != "source"}}
    tmp = path.with_name(path.name + ".part")
    try:
        torch.save(blob, tmp)
        tmp.replace(path)  # never a half-written checkpoint under the real name
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SearchError(f"cannot write {path}: {e.strerror}") from None


def load_weights(path: Path, device: str = "cpu") -> nn.Module:
    """A model saved by `search train --save`, loaded with weights_only=True."""
    what = "checkpoint written by `search train --save`"
    raw = read_bytes(path, "checkpoint", MAX_CHECKPOINT)
    try:
        blob = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
    except Exception as e:
        raise SearchError(f"{path}: not a {what} ({type(e).__name__})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict) or "params" not in blob:
        raise SearchError(f"{path}: not a {what} (no state_dict and params)")
    params = Params.from_dict(blob["params"], str(path))
    model = build(params, 0, torch.device(device))
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise SearchError(f"{path}: the weights do not fit the model its params describe "
                          f"({str(e).splitlines()[0][:120]})") from None
    return model
