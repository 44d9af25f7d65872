"""A study's kept checkpoints -> an ensemble chosen on the validation split; an ensemble
config -> its members retrained one by one and tested together.

The choice is greedy ensemble selection with replacement (Caruana et al., ICML 2004, as
auto-sklearn does it): start empty; `size` times, add the candidate whose softmax, averaged
with the members', gives the best validation accuracy (the lower validation log-loss, then
the better trial, breaks ties); keep the best of those nested ensembles. A trial picked
twice weighs twice in the average. The candidates are the checkpoints the study kept
(`keep_checkpoints`: the best N complete trials), so choosing trains nothing: each is
evaluated once on the validation images and once on the test images, and the test images
are only reported, never used to choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
import torch
from optuna.trial import TrialState

from search import records
from search.artifacts import artifact_dir, checkpoints, open_store, write_study_note
from search.config import ENSEMBLE_HEADER, EnsembleJob, Member, TrainJob, ensemble_config, job_of, write_config
from search.data import Dataset, load_dataset, stored_source
from search.device import resolve_device
from search.errors import SearchError
from search.fit import Step, probabilities
from search.outputs import written_together
from search.precision import FP32, Precision, channels_last
from search.records import StudyRecord
from search.trained import TrainResult, recorded_precision, retrain, save_weights, weights_of
from search.trials import ranked

__all__ = ["Chosen", "EnsembleResult", "choose_ensemble", "greedy", "member_paths", "retrain_ensemble", "save_ensemble", "score",
           "write_ensemble_config"]


def score(probs: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean log-loss) of averaged softmax outputs (N, classes) against labels."""
    picked = probs[torch.arange(len(y)), y].clamp_min(1e-12)
    return (probs.argmax(1) == y).sum().item() / max(len(y), 1), -picked.log().mean().item()


def greedy(candidates: Sequence[torch.Tensor], y: torch.Tensor, size: int) -> list[int]:
    """Caruana's selection with replacement over `candidates` (validation softmax, best trial
    first): the indices picked, in order, a repeat meaning a larger weight; the best of the
    `size` nested ensembles (the shortest among equals)."""
    total = torch.zeros_like(candidates[0])
    picks: list[int] = []
    best: tuple[tuple[float, float], int] | None = None  # ((accuracy, -log-loss), picks so far)
    for step in range(1, size + 1):
        keys = [_key(score((total + p) / step, y)) for p in candidates]
        pick = max(range(len(candidates)), key=lambda i: (keys[i], -i))  # ties: the better trial
        picks.append(pick)
        total += candidates[pick]
        if best is None or keys[pick] > best[0]:
            best = (keys[pick], step)
    assert best is not None
    return picks[:best[1]]


def _key(scored: tuple[float, float]) -> tuple[float, float]:
    accuracy, log_loss = scored
    return accuracy, -log_loss


@dataclass(frozen=True)
class _Candidate:
    """A kept checkpoint, evaluated: its trial, config and softmax on validation and test."""

    trial: int
    job: TrainJob
    val: torch.Tensor
    test: torch.Tensor
    nbytes: int


@dataclass
class Chosen:
    """What `search ensemble` chose: the members (trial -> weight, in pick order), every
    member's and the ensemble's validation and test accuracy, and what the candidates cost."""

    study: str
    job: EnsembleJob
    members: list[dict[str, Any]]  # trial, weight, val_accuracy, test_accuracy
    val_accuracy: float
    test_accuracy: float
    candidates: int
    size: int  # the most picks asked for
    checkpoint_bytes: int  # the kept checkpoints' size on disk, together
    artifacts: str = ""
    picks: list[int] = field(default_factory=list)  # trial numbers in the order picked

    def stored(self) -> dict[str, Any]:
        """As the study stores it (records.write_ensemble): what the report and the note show."""
        return {"members": self.members, "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy,
                "candidates": self.candidates, "size": self.size, "picks": self.picks,
                "checkpoint_bytes": self.checkpoint_bytes}


def choose_ensemble(study: optuna.Study, url: str, artifacts: str | None, size: int, *, data_dir: str | None = None,
           device: str = "cpu", on_candidate: Callable[[int, int], None] | None = None) -> Chosen:
    """The ensemble of at most `size` picks from the study's kept checkpoints, chosen on the
    validation images; stored in the study (its note and report show it)."""
    folder = artifact_dir(url, artifacts)
    store = open_store(folder, create=False)
    info = StudyRecord.of(study)
    if store is None:
        raise SearchError(f"study {study.study_name!r} has no artifact folder{f' at {folder}' if folder else ''}: "
                          "its kept checkpoints are what an ensemble is chosen from; pass --artifacts DIR where "
                          "`search run` kept them")
    kept = checkpoints(study)
    best = ranked(study, len(kept)) if kept else []  # the kept ones are the best few; read no more than needed
    if {t.number for t in best} != set(kept):  # keep_checkpoints changed, or a worker's pruning is under way
        best = ranked(study, len(study.get_trials(deepcopy=False)))
    trials = [t for t in best if t.number in kept and t.state == TrialState.COMPLETE]
    if not trials:
        raise SearchError(f"study {study.study_name!r} kept no checkpoint of a complete trial "
                          f"(keep_checkpoints: {info.keep_checkpoints}): run trials with keep_checkpoints: N (N >= 2) "
                          "in its study file")
    dev = resolve_device(device)
    data = load_dataset(stored_source(info.dataset), data_dir, dev)
    scored: list[_Candidate] = []
    for i, trial in enumerate(trials):
        if on_candidate is not None:
            on_candidate(i, len(trials))
        candidate = _evaluate(store, kept[trial.number], trial, info, study.study_name, data, dev)
        if candidate is not None:  # None: pruned away by a running worker meanwhile
            scored.append(candidate)
    if not scored:
        raise SearchError(f"the checkpoints of study {study.study_name!r} are gone from {folder}: run its trials again")
    picks = [scored[i] for i in greedy([c.val for c in scored], data.val.y, size)]
    weights: dict[int, int] = {}
    for c in picks:
        weights[c.trial] = weights.get(c.trial, 0) + 1
    by_trial = {c.trial: c for c in scored}
    members = [{"trial": n, "weight": w, "val_accuracy": score(by_trial[n].val, data.val.y)[0],
                "test_accuracy": score(by_trial[n].test, data.test.y)[0]} for n, w in weights.items()]
    val = _average([by_trial[n].val for n in weights], list(weights.values()))
    test = _average([by_trial[n].test for n in weights], list(weights.values()))
    val_acc, test_acc = score(val, data.val.y)[0], score(test, data.test.y)[0]
    source = {"study": study.study_name, "metric": "val_accuracy", "value": val_acc, "size": len(picks)}
    job = EnsembleJob(tuple(Member(by_trial[n].job, w) for n, w in weights.items()), source)
    chosen = Chosen(study.study_name, job, members, val_acc, test_acc, len(scored), size,
                    sum(c.nbytes for c in scored), str(folder), [c.trial for c in picks])
    records.write_ensemble(study, chosen.stored())
    write_study_note(study)
    return chosen


def _evaluate(store: Any, artifact_id: str, trial: optuna.trial.FrozenTrial, info: StudyRecord, study_name: str,
              data: Dataset, dev: torch.device) -> _Candidate | None:
    try:
        with store.open_reader(artifact_id) as f:
            raw = f.read()
    except Exception:  # the artifact file is gone
        return None
    job = job_of(trial, info, study_name)
    model = weights_of(raw, f"the checkpoint of trial #{trial.number}", str(dev), data.shape, job.code)
    precision = recorded_precision(job, dev) or FP32  # retrain's rule
    if precision.channels_last:
        channels_last(model)  # as the trial evaluated it: the same kernels, the same outputs
    return _Candidate(trial.number, job, probabilities(model, data.val, precision),
                     probabilities(model, data.test, precision), len(raw))


def _average(probs: Sequence[torch.Tensor], weights: Sequence[int]) -> torch.Tensor:
    return sum((p * w for p, w in zip(probs, weights, strict=True)), torch.zeros_like(probs[0])) / sum(weights)


def write_ensemble_config(chosen: Chosen, out: Path) -> None:
    """The ensemble config, written whole or not at all."""
    with written_together([out], "the ensemble config") as (tmp,):
        write_config(ensemble_config(chosen.job), tmp, shown=out, header=ENSEMBLE_HEADER)


# ---------------------------------------------------------------- retraining


@dataclass
class EnsembleResult:
    """Every member retrained (its TrainResult) and the ensemble's summary."""

    results: list[TrainResult]
    summary: dict[str, Any]


def retrain_ensemble(job: EnsembleJob, *, device: str = "auto", data_dir: str | None = None, full: bool = False,
                     on_member: Callable[[int, Member], None] | None = None,
                     on_step: Callable[[Step], None] | None = None) -> EnsembleResult:
    """Retrain each member from scratch (each reproducing its trial), then evaluate the
    weighted average of their softmax once on the test set (and on validation, unless `full`)."""
    results, val, test = [], [], []
    for i, member in enumerate(job.members):
        if on_member is not None:
            on_member(i, member)
        r = retrain(member.job, device=device, data_dir=data_dir, full=full, on_step=on_step)
        precision = Precision.parse(r.summary["precision"]) or FP32
        results.append(r)
        test.append(probabilities(r.model, r.data.test, precision))
        if not full:
            val.append(probabilities(r.model, r.data.val, precision))
    weights = [m.weight for m in job.members]
    data = results[0].data
    rows = [{"trial": m.job.source.get("trial"), "weight": m.weight, "val_accuracy": r.summary["val_accuracy"],
             "test_accuracy": r.summary["test_accuracy"], "train_seconds": r.summary["train_seconds"]}
            for m, r in zip(job.members, results, strict=True)]
    summary = {
        "dataset": results[0].summary["dataset"],
        "members": rows,
        "val_accuracy": None if full else score(_average(val, weights), data.val.y)[0],
        "test_accuracy": score(_average(test, weights), data.test.y)[0],
        "train_seconds": sum(r.summary["train_seconds"] for r in results),
        "device": results[0].summary["device"],
        "source": job.source,
    }
    return EnsembleResult(results, summary)


def member_paths(job: EnsembleJob, path: Path) -> list[Path]:
    """Where `--save model.pt` writes each member: model-trial12.pt (model-m2.pt for a member
    that names no trial), in the given format's suffix."""
    names = [f"trial{m.job.source['trial']}" if isinstance(m.job.source.get("trial"), int) else f"m{i}"
             for i, m in enumerate(job.members)]
    return [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in names]


def save_ensemble(result: EnsembleResult, job: EnsembleJob, path: Path, image_input: str = "uint8") -> list[Any]:
    """Every member's weights (search.trained.save_weights: a checkpoint, ONNX or TorchScript)."""
    return [save_weights(r, m.job, p, image_input)
            for r, m, p in zip(result.results, job.members, member_paths(job, path), strict=True)]
