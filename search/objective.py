"""trial -> Params -> model -> fit, reporting every epoch to Optuna and pruning when told;
the study's goal (search/goal.py) turns the run into its objective values and constraints."""

from __future__ import annotations

import os
import socket
from typing import Callable

import optuna
import torch

from models import planned_params
from search import _optuna, records
from search._signals import raise_held, signals_held
from search.artifacts import Recorder
from search.config import source_of, trial_seed
from search.data import Dataset
from search.experiment import is_out_of_memory, prepare, subset
from search.fit import Diverged, EpochResult, Step, fit, warm_up
from search.goal import measure
from search.params import Params, is_factory
from search.space import suggest_params
from search.spec import StudySpec
from search.trials import Failure, TrialFailed

WORKER = f"{socket.gethostname()}:{os.getpid()}"

__all__ = ["Objective", "WORKER"]


class Objective:
    """Callable for the trial loop; one per worker process (holds the resident data).

    Raises `optuna.TrialPruned` when the pruner says so and `TrialFailed` for a trial that
    ends without a value for a known reason (diverged, out of memory, too large)."""

    def __init__(self, spec: StudySpec, data: Dataset, device: torch.device, fit_fn=fit,
                 recorder: Recorder | None = None, on_step: Callable[[int, Step], None] | None = None) -> None:
        self.spec = spec
        self.on_step = on_step  # (trial number, how far its fit has come): a progress display
        self.recorder = recorder or Recorder(None)
        self.data = data
        self.device = device
        self.train = subset(data.train, spec.train_size)
        self.fit = fit_fn  # the benchmarks swap in a no-op to measure the service's own overhead
        warm_up(Params())  # once per process, outside every trial's seconds

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        params = suggest_params(trial, self.spec)
        original = records.retry_of(_optuna.trial_system_attrs(trial))  # the first trial of a retry chain
        # a retry runs with the seed of the trial it re-runs, so it reports what that one would have
        seed = trial_seed(self.spec.seed, trial.number if original is None else original)
        shape = self.data.shape
        factory = is_factory(params.model)  # the user's network: its size is known once it is built
        # held: an interrupt raised inside torch's meta-device context corrupts its mode stack
        # (a RuntimeError instead of the interrupt, seen once in CI under SIGHUP)
        with signals_held() as held:
            n_params = None if factory else planned_params(params.model_config(shape))
        if held:
            raise_held(held)
        config = params.active()
        records.TrialStart(config=config, seed=seed, device=str(self.device), n_params=n_params,
                           worker=WORKER, retry_of=original).write(trial)
        tracker = self.recorder.tracker
        tracker.start(trial.number, config, seed, original)
        curves: dict[str, list[float]] = {k: [] for k in records.CURVES}
        goal, done, measured, precision = self.spec.goal, [], None, None

        def on_epoch(r: EpochResult) -> None:
            done.append(r)
            point = records.curve_point(r)
            for key, value in point.items():
                curves[key].append(value)
            tracker.epoch(trial.number, r.epoch, point)  # the pruned epoch too
            if goal.curve is None:
                return  # several objectives: Optuna takes no intermediate values
            value = getattr(r, goal.curve)
            trial.report(value, r.epoch)  # the learning curve the pruner and the dashboard see live
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {r.epoch} with {goal.curve} {value:.4f}")

        try:
            model, counted = prepare(params, seed, self.device, shape, n_params)
            if n_params is None:  # the user's factory: counted once built
                n_params = counted
                records.write_n_params(trial, n_params)
            # the numerics fit chose by timing, which may differ in another run: export and retrain reuse them
            on_step = self.on_step
            progress = None if on_step is None else lambda step: on_step(trial.number, step)
            precision = str(self.fit(model, self.train, self.data.val, params, seed, on_epoch,
                                     on_step=progress).precision)
        except Diverged as e:
            raise TrialFailed(Failure.DIVERGED, str(e)) from None
        except (RuntimeError, MemoryError) as e:
            if not is_out_of_memory(e):
                raise
            raise TrialFailed(Failure.OUT_OF_MEMORY, str(e).splitlines()[0][:160]) from None
        finally:
            records.write_outcome(trial, curves, precision)
            measured = measure(done, n_params) if done and n_params is not None else None
            if measured and goal.bounds:  # pruned trials too: TPE counts a pruned infeasible trial as infeasible
                for name, violation in goal.violations(measured).items():
                    trial.set_constraint(name, violation)
        assert measured is not None  # fit runs at least one epoch or raises
        values = goal.values(measured)
        source = source_of(self.spec.name, trial.number, self.spec.metric, values[0])
        self.recorder.save_checkpoint(trial.study, _optuna.trial_id(trial), records.checkpoint(
            model.state_dict(), params.active(), self.spec.dataset.stored(), seed, self.data.facts(),
            str(self.spec.code_dir()) if is_factory(params.model) else None, source=source))
        return values if goal.multi else values[0]
