"""Best trial -> a self-contained config file; config file -> a retrained, tested model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from torch import nn

from search.data import Dataset, Split, load_dataset
from search.device import resolve_device
from search.errors import SearchError
from search.experiment import make_model, make_transform, subset, train_config
from search.objective import merged_config
from search.space import active_params
from search.spec import DATASETS, TRAIN_POOL, check_params, load_yaml
from search.study import best_trial
from search.train import evaluate, fit

FULL_TRAIN = 60_000


@dataclass(frozen=True)
class TrainJob:
    dataset: str
    params: dict[str, Any]
    seed: int
    train_size: int
    source: dict[str, Any] = field(default_factory=dict)


def best_config(study: optuna.Study, trial_number: int | None = None) -> dict[str, Any]:
    """The config of the best trial (or of trial `trial_number`), ready for `search train`."""
    trial = best_trial(study) if trial_number is None else _trial(study, trial_number)
    attrs = study.user_attrs
    return {
        "dataset": attrs.get("dataset", "mnist"),
        "seed": int(trial.user_attrs.get("seed", attrs.get("seed", 0) + trial.number)),
        "train_size": int(attrs.get("train_size", TRAIN_POOL)),
        "params": active_params(merged_config(trial)),
        "source": {
            "study": study.study_name,
            "trial": trial.number,
            "metric": attrs.get("metric", "val_accuracy"),
            "value": trial.value,
        },
    }


def _trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SearchError(f"study {study.study_name!r} has no trial #{number} (it has trials 0..{len(trials) - 1})")
    trial = trials[number]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise SearchError(f"trial #{number} of {study.study_name!r} is {trial.state.name.lower()}, not complete: "
                          "export a completed trial")
    return trial


def write_config(config: dict[str, Any], out: Path) -> None:
    if not out.parent.is_dir():
        raise SearchError(f"cannot write {out}: directory {out.parent} does not exist")
    header = "# Exported by `search export`; retrain with: search train --config " + str(out) + "\n"
    out.write_text(header + yaml.safe_dump(config, sort_keys=False))


def load_config(path: Path) -> TrainJob:
    if not path.is_file():
        raise SearchError(f"config {path} does not exist: write one with `search export --out {path}`")
    doc = load_yaml(path)
    where = str(path)
    if not isinstance(doc, dict):
        raise SearchError(f"{where}: expected a mapping with dataset, seed, params; got {type(doc).__name__}")
    unknown = set(doc) - {"dataset", "seed", "train_size", "params", "source"}
    if unknown:
        raise SearchError(f"{where}: {sorted(unknown)[0]}: unknown key; expected dataset, seed, train_size, "
                          "params, source")
    dataset = doc.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise SearchError(f"{where}: dataset: unknown value {dataset!r}; expected one of {', '.join(DATASETS)}")
    seed, train_size = doc.get("seed", 0), doc.get("train_size", TRAIN_POOL)
    for key, value, high in (("seed", seed, 2**31 - 1), ("train_size", train_size, TRAIN_POOL)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise SearchError(f"{where}: {key}: expected an integer in 0..{high}, got {value!r}")
    params = check_params(doc.get("params", {}), where)
    return TrainJob(dataset, params, seed, train_size, doc.get("source") or {})


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
    if full:
        train = Split(torch.cat([data.train.x, data.val.x]), torch.cat([data.train.y, data.val.y]))
        val = None
    else:
        train, val = subset(data.train, job.train_size), data.val
    model = make_model(job.params, job.seed, dev, data.num_classes)
    start = time.perf_counter()
    history = fit(model, train, val, train_config(job.params, job.seed), on_epoch,
                  make_transform(job.params, job.seed))
    seconds = time.perf_counter() - start
    test_loss, test_acc, pred = evaluate(model, data.test)
    last = history[-1]
    summary = {
        "dataset": job.dataset,
        "model": job.params["model"],
        "train_images": len(train),
        "epochs": len(history),
        "train_loss": last.train_loss,
        "val_accuracy": None if full else last.val_accuracy,
        "val_loss": None if full else last.val_loss,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "train_seconds": seconds,
        "device": str(dev),
        "seed": job.seed,
        "source": job.source,
    }
    return TrainResult(model, data, summary, pred)


def save_weights(result: TrainResult, job: TrainJob, path: Path) -> None:
    if not path.parent.is_dir():
        raise SearchError(f"cannot write {path}: directory {path.parent} does not exist")
    torch.save({"state_dict": result.model.state_dict(), "params": job.params, "dataset": job.dataset,
                "seed": job.seed, "summary": {k: v for k, v in result.summary.items() if k != "source"}}, path)


def load_weights(path: Path, device: str = "cpu") -> nn.Module:
    """A model saved by `search train --save`, loaded with weights_only=True."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise SearchError(f"{path}: not a checkpoint written by `search train --save` ({type(e).__name__})") from None
    params = check_params(blob["params"], str(path))
    model = make_model(params, blob.get("seed", 0), torch.device(device))
    model.load_state_dict(blob["state_dict"])
    return model
