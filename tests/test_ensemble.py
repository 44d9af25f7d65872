"""search ensemble: greedy selection among a study's kept checkpoints, and its config retrained
by search train, on real MNIST."""

import json
from pathlib import Path

import optuna
import pytest
import torch

from search import _dashboard
from search.config import EnsembleJob, load_job
from search.data import load_dataset
from search.ensembles import greedy, score
from search.trained import load_weights

from conftest import MNIST, cli, needs_mnist, one_line_error, write_study

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _probs(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows)


def test_greedy_adds_the_member_that_mends_the_best_ones_mistakes():
    y = torch.tensor([0, 1, 2])
    best = _probs([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.6, 0.2, 0.2]])  # 2 of 3 right
    weak = _probs([[0.4, 0.1, 0.5], [0.1, 0.4, 0.5], [0.05, 0.05, 0.9]])  # 1 of 3 right, sure of the third
    assert score(best, y)[0] == pytest.approx(2 / 3) and score(weak, y)[0] == pytest.approx(1 / 3)
    picks = greedy([best, weak], y, 2)
    assert picks == [0, 1]  # the best alone first, then the one that mends its mistake
    assert score((best + weak) / 2, y)[0] == 1.0


def test_greedy_keeps_the_best_nested_ensemble_not_the_last():
    y = torch.tensor([0, 1, 2])
    best = _probs([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]])  # all right
    bad = _probs([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])  # all wrong, confidently
    # picking `best` again changes nothing and `bad` hurts: the ensemble is `best` alone, once
    assert greedy([best, bad], y, 5) == [0]
    # the order of the candidates is the trials' rank: an exact tie goes to the better trial
    assert greedy([best, best.clone()], y, 1) == [0]


def _trials(db, name):
    return {t.number: t for t in optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials}


@needs_mnist
def test_an_ensemble_from_kept_checkpoints_reproduces_in_search_train(tmp_path, db):
    space = {"model": "mlp", "epochs": 2, "batch_size": 64, "lr": {"low": 1e-3, "high": 1e-2, "log": True},
             "hidden_size": [32, 64, 128], "dropout": {"low": 0.0, "high": 0.3}}
    study = write_study(tmp_path, n_trials=6, keep_checkpoints=4, space=space)
    assert cli("run", "--study", study).exit_code == 0
    r = cli("ensemble", "--study", "tiny", "--size", "4", "--out", tmp_path / "ens.yaml", "--json")
    assert r.exit_code == 0, r.stderr
    chosen = json.loads(r.stdout)
    trials = _trials(db, "tiny")
    kept = sorted(trials.values(), key=lambda t: -t.value)[:4]
    assert chosen["candidates"] == 4 and 1 <= sum(m["weight"] for m in chosen["members"]) <= 4
    for m in chosen["members"]:  # a kept checkpoint gives its trial's own validation accuracy, exactly
        assert m["trial"] in {t.number for t in kept}
        assert m["val_accuracy"] == trials[m["trial"]].value
    # six short MLPs err on different images: averaging several beats the best of them (91.9 vs 90.3 % here)
    assert len(chosen["members"]) >= 2 and chosen["val_accuracy"] > max(m["val_accuracy"] for m in chosen["members"])
    assert chosen["checkpoint_bytes"] > 0

    job = load_job(tmp_path / "ens.yaml")
    assert isinstance(job, EnsembleJob)
    assert [(m.job.source["trial"], m.weight) for m in job.members] == [(m["trial"], m["weight"]) for m in chosen["members"]]
    note = _dashboard.study_note(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}"))
    assert "**Ensemble**" in note and f"test **{chosen['test_accuracy']:.2%}**" in note

    r = cli("train", "--config", tmp_path / "ens.yaml", "--save", tmp_path / "ens.pt", "--json")
    assert r.exit_code == 0, r.stderr
    trained = json.loads(r.stdout)
    for m, again in zip(chosen["members"], trained["members"], strict=True):  # each member reproduces its trial
        assert again["trial"] == m["trial"] and again["val_accuracy"] == trials[m["trial"]].value
        assert again["test_accuracy"] == m["test_accuracy"]
    assert trained["test_accuracy"] == chosen["test_accuracy"]
    assert trained["val_accuracy"] == chosen["val_accuracy"]

    # the saved members, loaded as any checkpoint and averaged here by hand, give the same test accuracy
    data = load_dataset("mnist", MNIST, "cpu")
    assert sorted(trained["saved"]) == sorted(str(tmp_path / f"ens-trial{m['trial']}.pt") for m in chosen["members"])
    total = torch.zeros(len(data.test), 10)
    with torch.inference_mode():
        for m, path in zip(chosen["members"], trained["saved"], strict=True):
            net = load_weights(tmp_path / path).eval()
            total += m["weight"] * net(data.test.images(slice(None))).softmax(1)
    assert (total.argmax(1) == data.test.y).sum().item() / len(data.test) == trained["test_accuracy"]

    # the Python API chooses the same ensemble and retrains it to the same figures
    import search

    again = search.ensemble("tiny", tmp_path / "api.yaml", size=4)
    assert again.members == chosen["members"] and again.test_accuracy == chosen["test_accuracy"]
    assert load_job(tmp_path / "api.yaml") == job
    result = search.train(tmp_path / "api.yaml", progress=False, save=tmp_path / "api.pt")
    assert result.summary["members"] == [{**m, "train_seconds": r["train_seconds"]}
                                         for m, r in zip(trained["members"], result.summary["members"], strict=True)]
    assert result.summary["test_accuracy"] == trained["test_accuracy"]
    assert [r.check for r in result.results] == [None] * len(job.members)  # checkpoints: nothing to compare
    assert all((tmp_path / f"api-trial{m['trial']}.pt").is_file() for m in chosen["members"])
    with pytest.raises(search.SearchError, match=r"--size: expected a whole number of picks from 1 to 100, got 0"):
        search.ensemble("tiny", tmp_path / "no.yaml", size=0)
    assert not (tmp_path / "no.yaml").exists()

    report = cli("report", "--study", "tiny", "--out", tmp_path / "rep")
    assert report.exit_code == 0, report.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Ensemble (search ensemble)" in text and f"**{chosen['test_accuracy']:.2%}**" in text


@needs_mnist
def test_an_ensemble_of_two_studies_chooses_among_both_and_reproduces(tmp_path, db):
    mlp = {"model": "mlp", "epochs": 2, "batch_size": 64, "lr": {"low": 1e-3, "high": 1e-2, "log": True},
           "hidden_size": [32, 64, 128]}
    lenet = {"model": "lenet5", "epochs": 2, "batch_size": 64, "lr": {"low": 1e-3, "high": 1e-2, "log": True}}
    assert cli("run", "--study", write_study(tmp_path, "mlps", keep_checkpoints=3, space=mlp)).exit_code == 0
    assert cli("run", "--study", write_study(tmp_path, "lenets", n_trials=2, keep_checkpoints=2,
                                             space=lenet)).exit_code == 0
    r = cli("ensemble", "--study", "mlps", "--study", "lenets", "--size", "6", "--out", tmp_path / "two.yaml",
            "--json")
    assert r.exit_code == 0, r.stderr
    chosen = json.loads(r.stdout)
    trials = {"mlps": _trials(db, "mlps"), "lenets": _trials(db, "lenets")}
    assert chosen["candidates"] == 5 and chosen["studies"] == ["mlps", "lenets"]
    for m in chosen["members"]:  # each from its own study's kept checkpoint, its trial's own validation accuracy
        assert m["val_accuracy"] == trials[m["study"]][m["trial"]].value
    best = max(t.value for ts in trials.values() for t in ts.values())
    assert chosen["val_accuracy"] >= best  # greedy starts from the best of both studies
    for name in ("mlps", "lenets"):  # each study's note shows the ensemble, its members named with their study
        note = _dashboard.study_note(optuna.load_study(study_name=name, storage=f"sqlite:///{db}"))
        assert all(f"{m['study']} #{m['trial']}" in note for m in chosen["members"]), note

    job = load_job(tmp_path / "two.yaml")
    assert [(m.job.source["study"], m.job.source["trial"]) for m in job.members] == \
        [(m["study"], m["trial"]) for m in chosen["members"]]
    r = cli("train", "--config", tmp_path / "two.yaml", "--save", tmp_path / "two.pt", "--json")
    assert r.exit_code == 0, r.stderr
    trained = json.loads(r.stdout)
    assert [(m["study"], m["trial"], m["val_accuracy"]) for m in trained["members"]] == \
        [(m["study"], m["trial"], m["val_accuracy"]) for m in chosen["members"]]
    assert trained["test_accuracy"] == chosen["test_accuracy"]
    several = len({m["study"] for m in chosen["members"]}) > 1
    assert trained["saved"] == [str(tmp_path / (f"two-{m['study']}-trial{m['trial']}.pt" if several else
                                                f"two-trial{m['trial']}.pt")) for m in chosen["members"]]
    assert all(Path(p).is_file() for p in trained["saved"])

    one_line_error(cli("ensemble", "--study", "mlps", "--study", "mlps"), "--study mlps: named twice")
    if FASHION.is_dir():  # a study on other images cannot join
        fashion = write_study(tmp_path, "clothes", dataset="fashion-mnist", n_trials=1, train_size=1000, space=mlp)
        assert cli("run", "--study", fashion).exit_code == 0
        one_line_error(cli("ensemble", "--study", "mlps", "--study", "clothes"), "--study clothes: its dataset is",
                       "an ensemble averages its members' outputs on the same images")
    assert not (tmp_path / "ensemble.yaml").exists()


@needs_mnist
def test_an_ensemble_needs_kept_checkpoints(tmp_path):
    study = write_study(tmp_path, n_trials=2, keep_checkpoints=0)
    assert cli("run", "--study", study).exit_code == 0
    one_line_error(cli("ensemble", "--study", "tiny"), "kept no checkpoint", "keep_checkpoints: 0")
    assert not (tmp_path / "ensemble.yaml").exists()
    one_line_error(cli("ensemble", "--study", "tiny", "--artifacts", tmp_path / "elsewhere"), "no artifact folder")
    one_line_error(cli("ensemble", "--study", "nope"), "nope")
    one_line_error(cli("ensemble", "--study", "tiny", "--size", "0"), "--size: expected a whole number of picks")


def test_one_model_commands_refuse_an_ensemble_config(tmp_path):
    from search.config import load_config
    from search.errors import SearchError

    (tmp_path / "e.yaml").write_text("members:\n- {params: {}}\n")
    with pytest.raises(SearchError, match="an ensemble config"):
        load_config(tmp_path / "e.yaml")


def test_the_shipped_configs_parse_and_each_ensemble_lists_its_studys_trials():
    from conftest import ROOT

    jobs = {p.name: load_job(p) for p in sorted((ROOT / "configs").glob("*.yaml"))}
    ensembles = {n: j for n, j in jobs.items() if n.endswith("-ensemble.yaml")}
    assert set(ensembles) >= {"mnist-record-ensemble.yaml", "mnist-vgg-ensemble.yaml", "fashion-vgg-ensemble.yaml"}
    for name, ensemble in ensembles.items():
        study = name.removesuffix("-ensemble.yaml")
        assert isinstance(ensemble, EnsembleJob) and len(ensemble.members) >= 2
        assert {m.job.source["study"] for m in ensemble.members} == {study} == {ensemble.source["study"]}
        assert sum(m.weight for m in ensemble.members) == ensemble.source["size"]
        single = jobs[f"{study}.yaml"]  # the study's best trial, exported beside it, is one of its members
        assert not isinstance(single, EnsembleJob)
        assert single.source["trial"] in {m.job.source["trial"] for m in ensemble.members}
    assert all(not isinstance(j, EnsembleJob) for n, j in jobs.items() if n not in ensembles)
