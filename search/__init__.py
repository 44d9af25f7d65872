"""mnist-search: hyperparameter search for MNIST-style classifiers, on Optuna.

For notebooks and scripts: `run`, `export`, `best_config`, `ensemble`, `train` (search/api.py; the
README's "Python API"). Below them, the API cli.py uses and nothing more
(tests/test_exported_members.py checks both): study files (`read_study_file`; `load_study`
is its deprecated old name), `StudySpec`, `AXES`, `Params`), running (`run_study`,
`run_workers`, `RunOptions`, `dry_run_storage`), stored studies (`load_stored_study`,
`all_studies`, `delete_study`, the trial readers), configs and retraining (`export_trial`, `load_config`, `retrain`),
ensembles of a study's kept checkpoints (`choose_ensemble`, `retrain_ensemble`), outputs
checked against the storage (`check_output`), the
report and the dashboard, and the exceptions:

    SearchError (exit 2)        bad input: a study file, a config, a flag, a path, a storage URL
      StorageLost (exit 1)      the storage went away or was deleted mid-study
    KeyboardInterrupt (130)
      Terminated (143)          SIGTERM (SIGHUP: 129), handled like Ctrl-C

Names are imported on first use (PEP 562), so `search --help` does not pay for torch,
matplotlib or optuna-dashboard.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Notice", "SearchError", "StorageLost", "Terminated", "exit_code"], "search.errors"),
    **dict.fromkeys(["HEARTBEAT_S", "StorageURL", "mask_url", "storage_errors", "storage_url"], "search.storage"),
    **dict.fromkeys(["AXES", "Params"], "search.params"),
    **dict.fromkeys(["StudySpec", "read_study_file"], "search.spec"),
    **dict.fromkeys(["best_config", "ensemble", "export", "load_study", "run", "train"], "search.api"),
    **dict.fromkeys(["DRY_RUN_SETS", "RunOptions", "RunResult", "all_studies", "delete_study", "dry_run_storage",
                     "fail_trial", "load_stored_study", "run_study"], "search.study"),
    **dict.fromkeys(["run_workers", "threads_per_worker"], "search.workers"),
    **dict.fromkeys(["best_or_none", "feasible", "last_value", "params_of", "pareto_front", "primary", "ranked",
                     "study_facts", "trial_row", "trial_seconds"], "search.trials"),
    **dict.fromkeys(["StudyRecord", "TrialRecord", "fail_reason", "member_label"], "search.records"),
    **dict.fromkeys(["EnsembleJob", "TrainJob", "load_config", "load_job"], "search.config"),
    **dict.fromkeys(["choose_ensemble", "member_paths", "retrain_ensemble", "save_ensemble", "write_ensemble_config"],
                    "search.ensembles"),
    **dict.fromkeys(["load_weights", "retrain", "save_weights"], "search.trained"),
    **dict.fromkeys(["artifact_dir", "export_trial"], "search.artifacts"),
    **dict.fromkeys(["check_output", "check_output_dir"], "search.outputs"),
    **dict.fromkeys(["write_report"], "search.report"),
    **dict.fromkeys(["check_address", "is_loopback"], "search._net"),
    **dict.fromkeys(["serve"], "search.dashboard"),
    **dict.fromkeys(["serve_storage_proxy"], "search.proxy_server"),
    **dict.fromkeys(["source_text"], "search.sources"),
    **dict.fromkeys(["RunView", "best_text", "fit_bar", "fit_text", "spinner", "trial_line", "values_text"],
                    "search.progress"),
    **dict.fromkeys(["fmt"], "search._format"),
    **dict.fromkeys(["ignore_stopping", "sigterm_as_interrupt"], "search._signals"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from search._format import fmt
    from search._net import check_address, is_loopback
    from search._signals import ignore_stopping, sigterm_as_interrupt
    from search.api import best_config, ensemble, export, load_study, run, train
    from search.artifacts import artifact_dir, export_trial
    from search.config import EnsembleJob, TrainJob, load_config, load_job
    from search.dashboard import serve
    from search.ensembles import choose_ensemble, member_paths, retrain_ensemble, save_ensemble, write_ensemble_config
    from search.errors import Notice, SearchError, StorageLost, Terminated, exit_code
    from search.outputs import check_output, check_output_dir
    from search.params import AXES, Params
    from search.progress import RunView, best_text, fit_bar, fit_text, spinner, trial_line, values_text
    from search.proxy_server import serve_storage_proxy
    from search.records import StudyRecord, TrialRecord, fail_reason, member_label
    from search.report import write_report
    from search.sources import source_text
    from search.spec import StudySpec, read_study_file
    from search.storage import HEARTBEAT_S, StorageURL, mask_url, storage_errors, storage_url
    from search.study import (
        DRY_RUN_SETS,
        RunOptions,
        RunResult,
        all_studies,
        delete_study,
        dry_run_storage,
        fail_trial,
        load_stored_study,
        run_study,
    )
    from search.trained import load_weights, retrain, save_weights
    from search.trials import (
        best_or_none,
        feasible,
        last_value,
        params_of,
        pareto_front,
        primary,
        ranked,
        study_facts,
        trial_row,
        trial_seconds,
    )
    from search.workers import run_workers, threads_per_worker
