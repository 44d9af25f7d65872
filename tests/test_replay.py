"""The learning-curve table and its replay (bench/replay.py): a check that the replay works
and that the table holds what the docs say, not a timed test."""

import csv
import gzip
import json
import subprocess
import sys
from collections import defaultdict

import pytest

from conftest import ROOT, cli, needs_mnist

sys.path.insert(0, str(ROOT / "bench"))
import replay  # noqa: E402

TABLE = ROOT / "bench" / "data" / "mlp-curves.csv.gz"
COLUMNS = ["lr", "batch_size", "hidden_size", "n_layers", "activation", "dropout", "optimizer", "train_size",
           "config_id", "seed", "epoch", "val_accuracy", "val_loss", "train_loss", "seconds"]


@pytest.fixture(scope="module")
def rows():
    with gzip.open(TABLE, "rt", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def test_the_table_holds_what_the_issue_asks(rows):
    epochs = defaultdict(set)
    configs = {}
    for r in rows:
        epochs[(r["config_id"], r["seed"])].add(int(r["epoch"]))
        values = tuple(r[c] for c in COLUMNS[:7])
        assert configs.setdefault(r["config_id"], values) == values  # one id, one configuration
    assert len(configs) >= 1000
    complete = [k for k, e in epochs.items() if e == set(range(1, 16))]
    assert len(complete) >= 0.9 * len(epochs)  # all but the diverged ones ran 15 epochs
    seeds = defaultdict(set)
    for cid, seed in epochs:
        seeds[cid].add(seed)
    assert sum(len(s) >= 3 for s in seeds.values()) >= 50
    assert {r["optimizer"] for r in rows} >= {"adam", "sgd"}


def test_replay_spends_its_budget_and_pruning_buys_more_trials():
    table = replay.load_table()
    budget = replay.BUDGET_X * table.best_cost
    plain = replay.replay(table, "random+none", 0, budget)
    pruned = replay.replay(table, "random+median", 0, budget)
    for r in (plain, pruned):
        costs = [c for c, _ in r["trace"]]
        bests = [b for _, b in r["trace"][1:]]
        assert costs == sorted(costs) and bests == sorted(bests) and costs[-1] <= budget
        assert max(bests) <= max(c[0][-1] for cs in table.curves.values() for c in cs)
    assert pruned["trials"] > plain["trials"]  # stopped early, the same seconds buy more configurations
    # a replay is reproducible: the same method and seed give the same run
    assert replay.replay(table, "tpe+median", 3, budget)["trace"] == replay.replay(table, "tpe+median", 3,
                                                                                      budget)["trace"]


def test_replay_json_quick():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "replay.py"), "--quick", "--json", "--seeds", "3",
                        "--methods", "random+none,tpe+hyperband"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["methods"]) == {"random+none", "tpe+hyperband"} and out["default"] in out["methods"]
    for m in out["methods"].values():
        for key in ("median_seconds", "success", "speedup"):
            assert set(m[key]) == {"0.1", "0.2", "0.5"}
        assert all(0 <= m["success"][g] <= 1 for g in m["success"])
        assert all(s is None or 0 <= s <= out["budget_seconds"] for s in m["median_seconds"].values())
    base = out["methods"]["random+none"]
    assert all(base["speedup"][g] == 1.0 for g in base["speedup"] if base["median_seconds"][g])
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "replay.py"), "--methods", "cmaes+none"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"replay: error: --methods 'cmaes+none': unknown; expected some of {', '.join(replay.METHODS)}"]


def test_replay_of_methods_without_the_plots_usual_ones_writes_its_figures(tmp_path):
    """A full (not --quick) run of a list lacking tpe+median plots what ran (it raised KeyError)."""
    files = {"--results": tmp_path / "r.json", "--png": tmp_path / "a.png", "--out": tmp_path / "b.md"}
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "replay.py"), "--seeds", "2", "--methods",
                        "tpe+hyperband", *[str(x) for kv in files.items() for x in kv]],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(files["--results"].read_text())["replay"]["methods"]) == {"random+none", "tpe+hyperband"}
    assert files["--png"].stat().st_size > 10_000 and "replay" in files["--out"].read_text().lower()


@needs_mnist
def test_a_recorded_row_retrains_near_its_curve(rows, tmp_path):
    # the cheapest recorded configuration, retrained with `search train` at its seed
    final = [r for r in rows if r["epoch"] == "15" and r["batch_size"] == "256" and r["hidden_size"] == "32"
             and r["n_layers"] == "1" and r["optimizer"] == "adam" and r["lr"] == "0.003"]
    row = final[0]
    params = {a: row[a] for a in ("activation", "optimizer")}
    params |= {"lr": float(row["lr"]), "batch_size": 256, "hidden_size": 32, "n_layers": 1,
               "dropout": float(row["dropout"]), "epochs": 15}
    (tmp_path / "c.yaml").write_text(json.dumps({"seed": int(row["seed"]), "train_size": int(row["train_size"]),
                                                 "params": params}))
    result = json.loads(cli("train", "--config", tmp_path / "c.yaml", "--json").stdout)
    assert abs(result["val_accuracy"] - float(row["val_accuracy"])) <= 0.003  # threads change float sums only
