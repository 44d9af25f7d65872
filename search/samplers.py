"""Sampler and pruner names -> Optuna objects. Each registry entry is the one place that
names an allowed choice, its options (checked in study files by `parse_named`), its policy
(whether a pruner ranks trials) and how to build it from plain values: no StudySpec here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import optuna

from search import _check, _optuna
from search.errors import SearchError
from search.goal import Goal

__all__ = ["COST_AWARE_SAMPLER", "DEFAULT_PRUNER", "DEFAULT_SAMPLER", "Entry", "Option", "PRUNERS", "SAMPLERS",
           "check_pruner", "describe_named", "make_pruner", "make_sampler", "parse_named"]


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
    # the seed and gives trial k the k-th point, so every process must see the same order
    # (QMC: one Sobol sequence, numbered in the study). `build` also gets the offset seed.
    fixed_seed: bool = False
    one_of: tuple[str, ...] = ()  # options of which at least one must be given
    # Pruners: `ranks` compares a trial with the others in the objective's direction (median,
    # successive halving, ...); `prunes` is False for the pruner that never stops a trial.
    ranks: bool = True
    prunes: bool = True


_INT0, _INT1, _INT2, _BOOL = Option("int", 0), Option("int", 1), Option("int", 2), Option("bool")
_PERCENT, _DELTA = Option("float", 0, 100), Option("float", 0, 1)
_BOUND = Option("float", -1e12, 1e12)

# build(options, seed, grid) -> sampler; `grid` is the space's choices (the grid sampler's
# points). `seed` (every sampler's option) is taken out before: see make_sampler. Entries
# with a fixed seed take a fourth argument, the seed offset per run and worker.
SAMPLERS: dict[str, Entry] = {
    "tpe": Entry(lambda o, seed, grid: optuna.samplers.TPESampler(seed=seed, **o),
                 "tree-structured Parzen estimator (Optuna 5: multivariate, constant liar)",
                 {"seed": _INT0, "n_startup_trials": _INT0, "multivariate": _BOOL, "group": _BOOL,
                  "constant_liar": _BOOL}),
    "gp": Entry(lambda o, seed, grid: optuna.samplers.GPSampler(seed=seed, **o),
                "Gaussian-process Bayesian optimisation (cost grows as trials^3)",
                {"seed": _INT0, "n_startup_trials": _INT0}),
    # A study's first trials, asked before any trial has suggested its parameters, are drawn by
    # QMC's independent sampler: seeded per worker (`worker_seed`), or every worker that starts
    # at once trains the same first point (3 of 8 journal workers did, bench/scale.py)
    "qmc": Entry(lambda o, seed, grid, worker_seed: _optuna.QMCSampler(
                     seed=seed, scramble=True, independent_sampler=optuna.samplers.RandomSampler(seed=worker_seed), **o),
                 "scrambled Sobol quasi-random points (categorical axes: random)", {"seed": _INT0},
                 fixed_seed=True),  # one Sobol sequence per study, shared by workers and resumes
    "random": Entry(lambda o, seed, grid: optuna.samplers.RandomSampler(seed=seed), "uniform random search",
                    {"seed": _INT0}),
    "nsga2": Entry(lambda o, seed, grid: optuna.samplers.NSGAIISampler(seed=seed, **o),
                   "genetic algorithm for Pareto fronts (honours floors and ceilings)",
                   {"seed": _INT0, "population_size": _INT2}),
    "grid": Entry(lambda o, seed, grid, worker_seed: optuna.samplers.GridSampler(grid, seed=seed),
                  "every combination of the choices, in random order", {"seed": _INT0}, fixed_seed=True),
}

# build(options, max_epochs) -> pruner; `max_epochs` is the most epochs the space allows.
PRUNERS: dict[str, Entry] = {
    "median": Entry(lambda o, top: optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 1, **o}),
                    "stop a trial below the median of earlier trials at the same epoch",
                    {"n_startup_trials": _INT0, "n_warmup_steps": _INT0}),
    "successive_halving": Entry(lambda o, top: optuna.pruners.SuccessiveHalvingPruner(**o),
                                "asynchronous successive halving over epochs",
                                {"min_resource": _INT1, "reduction_factor": _INT2}),
    "hyperband": Entry(lambda o, top: optuna.pruners.HyperbandPruner(max_resource=top, **o),
                       "several successive-halving brackets (max resource: the space's most epochs)",
                       {"min_resource": _INT1, "reduction_factor": _INT2}),
    "percentile": Entry(lambda o, top: optuna.pruners.PercentilePruner(**{"percentile": 25.0, "n_startup_trials": 3,
                                                                          "n_warmup_steps": 1, **o}),
                        "stop a trial outside the best `percentile` % of earlier trials at the same epoch",
                        {"percentile": _PERCENT, "n_startup_trials": _INT0, "n_warmup_steps": _INT0}),
    "patient": Entry(lambda o, top: optuna.pruners.PatientPruner(
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1), **{"patience": 2, **o}),
                     "the median rule, applied only after `patience` epochs without improvement",
                     {"patience": _INT0, "min_delta": _DELTA}),
    "threshold": Entry(lambda o, top: optuna.pruners.ThresholdPruner(**{"n_warmup_steps": 0, **o}),
                       "stop a trial whose reported metric is below `lower` or above `upper` (no ranking: the "
                       "one pruner for a cost objective with a floor)",
                       {"lower": _BOUND, "upper": _BOUND, "n_warmup_steps": _INT0}, one_of=("lower", "upper"),
                       ranks=False),
    "none": Entry(lambda o, top: optuna.pruners.NopPruner(), "never prune", ranks=False, prunes=False),
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


def parse_named(raw: Any, registry: dict[str, Entry], where: str, key: str) -> dict[str, Any]:
    """A study file's `sampler:` or `pruner:` (a name, or a mapping with name and options),
    checked against the registry: {"name": ..., option: value, ...}."""
    conf = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(conf, dict) or "name" not in conf:
        raise SearchError(f"{where}: {key}: expected a name or a mapping with name: ({', '.join(registry)}), "
                          f"got {_check.short(raw)}")
    name = _check.choice(conf["name"], registry, where, f"{key}.name")
    options = registry[name].options
    _check.keys(conf, {"name", *options}, where, key)
    need = registry[name].one_of
    if need and not any(k in conf for k in need):
        raise SearchError(f"{where}: {key}: {name} needs {' or '.join(need)}, e.g. {{name: {name}, {need[0]}: 0.9}}")
    out: dict[str, Any] = {"name": name}
    for opt, v in conf.items():
        if opt == "name":
            continue
        spec = options[opt]
        if spec.kind == "bool":
            out[opt] = _check.boolean(v, where, f"{key}.{opt}")
        else:
            out[opt] = _check.number(v, where, f"{key}.{opt}", spec.low, spec.high, integer=spec.kind == "int")
    return out


def describe_named(conf: dict[str, Any]) -> str:
    """A parsed sampler or pruner as stored and shown: 'tpe', 'tpe (n_startup_trials=5)'."""
    options = ", ".join(f"{k}={v}" for k, v in conf.items() if k != "name")
    return f"{conf['name']} ({options})" if options else str(conf["name"])


def check_pruner(goal: Goal, pruner: str, where: str) -> None:
    """Pruning only where Optuna allows it and where it compares like with like (see search/goal.py)."""
    entry = PRUNERS[pruner]
    if not entry.prunes or goal.ranks_curve:
        return
    if goal.multi:
        raise SearchError(f"{where}: pruner: {pruner}: a study with {len(goal.metrics)} objectives cannot prune "
                          "(Optuna refuses trial.report for them); write pruner: none or leave it out")
    if goal.curve is None:
        raise SearchError(f"{where}: pruner: {pruner}: this study has no per-epoch metric to prune on; give a floor "
                          "or ceiling on val_accuracy or val_loss, or write pruner: none")
    if entry.ranks:
        fixed = next(name for name, e in PRUNERS.items() if e.prunes and not e.ranks)
        raise SearchError(f"{where}: pruner: {pruner} ranks trials by {goal.curve} in the direction of "
                          f"{goal.metrics[0]} ({goal.directions[0]}), which is wrong here; use pruner: "
                          f"{{name: {fixed}, lower: ...}} or none")


def make_sampler(conf: dict[str, Any], study_seed: int, grid: dict[str, list[Any]],
                 offset: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler `conf` names, seeded with its own `seed` option (else the study seed) plus
    `offset`: the trials so far and the worker, so that a resumed run or a second worker
    does not replay the first one's random suggestions (except where the seed must stay
    fixed, as for the grid)."""
    entry = SAMPLERS[conf["name"]]
    options = {k: v for k, v in conf.items() if k not in ("name", "seed")}
    base = conf.get("seed", study_seed)
    with _optuna.quiet_experimental():  # QMCSampler, GPSampler
        if entry.fixed_seed:
            return entry.build(options, base, grid, base + offset)
        return entry.build(options, base + offset, grid)


def make_pruner(conf: dict[str, Any], max_epochs: int) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in conf.items() if k != "name"}
    with _optuna.quiet_experimental():  # PatientPruner
        return PRUNERS[conf["name"]].build(options, max_epochs)
