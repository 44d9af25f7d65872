"""search/_optuna.py holds every private Optuna name the service uses; an Optuna upgrade
that renames one fails here, loudly, instead of silently breaking the trial loop."""

import re

import optuna
import pytest

from search import _optuna
from search._lock import study_lock
from search.storage import open_storage

from conftest import ROOT


def test_the_pin_and_the_adapter_agree_with_the_installed_optuna():
    assert int(optuna.__version__.split(".")[0]) == _optuna.SUPPORTED_MAJOR
    pin = re.search(r'"optuna>=(\d+)[^,]*,<(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and int(pin[1]) == _optuna.SUPPORTED_MAJOR and int(pin[2]) == _optuna.SUPPORTED_MAJOR + 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_every_private_name_exists_on_real_objects(tmp_path):
    url = f"sqlite:///{tmp_path}/a.db"
    optuna.create_study(storage=open_storage(url), study_name="s")
    study = optuna.load_study(study_name="s", storage=open_storage(url, heartbeat=2))
    storage = _optuna.storage_of(study)
    rdb = _optuna.rdb_of(storage)
    assert isinstance(rdb, optuna.storages.RDBStorage) and rdb is not storage  # load_study's cache wrapper
    assert _optuna.heartbeat_interval(storage) == 2
    assert _optuna.heartbeat_interval(optuna.storages.InMemoryStorage()) is None
    trial = study.ask()
    assert storage.get_trial(_optuna.trial_id(trial)).number == trial.number
    assert _optuna.trial_system_attrs(trial) == {}
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.WAITING, system_attrs={"failed_trial": 0}))
    retry = study.ask()  # a queued retry: what it re-runs is known from the copy ask made
    assert _optuna.trial_system_attrs(retry) == {"failed_trial": 0}
    _optuna.record_heartbeat(storage, _optuna.trial_id(retry))
    ages = _optuna.heartbeat_ages(storage, _optuna.study_id(study))
    assert set(ages) == {_optuna.trial_id(retry)} and 0 <= ages[_optuna.trial_id(retry)] < 60
    assert _optuna.beating_trials(storage, _optuna.study_id(study)) == {_optuna.trial_id(retry)}
    _optuna.set_user_attrs(retry, {"a": [1, 2], "b": "x"})  # one transaction
    assert storage.get_trial(_optuna.trial_id(retry)).user_attrs == {"a": [1, 2], "b": "x"}
    study.tell(retry, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        _optuna.set_user_attrs(retry, {"c": 1})  # a finished trial is refused, as by Trial.set_user_attr
    assert _optuna.stop_requested(study) is False
    with _optuna.optimize_loop(study):
        study.stop()  # refused outside optimize's loop: ours must count as one
        assert _optuna.stop_requested(study)
    with pytest.raises(RuntimeError):
        study.stop()  # and the loop flag is cleared again
    with study_lock(storage, url, "s"):
        pass
    f = optuna.distributions.FloatDistribution
    c = optuna.distributions.CategoricalDistribution
    assert _optuna.mixable(f(0.1, 1.0), f(0.01, 2.0)) and not _optuna.mixable(f(0.1, 1.0), f(0.1, 1.0, log=True))
    assert not _optuna.mixable(c([1, 2]), c([1, 2, 3])) and not _optuna.mixable(f(1, 2), c([1, 2]))


def test_no_other_module_touches_optuna_private_names():
    private = re.compile(r"\._storage\b|_stop_flag|_thread_local|\._trial_id\b|\._study_id\b|\._backend\b|"
                         r"_cached_frozen_trial|"
                         r"\._base_path\b|optuna\.\w+\._\w+|optuna_dashboard\.\w+\._|optuna_dashboard\._")
    offenders = []
    for path in [*(ROOT / "search").rglob("*.py"), ROOT / "cli.py", *(ROOT / "models").rglob("*.py")]:
        if path.name in ("_optuna.py", "_dashboard.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if private.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_imports_go_one_way():
    # cli -> search -> models; models/ and the fit loop know nothing of Optuna
    for path in (ROOT / "models").rglob("*.py"):
        text = path.read_text()
        assert "optuna" not in text and "from search" not in text and "import search" not in text, path
    for name in ("fit.py", "augment.py", "data.py"):
        assert "optuna" not in (ROOT / "search" / name).read_text(), name
    for path in (ROOT / "search").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) cli\b", path.read_text(), re.M), path


def test_the_budget_counted_by_the_database_equals_the_budget_counted_from_the_trials(tmp_path):
    from search.study import budget_used
    from search.trials import counts_toward_budget

    url = f"sqlite:///{tmp_path}/b.db"
    study = optuna.create_study(storage=open_storage(url), study_name="b")
    state = optuna.trial.TrialState
    for s, reason in [(state.COMPLETE, None), (state.PRUNED, None), (state.FAIL, "diverged: loss nan"),
                      (state.FAIL, "interrupted"), (state.FAIL, None), (state.FAIL, "too large: 9 GiB"),
                      (state.WAITING, None), (state.COMPLETE, None)]:
        study.add_trial(optuna.create_trial(state=s, value=1.0 if s == state.COMPLETE else None,
                                            user_attrs={"fail_reason": reason} if reason else {}))
    study.ask()  # RUNNING
    trials = study.get_trials(deepcopy=False)
    expected = (sum(counts_toward_budget(t) for t in trials), sum(t.state == state.RUNNING for t in trials))
    assert expected == (5, 1)
    assert _optuna.state_counts(_optuna.storage_of(study), _optuna.study_id(study)) is not None  # by SQL
    assert budget_used(study) == expected
    journal = optuna.create_study(storage=open_storage(f"journal:{tmp_path}/j.log"), study_name="j")
    assert _optuna.state_counts(_optuna.storage_of(journal), _optuna.study_id(journal)) is None  # from the trials
