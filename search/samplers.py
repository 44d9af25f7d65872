"""Sampler and pruner names -> Optuna objects. Each registry entry is the one place that
names an allowed choice, its options (checked in study files) and how to build it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import optuna

if TYPE_CHECKING:
    from search.spec import StudySpec


@dataclass(frozen=True)
class Option:
    kind: str  # int | float | bool
    low: float = 0
    high: float = 2**31 - 1


@dataclass(frozen=True)
class Entry:
    build: Callable[..., Any]
    help: str
    options: dict[str, Option] = field(default_factory=dict)
    # The study seed only, never offset per run or worker: GridSampler shuffles its grid by
    # the seed and gives trial k the k-th point, so every process must see the same order.
    fixed_seed: bool = False
    one_of: tuple[str, ...] = ()  # options of which at least one must be given


_INT0, _INT1, _INT2, _BOOL = Option("int", 0), Option("int", 1), Option("int", 2), Option("bool")
_PERCENT, _DELTA = Option("float", 0, 100), Option("float", 0, 1)
_BOUND = Option("float", -1e12, 1e12)

# build(options, spec, seed) -> sampler. `seed` (every sampler's option) is taken out
# before: the study seeds the sampler itself (see study.open_study).
SAMPLERS: dict[str, Entry] = {
    "tpe": Entry(lambda o, spec, seed: optuna.samplers.TPESampler(seed=seed, **o),
                 "tree-structured Parzen estimator (Optuna 5: multivariate, constant liar)",
                 {"seed": _INT0, "n_startup_trials": _INT0, "multivariate": _BOOL, "group": _BOOL,
                  "constant_liar": _BOOL}),
    "gp": Entry(lambda o, spec, seed: optuna.samplers.GPSampler(seed=seed, **o),
                "Gaussian-process Bayesian optimisation (cost grows as trials^3)",
                {"seed": _INT0, "n_startup_trials": _INT0}),
    "qmc": Entry(lambda o, spec, seed: optuna.samplers.QMCSampler(seed=seed, scramble=True, **o),
                 "scrambled Sobol quasi-random points (categorical axes: random)", {"seed": _INT0},
                 fixed_seed=True),  # one Sobol sequence per study, shared by workers and resumes
    "random": Entry(lambda o, spec, seed: optuna.samplers.RandomSampler(seed=seed), "uniform random search",
                    {"seed": _INT0}),
    "nsga2": Entry(lambda o, spec, seed: optuna.samplers.NSGAIISampler(seed=seed, **o),
                   "genetic algorithm for Pareto fronts (honours floors and ceilings)",
                   {"seed": _INT0, "population_size": _INT2}),
    "grid": Entry(lambda o, spec, seed: optuna.samplers.GridSampler(spec.grid(), seed=seed),
                  "every combination of the choices, in random order", {"seed": _INT0}, fixed_seed=True),
}

# build(options, spec) -> pruner
PRUNERS: dict[str, Entry] = {
    "median": Entry(lambda o, spec: optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 1, **o}),
                    "stop a trial below the median of earlier trials at the same epoch",
                    {"n_startup_trials": _INT0, "n_warmup_steps": _INT0}),
    "successive_halving": Entry(lambda o, spec: optuna.pruners.SuccessiveHalvingPruner(**o),
                                "asynchronous successive halving over epochs",
                                {"min_resource": _INT1, "reduction_factor": _INT2}),
    "hyperband": Entry(lambda o, spec: optuna.pruners.HyperbandPruner(max_resource=spec.max_epochs(), **o),
                       "several successive-halving brackets (max resource: the space's most epochs)",
                       {"min_resource": _INT1, "reduction_factor": _INT2}),
    "percentile": Entry(lambda o, spec: optuna.pruners.PercentilePruner(**{"percentile": 25.0, "n_startup_trials": 3,
                                                                           "n_warmup_steps": 1, **o}),
                        "stop a trial outside the best `percentile` % of earlier trials at the same epoch",
                        {"percentile": _PERCENT, "n_startup_trials": _INT0, "n_warmup_steps": _INT0}),
    "patient": Entry(lambda o, spec: optuna.pruners.PatientPruner(
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1), **{"patience": 2, **o}),
                     "the median rule, applied only after `patience` epochs without improvement",
                     {"patience": _INT0, "min_delta": _DELTA}),
    "threshold": Entry(lambda o, spec: optuna.pruners.ThresholdPruner(**{"n_warmup_steps": 0, **o}),
                       "stop a trial whose reported metric is below `lower` or above `upper` (no ranking: the "
                       "one pruner for a cost objective with a floor)",
                       {"lower": _BOUND, "upper": _BOUND, "n_warmup_steps": _INT0}, one_of=("lower", "upper")),
    "none": Entry(lambda o, spec: optuna.pruners.NopPruner(), "never prune"),
}


# What a study file that names no sampler or pruner gets: the fastest method of the replay
# benchmark (docs/benchmarks.md, section 6; bench/replay.py): to within 0.5 point of the
# recorded table's best in a median 46 s of recorded training (7.0x random search without
# pruning, 3.1x TPE + median as shipped before), in 30 of 30 seeds.
DEFAULT_SAMPLER: dict[str, Any] = {"name": "qmc"}
DEFAULT_PRUNER: dict[str, Any] = {"name": "successive_halving"}
# Cost-aware studies (a floor or ceiling, or several objectives): QMC ignores constraints,
# TPE honours them (Optuna 5) and models Pareto fronts; they prune only where search/goal.py says.
COST_AWARE_SAMPLER: dict[str, Any] = {"name": "tpe"}


def make_sampler(spec: StudySpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with its seed (the file's `sampler.seed`, else the study
    seed) plus `offset`: the trials so far and the worker, so that a resumed run or a second
    worker does not replay the first one's random suggestions (except where the seed must
    stay fixed, as for the grid)."""
    entry = SAMPLERS[spec.sampler["name"]]
    conf = {k: v for k, v in spec.sampler.items() if k not in ("name", "seed")}
    base = spec.sampler.get("seed", spec.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler, GPSampler
        return entry.build(conf, spec, base if entry.fixed_seed else base + offset)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    conf = {k: v for k, v in spec.pruner.items() if k != "name"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # PatientPruner
        return PRUNERS[spec.pruner["name"]].build(conf, spec)
