"""optuna-dashboard's storage formats, in one place (as search/_optuna.py is for Optuna).

Trial notes and trial artifacts are written the way the dashboard itself writes them for
finished trials: as study system attributes keyed by trial id. Optuna refuses to change
a finished trial's own attributes, and a checkpoint must be deletable after its trial
has finished (only the best few are kept). Checked against optuna-dashboard 0.21 by
tests/test_notes_artifacts.py.
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
import uuid
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore

from search import _optuna

# optuna-dashboard is imported where a note is read or written, not with this module: its
# package imports its whole app, and with it optuna.importance, scikit-learn and SciPy
# (~1 s of every `search show`, which writes no note)
DASHBOARD_ARTIFACTS_ATTR_PREFIX = "dashboard:artifacts:"  # optuna_dashboard.artifact._backend's; tested equal


def study_note(study: optuna.Study) -> str:
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = _optuna.storage_of(study).get_study_system_attrs(_optuna.study_id(study))
    return get_note_from_system_attrs(attrs, None)["body"]


def set_study_note(study: optuna.Study, body: str) -> None:
    from optuna_dashboard import save_note

    if study_note(study) != body:  # each save is a new version: write only what changed
        save_note(study, body)


def trial_note(study: optuna.Study, trial_id: int) -> str:
    from optuna_dashboard._note import get_note_from_system_attrs

    attrs = _optuna.storage_of(study).get_study_system_attrs(_optuna.study_id(study))
    return get_note_from_system_attrs(attrs, trial_id)["body"]


def set_trial_note(study: optuna.Study, trial_id: int, body: str) -> None:
    """A trial's note, written once when it finishes: version 1, its chunks, and no read of
    the study's attributes (save_note reads them all, a cost that grows with every trial)."""
    from optuna_dashboard._note import note_ver_key, split_body

    _optuna.set_study_system_attrs(_optuna.storage_of(study), _optuna.study_id(study),
                                   {note_ver_key(trial_id): 1, **split_body(body, trial_id)})  # one transaction


def _key(trial_id: int, artifact_id: str) -> str:
    return f"{DASHBOARD_ARTIFACTS_ATTR_PREFIX}{trial_id}:{artifact_id}"


def upload(store: FileSystemArtifactStore, study: optuna.Study, trial_id: int, path: Path, name: str) -> str:
    """Copy `path` into the store under a new id, then list it for the trial. The file is
    written as `<id>.part` and renamed: a killed process leaves no half-written artifact
    that the dashboard lists (the listing is written after the rename)."""
    artifact_id = str(uuid.uuid4())
    final = _optuna.artifact_file(store, artifact_id)
    part = final.with_name(artifact_id + ".part")
    try:
        shutil.copyfile(path, part)
        os.replace(part, final)  # atomic against a killed process (no fsync: an OS crash is out of scope)
    except BaseException:  # a full disk, Ctrl-C: no half-written file left behind
        part.unlink(missing_ok=True)
        raise
    meta = {"artifact_id": artifact_id, "filename": name,
            "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream", "encoding": None}
    _optuna.storage_of(study).set_study_system_attr(_optuna.study_id(study), _key(trial_id, artifact_id),
                                                    json.dumps(meta))
    return artifact_id


def remove(store: FileSystemArtifactStore, study: optuna.Study, trial_id: int, artifact_id: str) -> None:
    _optuna.storage_of(study).set_study_system_attr(_optuna.study_id(study), _key(trial_id, artifact_id),
                                                    json.dumps(None))
    try:
        store.remove(artifact_id)
    except Exception:  # already gone (another worker pruned it first)
        pass


def trial_artifacts(study: optuna.Study) -> dict[int, list[dict]]:
    """Every trial's artifacts listed in the study's attributes: trial id -> metas."""
    out: dict[int, list[dict]] = {}
    for key, value in _optuna.storage_of(study).get_study_system_attrs(_optuna.study_id(study)).items():
        if key.startswith(DASHBOARD_ARTIFACTS_ATTR_PREFIX):
            meta = json.loads(value)
            if meta is not None:
                out.setdefault(int(key[len(DASHBOARD_ARTIFACTS_ATTR_PREFIX):].split(":")[0]), []).append(meta)
    return out
