"""mnist-search: hyperparameter search for MNIST-style classifiers, on Optuna.

Public API: study files (`load_study`, `StudySpec`), the typed parameters (`Params`,
`AXES`), running (`run_study`, `RunOptions`), export and retraining (`best_config`,
`load_config`, `retrain`), and the exceptions (`SearchError`, `StorageLost`).
"""

from search.errors import SearchError, StorageLost
from search.export import best_config, load_config, retrain
from search.params import AXES, Params
from search.spec import StudySpec, load_study
from search.study import RunOptions, run_study

__all__ = ["AXES", "Params", "RunOptions", "SearchError", "StorageLost", "StudySpec", "best_config", "load_config",
           "load_study", "retrain", "run_study"]
