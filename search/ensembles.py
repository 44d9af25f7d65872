"""A study's kept checkpoints (or several studies' on one dataset) -> an ensemble chosen on
the validation split; an ensemble config -> its members retrained one by one and tested together.

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

import re
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

MAX_PICKS = 100  # greedy selection's picks: a study keeps far fewer checkpoints

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
    """A kept checkpoint, evaluated: its study and trial, config and softmax on validation and test."""

    study: str
    trial: int
    job: TrainJob
    val: torch.Tensor
    test: torch.Tensor
    nbytes: int

    @property
    def key(self) -> tuple[str, int]:
        return self.study, self.trial


@dataclass
class Chosen:
    """What `search ensemble` chose: the members ((study, trial) -> weight, in pick order),
    every member's and the ensemble's validation and test accuracy, and what the candidates cost."""

    study: str  # the study's name, or the studies' joined by " + "
    job: EnsembleJob
    members: list[dict[str, Any]]  # study, trial, weight, val_accuracy, test_accuracy
    val_accuracy: float
    test_accuracy: float
    candidates: int
    size: int  # the most picks asked for
    checkpoint_bytes: int  # the kept checkpoints' size on disk, together
    artifacts: str = ""
    picks: list[str] = field(default_factory=list)  # the members' labels in the order picked ('#25')
    studies: list[str] = field(default_factory=list)  # the studies chosen from, in the order given

    def stored(self) -> dict[str, Any]:
        """As the study stores it (records.write_ensemble): what the report and the note show."""
        return {"members": self.members, "val_accuracy": self.val_accuracy, "test_accuracy": self.test_accuracy,
                "candidates": self.candidates, "size": self.size, "picks": self.picks,
                "checkpoint_bytes": self.checkpoint_bytes, "studies": self.studies}


def choose_ensemble(studies: optuna.Study | Sequence[optuna.Study], url: str, artifacts: str | None, size: int, *,
                    data_dir: str | None = None, device: str = "cpu",
                    on_candidate: Callable[[int, int], None] | None = None) -> Chosen:
    """The ensemble of at most `size` picks from the kept checkpoints of one study or of
    several on the same dataset (a convnet study's and a vgg study's: members of different
    shapes err on different images), chosen on the validation images, which every study of
    a dataset shares; stored in each study (its note and report show it)."""
    group = [studies] if isinstance(studies, optuna.Study) else list(studies)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PICKS:
        raise SearchError(f"--size: expected a whole number of picks from 1 to {MAX_PICKS}, got {size!r}")
    names, infos = [st.study_name for st in group], _one_dataset(group)
    folder = artifact_dir(url, artifacts)
    store = open_store(folder, create=False)
    if store is None:
        raise SearchError(f"study {names[0]!r} has no artifact folder{f' at {folder}' if folder else ''}: "
                          "its kept checkpoints are what an ensemble is chosen from; pass --artifacts DIR where "
                          "`search run` kept them")
    chosen_trials = [(st, info, _kept_trials(st, info)) for st, info in zip(group, infos, strict=True)]
    dev = resolve_device(device)
    data = load_dataset(stored_source(infos[0].dataset), data_dir, dev)
    todo = [(st, info, kept, t) for st, info, (kept, trials) in chosen_trials for t in trials]
    scored: list[_Candidate] = []
    for i, (st, info, kept, trial) in enumerate(todo):
        if on_candidate is not None:
            on_candidate(i, len(todo))
        candidate = _evaluate(store, kept[trial.number], trial, info, st.study_name, data, dev)
        if candidate is not None:  # None: pruned away by a running worker meanwhile
            scored.append(candidate)
    if not scored:
        raise SearchError(f"the checkpoints of study {names[0]!r} are gone from {folder}: run its trials again")
    if len(group) > 1:  # the candidates of several studies in one ranking (stable: a tie keeps the study order)
        scored.sort(key=lambda c: -score(c.val, data.val.y)[0])
    picks = [scored[i] for i in greedy([c.val for c in scored], data.val.y, size)]
    weights: dict[tuple[str, int], int] = {}
    for c in picks:
        weights[c.key] = weights.get(c.key, 0) + 1
    by_key = {c.key: c for c in scored}
    members = [{"study": k[0], "trial": k[1], "weight": w, "val_accuracy": score(by_key[k].val, data.val.y)[0],
                "test_accuracy": score(by_key[k].test, data.test.y)[0]} for k, w in weights.items()]
    val = _average([by_key[k].val for k in weights], list(weights.values()))
    test = _average([by_key[k].test for k in weights], list(weights.values()))
    val_acc, test_acc = score(val, data.val.y)[0], score(test, data.test.y)[0]
    which = {"study": names[0]} if len(names) == 1 else {"studies": names}
    source = {**which, "metric": "val_accuracy", "value": val_acc, "size": len(picks)}
    job = EnsembleJob(tuple(Member(by_key[k].job, w) for k, w in weights.items()), source)
    chosen = Chosen(" + ".join(names), job, members, val_acc, test_acc, len(scored), size,
                    sum(c.nbytes for c in scored), str(folder),
                    [records.member_label({"study": c.study, "trial": c.trial}, names) for c in picks], names)
    for st in group:
        records.write_ensemble(st, chosen.stored())
        write_study_note(st)
    return chosen


def _one_dataset(group: list[optuna.Study]) -> list[StudyRecord]:
    """The studies' records, each study named once and all on one dataset (one line if not)."""
    names = [st.study_name for st in group]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise SearchError(f"--study {twice}: named twice; name each study once")
    infos = [StudyRecord.of(st) for st in group]
    other = next((i for i, info in enumerate(infos) if info.dataset != infos[0].dataset), None)
    if other is not None:
        raise SearchError(f"--study {names[other]}: its dataset is {stored_source(infos[other].dataset)}, not "
                          f"{stored_source(infos[0].dataset)} like {names[0]}'s: an ensemble averages its members' "
                          "outputs on the same images")
    return infos


def _kept_trials(study: optuna.Study, info: StudyRecord) -> tuple[dict[int, str], list[optuna.trial.FrozenTrial]]:
    """A study's kept checkpoints (trial -> artifact id) and their complete trials, best first."""
    kept = checkpoints(study)
    best = ranked(study, len(kept)) if kept else []  # the kept ones are the best few; read no more than needed
    if {t.number for t in best} != set(kept):  # keep_checkpoints changed, or a worker's pruning is under way
        best = ranked(study, len(study.get_trials(deepcopy=False)))
    trials = [t for t in best if t.number in kept and t.state == TrialState.COMPLETE]
    if not trials:
        raise SearchError(f"study {study.study_name!r} kept no checkpoint of a complete trial "
                          f"(keep_checkpoints: {info.keep_checkpoints}): run trials with keep_checkpoints: N (N >= 2) "
                          "in its study file")
    return kept, trials


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
    return _Candidate(study_name, trial.number, job, probabilities(model, data.val, precision),
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
    rows = [{"study": m.job.source.get("study"), "trial": m.job.source.get("trial"), "weight": m.weight,
             "val_accuracy": r.summary["val_accuracy"], "test_accuracy": r.summary["test_accuracy"],
             "train_seconds": r.summary["train_seconds"]}
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
    that names no trial; model-STUDY-trial12.pt where the members come from several studies),
    in the given format's suffix."""
    several = len({m.job.source.get("study") for m in job.members}) > 1
    names = [_member_name(m.job.source, several) or f"m{i}" for i, m in enumerate(job.members)]
    return [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in names]


def _member_name(source: dict[str, Any], with_study: bool) -> str | None:
    """'trial12', or 'STUDY-trial12' (the study's name made safe for a file name); None without a trial."""
    if not isinstance(source.get("trial"), int):
        return None
    study = re.sub(r"[^A-Za-z0-9._-]", "_", str(source.get("study")))
    return f"{study}-trial{source['trial']}" if with_study else f"trial{source['trial']}"


def save_ensemble(result: EnsembleResult, job: EnsembleJob, path: Path, image_input: str = "uint8") -> list[Any]:
    """Every member's weights (search.trained.save_weights: a checkpoint, ONNX or TorchScript)."""
    return [save_weights(r, m.job, p, image_input)
            for r, m, p in zip(result.results, job.members, member_paths(job, path), strict=True)]
