"""trial -> params -> model -> fit, reporting every epoch to Optuna and pruning when told."""

from __future__ import annotations

import os
import socket
from typing import Any

import optuna
import torch

from models import count_params
from search.data import Dataset
from search.experiment import make_model, make_transform, subset, train_config
from search.space import active_params, suggest_params
from search.spec import StudySpec
from search.train import Diverged, EpochResult, fit

CURVES = ("train_loss", "train_loss_sum", "val_loss", "val_accuracy", "epoch_seconds")
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def trial_seed(study_seed: int, trial_number: int) -> int:
    return study_seed + trial_number


class Objective:
    """Callable for `study.optimize`; one per worker process (holds the resident data)."""

    def __init__(self, spec: StudySpec, data: Dataset, device: torch.device, fit_fn=fit) -> None:
        self.spec = spec
        self.data = data
        self.device = device
        self.train = subset(data.train, spec.train_size)
        self.fit = fit_fn  # the benchmarks swap in a no-op to measure the service's own overhead

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except Diverged as e:
            trial.set_user_attr("fail_reason", f"diverged: {e}")
            raise
        except torch.OutOfMemoryError:
            trial.set_user_attr("fail_reason", "out of memory")
            raise

    def _run(self, trial: optuna.Trial) -> float:
        params = suggest_params(trial, self.spec)
        seed = trial_seed(self.spec.seed, trial.number)
        model = make_model(params, seed, self.device, self.data.num_classes)
        attrs = {"config": active_params(params), "seed": seed, "device": str(self.device),
                 "n_params": count_params(model), "worker": WORKER}
        system_attrs = trial.study._storage.get_trial_system_attrs(trial._trial_id)
        if "failed_trial" in system_attrs:  # a re-run of a trial whose worker died or was stopped
            attrs["retry_of"] = system_attrs["failed_trial"]
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        curves: dict[str, list[float]] = {k: [] for k in CURVES}

        def on_epoch(r: EpochResult) -> None:
            for key, value in zip(CURVES, (r.train_loss, r.train_loss_sum, r.val_loss, r.val_accuracy, r.seconds)):
                curves[key].append(round(value, 5))
            value = getattr(r, self.spec.metric)
            trial.report(value, r.epoch)  # the learning curve the pruner and the dashboard see live
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {r.epoch} with {self.spec.metric} {value:.4f}")

        try:
            history = self.fit(model, self.train, self.data.val, train_config(params, seed), on_epoch,
                               make_transform(params, seed))
        finally:
            # Five writes per trial, not five per epoch: storage round trips dominate a short trial.
            if curves["train_loss"]:
                for key, values in curves.items():
                    trial.set_user_attr(key, values)
        return getattr(history[-1], self.spec.metric)


def merged_config(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """All parameters of a stored trial: the fixed ones recorded at its start plus the sampled ones."""
    return {**trial.user_attrs.get("config", {}), **trial.params}
