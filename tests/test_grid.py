"""A grid study runs every grid point exactly once, across resumes and worker processes
(GridSampler shuffles its grid by the seed: every process must use the same seed)."""

import multiprocessing
import sys
import time

import optuna

from conftest import ROOT

DOC = {"n_trials": 48, "sampler": {"name": "grid", "seed": 0}, "pruner": "none",
       "space": {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "hidden_size": [32, 64, 128], "optimizer": ["adam", "sgd"],
                 "dropout": [0.0, 0.3]}}


def _work(url: str, delay: float, budget: int) -> None:
    sys.path.insert(0, str(ROOT))
    from search.space import suggest_params
    from search.spec import parse_study
    from search.study import RunOptions, open_study, optimize

    time.sleep(delay)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spec = parse_study(DOC, "g.yaml")
    study = open_study(spec, url, RunOptions())

    def objective(trial):
        p = suggest_params(trial, spec)
        time.sleep(0.02)
        return p.lr

    optimize(study, objective, url, budget)


def test_grid_points_run_once_across_a_resume_and_two_workers(tmp_path):
    url = f"sqlite:///{tmp_path}/g.db"
    _work(url, 0, 10)  # a first run, stopped after 10 points, then resumed by two processes
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_work, args=(url, delay, 48)) for delay in (0, 0.5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    trials = optuna.load_study(study_name="g", storage=url).trials
    points = {tuple(sorted(t.params.items())) for t in trials}
    assert len(trials) == 48 and len(points) == 48  # every point once, none twice
