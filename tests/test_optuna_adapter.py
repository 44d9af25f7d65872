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


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_best_trials_ordered_by_the_database_equal_the_order_from_every_trial(tmp_path, direction):
    """`ranked(study, top)` and `study_facts` by SQL on SQLite agree with the same trials read
    whole (an in-memory copy): ties by number, -inf/+inf, constraints, pruned and failed trials."""
    import random

    from search.trials import ranked, study_facts

    url = f"sqlite:///{tmp_path}/r.db"
    stored = optuna.create_study(storage=open_storage(url), study_name="r", direction=direction)
    memory = optuna.create_study(direction=direction)
    state = optuna.trial.TrialState
    rng = random.Random(0)
    trials = []
    for i in range(300):
        s = rng.choice([state.COMPLETE] * 6 + [state.PRUNED, state.FAIL])
        value = rng.choice([0.5, 0.9, 0.97, float("inf"), float("-inf"), rng.random()]) if s != state.FAIL else None
        attrs = {"constraints": [rng.choice([-1.0, 0.0, 0.5])]} if i % 3 == 0 else {}
        trials.append(optuna.create_trial(state=s, value=value, system_attrs=attrs,
                                          intermediate_values={1: 0.1} if s == state.PRUNED else None))
    stored.add_trials(trials)
    memory.add_trials(trials)
    assert _optuna.best_trial_ids(_optuna.storage_of(stored), _optuna.study_id(stored), True, 5) is not None
    assert _optuna.best_trial_ids(_optuna.storage_of(memory), _optuna.study_id(memory), True, 5) is None
    for top in (1, 7, 60, 250, 400):
        assert [t.number for t in ranked(stored, top)] == [t.number for t in ranked(memory, top)], top
    by_sql, whole = study_facts(stored), study_facts(memory)
    assert by_sql["states"] == whole["states"] and by_sql["n_trials"] == whole["n_trials"] == 300
    assert by_sql["constrained"] is whole["constrained"] is True


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_budget_count_kept_between_reads_follows_trials_finishing_and_a_study_made_again(tmp_path, kind, request):
    """state_counts reads only the trials running at its last read and those after the last
    finished one: it must still see each finish, each new trial, and a study deleted and
    created again under the same id (SQLite reuses it). A reader new to a study (its first
    read grouped by the database) agrees, and follows what happens next."""
    from search.study import budget_used
    from search.trials import counts_toward_budget

    url = f"sqlite:///{tmp_path}/k.db" if kind == "sqlite" else request.getfixturevalue("pg_url")
    storage = open_storage(url)
    state = optuna.trial.TrialState

    def whole(study):
        trials = study.get_trials(deepcopy=False)
        return (sum(counts_toward_budget(t) for t in trials), sum(t.state == state.RUNNING for t in trials))

    study = optuna.create_study(storage=storage, study_name="k")
    sid = _optuna.study_id(study)
    running = [study.ask() for _ in range(4)]
    assert budget_used(study) == whole(study) == (0, 4)
    study.tell(running[2], 1.0)  # a later one finishes first: the earlier ones stay open
    study.add_trial(optuna.create_trial(state=state.FAIL, user_attrs={"fail_reason": "diverged: nan"}))
    assert budget_used(study) == whole(study) == (2, 3)
    study.tell(running[0], state=state.PRUNED)
    _optuna.set_trial_user_attrs(storage, running[1]._trial_id, {"fail_reason": "interrupted"})
    study.tell(running[1], state=state.FAIL)  # a retry: not counted
    study.enqueue_trial({})  # WAITING: not counted, not running
    assert budget_used(study) == whole(study) == (3, 1)
    newcomer = optuna.load_study(study_name="k", storage=open_storage(url))  # its own counter: a first read
    assert budget_used(newcomer) == (3, 1)
    study.tell(running[3], 2.0)
    assert budget_used(study) == whole(study) == budget_used(newcomer) == (4, 0)
    newcomer.tell(newcomer.ask(), 3.0)  # the queued trial
    assert budget_used(study) == budget_used(newcomer) == whole(study) == (5, 0)
    optuna.delete_study(study_name="k", storage=storage)
    again = optuna.create_study(storage=storage, study_name="k")
    assert _optuna.study_id(again) == sid or kind != "sqlite"  # the same id on SQLite: the counter must notice
    again.tell(again.ask(), 5.0)
    again.ask()
    assert budget_used(again) == whole(again) == (1, 1)


def test_attributes_written_together_and_read_by_key_agree_on_every_storage(tmp_path):
    """set_trial_user_attrs (user and system attributes) / set_study_system_attrs (one upsert) and study_system_attr (one
    keyed read) on SQLite, a journal and the storage proxy: inserts, updates, a finished trial
    refused; and the QMC sampler reading its counter by key samples what Optuna's does."""
    from test_proxy import Proxy

    server = Proxy(f"sqlite:///{tmp_path}/behind.db")
    try:
        for url in (f"sqlite:///{tmp_path}/a.db", f"journal:{tmp_path}/a.log", server.url):
            storage = open_storage(url)
            study = optuna.create_study(storage=storage, study_name="a")
            sid, trial = _optuna.study_id(study), study.ask()
            _optuna.set_trial_user_attrs(storage, trial._trial_id, {"a": 1, "b": [1, "x"]})
            _optuna.set_trial_user_attrs(storage, trial._trial_id, {"a": 2, "c": None},  # an update and a new key
                                         system={"cfg": {"lr": 0.1}})  # and a system attribute, together
            stored = storage.get_trial(trial._trial_id)
            assert stored.user_attrs == {"a": 2, "b": [1, "x"], "c": None}, url
            assert stored.system_attrs["cfg"] == {"lr": 0.1}, url
            study.tell(trial, 1.0)
            with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
                _optuna.set_trial_user_attrs(storage, trial._trial_id, {"d": 1})
            other = study.ask()
            study.tell(other, 3.0)
            sql = not url.startswith("journal")  # SQLite, and the proxy's database behind it
            assert _optuna.best_trial_ids(storage, sid, True, 5) == ([other._trial_id, trial._trial_id] if sql else None)
            assert _optuna.best_trial_ids(storage, sid, False, 1, 1) == ([other._trial_id] if sql else None), url
            assert _optuna.has_constraints(storage, sid) is (False if sql else None), url
            _optuna.set_study_system_attrs(storage, sid, {"k": {"x": 1}, "n": 3})
            _optuna.set_study_system_attrs(storage, sid, {"n": 4})
            assert {k: v for k, v in storage.get_study_system_attrs(sid).items() if k in "kn"} == {"k": {"x": 1}, "n": 4}
            assert _optuna.study_system_attr(storage, sid, "n") == 4, url
            assert _optuna.study_system_attr(storage, sid, "absent", -1) == -1
            space = {"x": optuna.distributions.FloatDistribution(0, 1), "y": optuna.distributions.IntDistribution(1, 9)}
            with _optuna.quiet_experimental():
                ours = optuna.create_study(storage=storage, study_name="q1", sampler=_optuna.QMCSampler(seed=3))
                theirs = optuna.create_study(storage=storage, study_name="q2",
                                             sampler=optuna.samplers.QMCSampler(seed=3))
            for s in (ours, theirs):
                for _ in range(6):
                    s.tell(s.ask(space), 0.0)
            assert [t.params for t in ours.trials] == [t.params for t in theirs.trials], url
            assert len({t.params["x"] for t in ours.trials}) == 6  # the counter moved on every trial
    finally:
        server.stop()


def test_constraints_found_by_the_database_in_both_forms_optuna_reads(tmp_path):
    """has_constraints agrees with `FrozenTrial.constraints` for a study without any, one whose
    sampler wrote Optuna's list form (and an empty list, which is none), and one with named keys
    (`constraints:NAME`, the form a study stored by the service before its record module has)."""
    url = f"sqlite:///{tmp_path}/c.db"
    storage = open_storage(url)

    def agree(name: str) -> bool:
        study = optuna.load_study(study_name=name, storage=storage)
        found = _optuna.has_constraints(_optuna.storage_of(study), _optuna.study_id(study))
        assert found == any(t.constraints for t in study.trials), name
        return bool(found)

    plain = optuna.create_study(storage=storage, study_name="plain")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    listed = optuna.create_study(storage=storage, study_name="listed", sampler=optuna.samplers.TPESampler(
        constraints_func=lambda t: [t.params["x"] - 0.5]))
    listed.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    empty = optuna.create_study(storage=storage, study_name="empty")
    empty.add_trial(optuna.create_trial(value=1.0, system_attrs={"constraints": []}))
    named = optuna.create_study(storage=storage, study_name="named")
    named.add_trial(optuna.create_trial(value=1.0, system_attrs={"constraints:val_accuracy >= 0.5": -0.2}))
    assert [agree(n) for n in ("plain", "listed", "empty", "named")] == [False, True, False, True]
