"""Study file's `metric`, `direction`, `floor` and `ceiling` -> what a study optimises: its
objectives, their directions and its constraints (cost-aware search).

- one metric (`metric: val_accuracy`): the usual single-objective study;
- a cost with a floor (`metric: train_seconds`, `floor: {val_accuracy: 0.99}`): the fastest
  configuration that still reaches 99 %; stored as Optuna constraints (`trial.set_constraint`,
  feasible when <= 0), which TPE and NSGA-II honour and `study.best_trial` respects;
- two or more metrics (`metric: [val_accuracy, train_seconds]`): a Pareto front.

Pruning: Optuna refuses `trial.report` in multi-objective studies, so they never prune.
A study whose objective is not a per-epoch metric (train_seconds, n_params) reports the
metric of its floor or ceiling instead; the directional pruners (median, successive halving,
...) would rank that curve in the objective's direction, which is wrong, so only the
`threshold` pruner (a fixed bound, no direction) is allowed there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from search import _check
from search.errors import SearchError
from search.fit import EpochResult

__all__ = ["BOUND_OPS", "Bound", "Goal", "METRICS", "Metric", "measure", "parse_goal"]



@dataclass(frozen=True)
class Metric:
    direction: str  # the usual direction: maximize | minimize
    help: str
    per_epoch: bool  # measured after every epoch: a learning curve to report and prune on


METRICS: dict[str, Metric] = {
    "val_accuracy": Metric("maximize", "validation accuracy after the last epoch", True),
    "val_loss": Metric("minimize", "validation loss after the last epoch", True),
    "train_seconds": Metric("minimize", "seconds spent in training steps (evaluation excluded)", False),
    "n_params": Metric("minimize", "parameters of the network", False),
}


def measure(history: Sequence[EpochResult], n_params: int) -> dict[str, float]:
    """Every metric of a run after its last epoch so far."""
    last = history[-1]
    return {"val_accuracy": last.val_accuracy, "val_loss": last.val_loss,
            "train_seconds": round(sum(r.train_seconds for r in history), 4), "n_params": float(n_params)}


BOUND_OPS = {">=": "floor", "<=": "ceiling"}  # how a bound is written -> its kind


@dataclass(frozen=True)
class Bound:
    """`floor` (metric >= value) or `ceiling` (metric <= value)."""

    metric: str
    kind: str
    value: float

    def violation(self, measured: Mapping[str, float]) -> float:
        """Optuna's constraint value: <= 0 when met, else by how much it is missed."""
        got = measured[self.metric]
        if math.isnan(got):
            return math.inf
        return self.value - got if self.kind == "floor" else got - self.value

    def __str__(self) -> str:
        """How the goal prints it, and the name of its Optuna constraint: 'val_accuracy >= 0.99'."""
        op = next(op for op, kind in BOUND_OPS.items() if kind == self.kind)
        return f"{self.metric} {op} {self.value:g}"


@dataclass(frozen=True)
class Goal:
    metrics: tuple[str, ...] = ("val_accuracy",)
    directions: tuple[str, ...] = ("maximize",)
    bounds: tuple[Bound, ...] = ()

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    @property
    def curve(self) -> str | None:
        """The per-epoch metric reported to Optuna (learning curves, pruning), if any."""
        if self.multi:
            return None  # Optuna refuses trial.report in multi-objective studies
        if METRICS[self.metrics[0]].per_epoch:
            return self.metrics[0]
        return next((b.metric for b in self.bounds if METRICS[b.metric].per_epoch), None)

    @property
    def ranks_curve(self) -> bool:
        """Whether the reported curve is the objective itself, in its direction: the
        condition for the pruners that compare trials (median, successive halving, ...)."""
        return not self.multi and self.curve == self.metrics[0]

    def values(self, measured: Mapping[str, float]) -> list[float]:
        return [measured[m] for m in self.metrics]

    def violations(self, measured: Mapping[str, float]) -> dict[str, float]:
        return {str(b): b.violation(measured) for b in self.bounds}

    def __str__(self) -> str:
        text = ", ".join(f"{d} {m}" for m, d in zip(self.metrics, self.directions, strict=True))
        return text + (f" subject to {', '.join(map(str, self.bounds))}" if self.bounds else "")


def parse_goal(doc: Mapping[str, Any], where: str) -> Goal:
    raw = doc.get("metric", "val_accuracy")
    names = raw if isinstance(raw, list) else [raw]
    if not names or len(names) > 4:
        raise SearchError(f"{where}: metric: expected one metric or a list of 2-4 (one of {', '.join(METRICS)}), "
                          f"got {_check.short(raw)}")
    metrics = tuple(_check.choice(m, METRICS, where, "metric") for m in names)
    if len(set(metrics)) != len(metrics):
        raise SearchError(f"{where}: metric: {', '.join(metrics)} names a metric twice; list each once")
    raw_dir = doc.get("direction")
    if raw_dir is None:
        directions = tuple(METRICS[m].direction for m in metrics)
    else:
        dirs = raw_dir if isinstance(raw_dir, list) else [raw_dir]
        if len(dirs) != len(metrics):
            raise SearchError(f"{where}: direction: {len(dirs)} given for {len(metrics)} metrics; give one per "
                              "metric, or leave it out for each metric's usual direction")
        directions = tuple(_check.choice(d, ("maximize", "minimize"), where, "direction") for d in dirs)
    bounds = []
    for kind in ("floor", "ceiling"):
        raw_bounds = doc.get(kind)
        if raw_bounds is None:
            continue
        _check.mapping(raw_bounds, where, kind, f"a mapping of metric -> value, e.g. {kind}: {{val_accuracy: 0.99}}")
        for name, value in raw_bounds.items():
            metric = _check.choice(name, METRICS, where, f"{kind}.{_check.name(name)}")
            bounds.append(Bound(metric, kind, float(_check.number(value, where, f"{kind}.{metric}", -1e12, 1e12))))
    return Goal(metrics, directions, tuple(bounds))
