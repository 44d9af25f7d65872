"""mnist-search: hyperparameter search for MNIST-style classifiers, on Optuna.

Public entry points: `load_study` (study files), `run_study` (the service),
`best_config` / `load_config` / `retrain` (export and retrain), `SearchError`.
"""

from search.errors import SearchError
from search.export import best_config, load_config, retrain
from search.spec import load_study
from search.study import run_study

__all__ = ["SearchError", "best_config", "load_config", "load_study", "retrain", "run_study"]
