"""trial -> Params -> model -> fit, reporting every epoch to Optuna and pruning when told;
the study's goal (search/goal.py) turns the run into its objective values and constraints."""

from __future__ import annotations

import os
import socket

import optuna
import torch

from models import planned_params
from search import _optuna
from search.artifacts import Recorder
from search.data import Dataset
from search.experiment import build, check_fits, is_out_of_memory, subset
from search.goal import measure
from search.space import suggest_params
from search.spec import StudySpec
from search.train import Diverged, EpochResult, fit, warm_up
from search.trials import CURVES, Failure, TrialFailed, curve_point

WORKER = f"{socket.gethostname()}:{os.getpid()}"


def trial_seed(study_seed: int, trial_number: int) -> int:
    return study_seed + trial_number


class Objective:
    """Callable for the trial loop; one per worker process (holds the resident data).

    Raises `optuna.TrialPruned` when the pruner says so and `TrialFailed` for a trial that
    ends without a value for a known reason (diverged, out of memory, too large)."""

    def __init__(self, spec: StudySpec, data: Dataset, device: torch.device, fit_fn=fit,
                 recorder: Recorder | None = None) -> None:
        self.spec = spec
        self.recorder = recorder or Recorder(None)
        self.data = data
        self.device = device
        self.train = subset(data.train, spec.train_size)
        self.fit = fit_fn  # the benchmarks swap in a no-op to measure the service's own overhead
        warm_up()  # once per process, outside every trial's seconds

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        params = suggest_params(trial, self.spec)
        seed = trial_seed(self.spec.seed, trial.number)
        n_params = planned_params(params.model_config(self.data.num_classes))
        attrs = {"config": params.active(), "seed": seed, "device": str(self.device), "n_params": n_params,
                 "worker": WORKER}
        retry_of = _optuna.system_attrs(trial).get("failed_trial")
        if retry_of is not None:  # a re-run of a trial whose worker died or was stopped
            attrs["retry_of"] = retry_of
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        check_fits(params, self.device, self.data.num_classes, n_params)
        curves: dict[str, list[float]] = {k: [] for k in CURVES}
        goal, done, measured = self.spec.goal, [], None

        def on_epoch(r: EpochResult) -> None:
            done.append(r)
            for key, value in curve_point(r).items():
                curves[key].append(value)
            if goal.curve is None:
                return  # several objectives: Optuna takes no intermediate values
            value = getattr(r, goal.curve)
            trial.report(value, r.epoch)  # the learning curve the pruner and the dashboard see live
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {r.epoch} with {goal.curve} {value:.4f}")

        try:
            model = build(params, seed, self.device, self.data.num_classes)
            self.fit(model, self.train, self.data.val, params.train_config(seed), on_epoch)
            # the numerics fit chose by timing, which may differ in another run: export and retrain reuse them
            trial.set_user_attr("precision", str(getattr(model, "precision", "fp32")))
        except Diverged as e:
            raise TrialFailed(Failure.DIVERGED, str(e)) from None
        except (RuntimeError, MemoryError) as e:
            if not is_out_of_memory(e):
                raise
            raise TrialFailed(Failure.OUT_OF_MEMORY, str(e).splitlines()[0][:160]) from None
        finally:
            # One write per curve per trial, not per epoch: storage round trips dominate a short trial.
            if curves["train_loss"]:
                for key, values in curves.items():
                    trial.set_user_attr(key, values)
            measured = measure(done, n_params) if done else None
            if measured and goal.bounds:  # pruned trials too: TPE counts a pruned infeasible trial as infeasible
                for name, violation in goal.violations(measured).items():
                    trial.set_constraint(name, violation)
        values = goal.values(measured)
        self.recorder.save_checkpoint(trial.study, _optuna.trial_id(trial), model, {
            "params": params.active(), "dataset": self.spec.dataset, "seed": seed,
            "source": {"study": self.spec.name, "trial": trial.number, "metric": self.spec.metric, "value": values[0]}})
        return values if goal.multi else values[0]
