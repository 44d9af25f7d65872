"""Every shipped study runs end to end, cut short with --set (few trials, one epoch, a slice)."""

from pathlib import Path

import optuna
import pytest

from search.spec import read_study_file

from conftest import ROOT, cli, needs_mnist

STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
FASHION = Path("/usr/share/datasets/fashion-mnist")


@needs_mnist
@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_runs_short(path, db):
    spec = read_study_file(str(path))
    if spec.dataset.name == "fashion-mnist" and not FASHION.is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    sets = ["n_trials=2", "train_size=1000", "epochs=1"]
    if "iterations" in spec.space:
        sets.append("iterations=20")
    args = ["run", "--study", path]
    for s in sets:
        args += ["--set", s]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{db}")
    assert len(study.trials) == 2
    assert study.user_attrs["dataset"] == spec.dataset.stored() and study.user_attrs["train_size"] == 1000
    for t in study.trials:
        assert t.state.name in ("COMPLETE", "PRUNED"), t.user_attrs.get("fail_reason")
        # the fixed axes of the file reached the trial
        fixed = spec.fixed_params()
        for key in ("model", "optimizer", "augment"):
            if key in fixed:
                assert t.system_attrs["config"][key] == fixed[key]


def test_set_is_validated_like_the_file(tmp_path):
    r = cli("run", "--study", "quickstart", "--set", "epochs=0")
    assert r.exit_code == 2 and "space.epochs" in r.stderr
    r = cli("run", "--study", "quickstart", "--set", "depth=3")
    assert r.exit_code == 2 and "--set depth: unknown key" in r.stderr
