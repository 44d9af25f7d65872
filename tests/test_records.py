"""search/records.py: what the service stores on a study reads back whole, on real SQLite
studies, including studies stored before a key existed."""

import optuna
import pytest

from search.goal import Bound
from search.records import StudyRecord, TrialRecord, TrialStart, curve, write_outcome
from search.spec import parse_study


def _study(tmp_path, name="s"):
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}", study_name=name,
                               directions=["minimize"])


def test_a_study_record_round_trips_through_the_storage(tmp_path):
    doc = {"metric": "train_seconds", "floor": {"val_accuracy": 0.99}, "ceiling": {"n_params": 5e5}, "seed": 7,
           "train_size": 1000, "space": {"lr": {"low": 1e-4, "high": 1e-2}}}
    spec = parse_study(doc, "cost.yaml")
    study = _study(tmp_path)
    spec.record().write(study)
    again = StudyRecord.of(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'r.db'}"))
    assert again == spec.record()
    assert again.bounds == (Bound("val_accuracy", "floor", 0.99), Bound("n_params", "ceiling", 5e5))
    assert [str(b) for b in again.bounds] == ["val_accuracy >= 0.99", "n_params <= 500000"]  # constraint names
    assert spec.record().mismatch(study) is None
    assert parse_study({**doc, "seed": 8}, "cost.yaml").record().mismatch(study) == ("seed", 7, 8)
    assert parse_study({**doc, "description": "grown"}, "cost.yaml").record().mismatch(study) is None


def test_a_study_stored_before_bounds_had_a_key_reads_them_from_its_goal(tmp_path):
    study = _study(tmp_path)  # as mnist-search wrote it before: the goal's text, no `bounds`
    study.set_user_attr("goal", "minimize train_seconds subject to val_accuracy >= 0.991, n_params <= 1e+06")
    study.set_user_attr("metric", "train_seconds")
    record = StudyRecord.of(study)
    assert record.bounds == (Bound("val_accuracy", "floor", 0.991), Bound("n_params", "ceiling", 1e6))
    assert record.dataset == "mnist" and record.study_file == "-"  # keys it lacks read as their defaults
    assert StudyRecord.of(_study(tmp_path, "plain")).bounds == ()


def test_a_trial_record_holds_what_the_trial_wrote(tmp_path):
    study = _study(tmp_path)
    trial = study.ask()
    TrialStart(config={"lr": 0.01}, seed=5, device="cpu", n_params=7850, worker="h:1").write(trial)
    write_outcome(trial, {"train_loss": [0.5, 0.4], "val_accuracy": [0.9, 0.92]}, "fp32")
    study.tell(trial, 1.0)
    record = TrialRecord.of(study.trials[0])
    assert (record.config, record.seed, record.n_params, record.retry_of, record.precision) == (
        {"lr": 0.01}, 5, 7850, None, "fp32")
    assert record.curves["val_accuracy"] == [0.9, 0.92] and record.curves["val_loss"] == []
    with pytest.raises(KeyError, match="unknown curve"):
        curve(study.trials[0], "accuracy")


def test_train_size_is_compared_as_the_images_it_leaves_each_trial(tmp_path):
    """train_size defaults to all the training images: a study stored with MNIST's 55,000 (the
    old default) is the same experiment as a file without train_size, not one with 3,000."""
    mnist = {"shape": [1, 28, 28], "images": [55_000, 5_000, 10_000]}
    study = _study(tmp_path)
    parse_study({"train_size": 55_000, "space": {"lr": 0.01}}, "old.yaml").record(mnist).write(study)
    default = parse_study({"space": {"lr": 0.01}}, "new.yaml")
    assert default.train_size is None and default.record(mnist).train_images() == 55_000
    assert default.record(mnist).mismatch(study) is None
    assert default.record().mismatch(study) is None  # a worker that has not read the data: the stored facts
    small = parse_study({"train_size": 3000, "space": {"lr": 0.01}}, "small.yaml").record(mnist)
    assert small.mismatch(study) == ("train_size", 55_000, 3000) and small.train_images() == 3000
    # on data with fewer images than train_size, each trial has all of them
    assert parse_study({"train_size": 55_000, "space": {"lr": 0.01}}, "f.yaml").record(
        {"images": [1_412, 128, 257]}).train_images() == 1_412
