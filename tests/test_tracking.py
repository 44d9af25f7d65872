"""--track mlflow / tensorboard on real runs, read back as their users read them: MLflow's client
API on its own store, TensorBoard's event reader on the log dir; two workers, an interrupt, a
tracking server that is not there."""

import json
import signal
import socket
import time

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from search import records
from search._optuna import storage_of, study_id
from search.artifacts import checkpoints
from search.tracking import METRICS, PARENT_ATTR, code_version

from conftest import cli, finish, needs_mnist, search, write_study

pytestmark = needs_mnist

SPACE = {"model": "mlp", "epochs": 2, "batch_size": 64, "hidden_size": 32, "lr": {"low": 1e-3, "high": 1e-1, "log": True}}


def _runs(client: MlflowClient, study: str):
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("mnist_search.role") == "study"]
    children = {int(r.data.tags["optuna.trial_number"]): r for r in runs if r is not parent}
    return parent, children


def _wait_for_a_tracked_epoch(client: MlflowClient, proc, after_a_finished_trial: bool = False) -> None:
    """Until a trial's run is RUNNING with an epoch logged (and, if asked, another run has finished)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            _, children = _runs(client, "tiny")
            if (not after_a_finished_trial or any(c.info.status == "FINISHED" for c in children.values())) and \
                    any(c.info.status == "RUNNING" and client.get_metric_history(c.info.run_id, "val_loss")
                        for c in children.values()):
                return
        except Exception:  # the store or experiment is not there yet
            pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no tracked epoch appeared")


def test_two_workers_track_every_trial_with_its_curves_in_mlflow_and_tensorboard(tmp_path, db):
    study = write_study(tmp_path, n_trials=6, train_size=2000, space=SPACE,
                        pruner={"name": "successive_halving", "min_resource": 1})
    rc, out, err = finish(search("run", "--study", study, "--workers", 2, "--track", "mlflow", "--track", "tensorboard"))
    assert rc == 0, err
    assert "warning" not in err and "INFO" not in err, err  # MLflow's own migration chatter stays out

    url = f"sqlite:///{db}"
    stored = optuna.load_study(study_name="tiny", storage=url)
    trials = stored.trials
    assert len(trials) == 6  # which of the two workers trained which is the scheduler's (one took all 6 once in CI)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")  # MLflow's default store, in the folder
    parent, children = _runs(client, "tiny")
    assert list(storage_of(stored).get_study_system_attrs(study_id(stored))[PARENT_ATTR].values()) == [parent.info.run_id]
    assert parent.info.status == "FINISHED" and parent.data.params["space.lr"] == "0.001..0.1 log"
    assert parent.data.tags["sampler"] == "random" and parent.data.tags["dataset"] == "mnist"
    assert parent.data.tags["code_version"] == code_version() and parent.data.tags["device"] == "cpu"
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["tiny.yaml"]
    assert sorted(children) == [t.number for t in trials]  # one run per trial, none twice
    kept = checkpoints(stored)
    assert kept  # the best trials' checkpoints, in the Optuna artifact store and in MLflow
    for t in trials:
        run = children[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id  # both workers nest under one parent
        assert run.data.tags["state"] == t.state.name and run.info.status == "FINISHED"
        assert run.data.params["lr"] == json.dumps(t.params["lr"]) and run.data.params["seed"] == str(t.user_attrs["seed"])
        for name in METRICS:
            history = client.get_metric_history(run.info.run_id, name)
            assert [m.step for m in history] == list(range(1, len(t.intermediate_values) + 1))
            assert [m.value for m in history] == records.curve(t, name)  # every epoch, the pruned one too
        if t.state.name == "COMPLETE":
            assert run.data.metrics["objective/val_accuracy"] == t.value
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert artifacts == (["checkpoint.pt"] if t.number in kept else [])
        events = EventAccumulator(str(tmp_path / "runs" / "tiny" / f"trial-{t.number:05d}"))
        events.Reload()
        for name in METRICS:
            scalars = events.Scalars(name)
            assert [s.step for s in scalars] == list(range(1, len(t.intermediate_values) + 1))
            assert [s.value for s in scalars] == pytest.approx(records.curve(t, name), rel=1e-6)
    best = stored.best_trial.number
    logged = client.download_artifacts(children[best].info.run_id, "checkpoint.pt", str(tmp_path))
    blob = torch.load(logged, weights_only=True)
    assert blob["params"]["lr"] == stored.best_trial.params["lr"]

    # resumed with more trials: the same parent, running again until the budget is full
    r = cli("run", "--study", study, "--n-trials", 8, "--track", "mlflow")
    assert r.exit_code == 0, r.output
    parent2, children2 = _runs(client, "tiny")
    assert parent2.info.run_id == parent.info.run_id and parent2.info.status == "FINISHED"
    assert sorted(children2) == list(range(8))
    resumed = optuna.load_study(study_name="tiny", storage=url).trials
    assert {t.user_attrs["worker"] for t in resumed[6:]}.isdisjoint(t.user_attrs["worker"] for t in trials)
    assert {r.data.tags["mlflow.parentRunId"] for r in children2.values()} == {parent.info.run_id}  # every process's runs


def test_an_interrupted_trial_is_killed_in_mlflow_and_its_retry_says_so(tmp_path, db):
    # 8-epoch trials: on a fast CPU 3-epoch ones (1 s) ended before the Ctrl-C landed, leaving nothing cut
    study = write_study(tmp_path, n_trials=4, train_size=10000, space={**SPACE, "epochs": 8, "hidden_size": 64},
                        track="mlflow")  # the study file's key
    proc = search("run", "--study", study)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _wait_for_a_tracked_epoch(client, proc, after_a_finished_trial=True)
    proc.send_signal(signal.SIGINT)
    rc, _, err = finish(proc, 60)
    assert rc == 130, err
    parent, children = _runs(client, "tiny")
    assert parent.info.status == "RUNNING"  # the study is not done
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    (cut,) = [t for t in stored.trials if t.state.name == "FAIL"]
    run = children[cut.number]
    assert run.info.status == "KILLED" and run.data.tags["fail_reason"] == "interrupted"
    r = cli("run", "--study", study)
    assert r.exit_code == 0, r.output
    parent, children = _runs(client, "tiny")
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    retry = next(t for t in stored.trials if records.TrialRecord.of(t).retry_of == cut.number)
    assert children[retry.number].data.tags["retry_of"] == str(cut.number)
    assert parent.info.status == "FINISHED" and sorted(children) == [t.number for t in stored.trials]


def test_a_tracking_backend_that_is_not_there_is_one_warning_and_the_study_goes_on(tmp_path, db):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "not-a-dir").write_text("")
    study = write_study(tmp_path, n_trials=2, train_size=1000)
    r = cli("run", "--study", study, "--track", f"mlflow:http://alice:hunter2@127.0.0.1:{port}",
            "--track", "tensorboard:not-a-dir")
    assert r.exit_code == 0, r.output
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 2, r.stderr
    assert f"tracking to mlflow:http://alice:***@127.0.0.1:{port} failed" in warned[0]
    assert "tracking to tensorboard:not-a-dir failed" in warned[1] and "the study goes on" in warned[1]
    assert "hunter2" not in r.output + r.stderr
    assert [t.state.name for t in optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials] == \
        ["COMPLETE", "COMPLETE"]


def test_a_trial_failed_by_its_heartbeat_after_a_kill_has_its_run_closed(tmp_path, db):
    study = write_study(tmp_path, n_trials=2, train_size=20000, space={**SPACE, "epochs": 6, "hidden_size": 64})
    flags = ("--heartbeat", 1, "--track", "mlflow")
    proc = search("run", "--study", study, *flags)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _wait_for_a_tracked_epoch(client, proc)
    proc.kill()  # SIGKILL: nothing of ours runs; only the heartbeat tells
    finish(proc, 30)
    time.sleep(4)  # past 3 missed heartbeats: stale
    r = cli("run", "--study", study, *flags)
    assert r.exit_code == 0, r.output
    stored = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    _, children = _runs(client, "tiny")
    assert sorted(children) == [t.number for t in stored.trials]
    for t in stored.trials:
        run = children[t.number]
        assert run.data.tags["state"] == t.state.name, t.number  # the killed one too: FAIL, closed
        assert run.info.status == ("FAILED" if t.state.name == "FAIL" else "FINISHED")
    assert [t.state.name for t in stored.trials].count("FAIL") == 1
