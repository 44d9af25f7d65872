"""Recorded learning curves -> every sampler x pruner replayed over many seeds.

    python bench/replay.py                      # all methods, 30 seeds: docs/benchmarks.md section 6 + PNG
    python bench/replay.py --json               # the same figures as one JSON object on stdout
    python bench/replay.py --seeds 5 --methods random+none,tpe+hyperband --quick

Training happened once (bench/data/mlp-curves.csv.gz, recorded by `search run` on a grid
study, see bench/curves/). Each replay is a real Optuna study, in memory, with the method's
sampler and pruner built by the service's own registries from a study-file space over the
table's axes; its objective reports a configuration's recorded curve epoch by epoch and
stops where the pruner says. A trial costs the recorded seconds of the epochs it ran; a
run ends when its budget (50x the full training cost of the table's best configuration,
`--budget-x`) is spent. The incumbent is the best final value of a completed trial: what `search
export` would hand over.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import multiprocessing
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from search.space import suggest_params  # noqa: E402
from search.spec import StudySpec, parse_study  # noqa: E402

from _common import choose, emit_json, guarded  # noqa: E402

TABLE = ROOT / "bench" / "data" / "mlp-curves.csv.gz"
AXES = ("lr", "batch_size", "hidden_size", "n_layers", "activation", "dropout", "optimizer")
LOG_AXES = ("lr", "hidden_size")
GAPS = ("0.1", "0.2", "0.5")  # points of validation accuracy below the table's best
BASELINE = "random+none"
BUDGET_X = 50  # the run's budget in multiples of the best configuration's full training cost

SAMPLERS = {
    "random": {"name": "random"},
    "tpe": {"name": "tpe"},  # as the shipped studies get it: Optuna 5's multivariate TPE with constant liar
    "tpe-group": {"name": "tpe", "group": True},
    "gp": {"name": "gp"},
    "qmc": {"name": "qmc"},
}
PRUNERS = {
    "none": {"name": "none"},
    "median": {"name": "median"},
    "sh": {"name": "successive_halving"},
    "hyperband": {"name": "hyperband"},
    "percentile": {"name": "percentile"},
    "patient": {"name": "patient"},
}
# WilcoxonPruner is left out: it compares per-instance scores (folds, seeds) within a trial,
# and a learning curve's steps are epochs of one run, not instances.
# GPSampler refits its Gaussian process on every completed trial (cost ~ trials^3), and a
# pruner lets the budget buy hundreds of short trials: one gp+median run took over 5 CPU
# minutes here, so GP is replayed without pruning only (30 seeds x 5 pruners would take hours).
METHODS = {f"{s}+{p}": (SAMPLERS[s], PRUNERS[p]) for s in SAMPLERS for p in PRUNERS if s != "gp" or p == "none"}
QUICK = ("random+none", "tpe+median", "tpe+hyperband")


@dataclass
class Table:
    configs: list[dict]  # config_id -> axis values
    curves: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # config_id -> per seed (val_accuracy, seconds)
    index: dict[tuple, int]  # axis values -> config_id
    values: dict[str, list]  # axis -> sorted distinct values
    best: float  # best final validation accuracy (mean over a configuration's seeds)
    best_id: int
    best_cost: float  # seconds to train the best configuration in full
    epochs: int
    train_size: int
    seed_noise: float  # median over configurations with several seeds of the std of their final value
    features: np.ndarray = None  # configurations as points for `snap`
    scale: np.ndarray = None


def load_table(path: Path = TABLE) -> Table:
    by: dict[tuple[int, int], list[dict]] = {}
    configs: dict[int, dict] = {}
    train_size = 0
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            cid, seed = int(row["config_id"]), int(row["seed"])
            configs[cid] = {a: _cast(a, row[a]) for a in AXES}
            train_size = int(row["train_size"])
            by.setdefault((cid, seed), []).append(row)
    epochs = max(int(r["epoch"]) for rows in by.values() for r in rows)
    secs_all = [float(r["seconds"]) for rows in by.values() for r in rows if r["seconds"]]
    fallback = statistics.median(secs_all)  # the cost of an epoch that diverged (not recorded)
    curves: dict[int, list] = {}
    for (cid, _), rows in sorted(by.items()):
        rows.sort(key=lambda r: int(r["epoch"]))
        acc = np.array([float(r["val_accuracy"]) if r["val_accuracy"] else math.nan for r in rows])
        secs = np.array([float(r["seconds"]) if r["seconds"] else fallback for r in rows])
        curves.setdefault(cid, []).append((acc, secs))
    finals = {cid: [c[0][-1] if len(c[0]) == epochs else math.nan for c in cs] for cid, cs in curves.items()}
    mean_final = {cid: float(np.mean(v)) for cid, v in finals.items() if not any(math.isnan(x) for x in v)}
    best_id = max(mean_final, key=mean_final.get)
    noise = [float(np.std(v)) for v in finals.values() if len(v) > 1 and not any(math.isnan(x) for x in v)]
    ids = sorted(configs)
    values = {a: sorted({configs[i][a] for i in ids}, key=str) for a in AXES}
    features = np.array([[float(values[a].index(configs[i][a])) if isinstance(configs[i][a], str)
                          else math.log(configs[i][a]) if a in LOG_AXES else float(configs[i][a]) for a in AXES]
                         for i in ids])
    span = features.max(0) - features.min(0)
    scale = np.where([isinstance(values[a][0], str) for a in AXES], 0.1, np.where(span > 0, span, 1.0))
    return Table(features=features, scale=scale, configs=[configs[i] for i in ids], curves={ids.index(c): v for c, v in curves.items()},
                 index={tuple(configs[i][a] for a in AXES): ids.index(i) for i in ids},
                 values=values,
                 best=mean_final[best_id], best_id=ids.index(best_id),
                 best_cost=float(np.mean([c[1].sum() for c in curves[best_id]])), epochs=epochs,
                 train_size=train_size, seed_noise=statistics.median(noise) if noise else math.nan)


def _cast(axis: str, text: str):
    if axis in ("batch_size", "hidden_size", "n_layers"):
        return int(text)
    if axis in ("lr", "dropout"):
        return float(text)
    return text


def space_spec(table: Table, sampler: dict, pruner: dict, seed: int) -> StudySpec:
    """The table's axes as a study file would search them: log ranges for lr and width."""
    v = table.values
    space = {"model": "mlp", "epochs": table.epochs, "momentum": 0.9,
             "lr": {"low": min(v["lr"]), "high": max(v["lr"]), "log": True},
             "hidden_size": {"low": min(v["hidden_size"]), "high": max(v["hidden_size"]), "log": True},
             "n_layers": {"low": min(v["n_layers"]), "high": max(v["n_layers"])},
             "dropout": {"low": min(v["dropout"]), "high": max(v["dropout"])},
             "batch_size": sorted(v["batch_size"]), "activation": sorted(v["activation"]),
             "optimizer": sorted(v["optimizer"])}
    return parse_study({"space": space, "sampler": sampler, "pruner": pruner, "seed": seed}, "replay.yaml")


def snap(table: Table, params) -> int:
    """The recorded configuration nearest to the sampled parameters: per axis, the distance
    in log space (lr, width) or linear space, scaled to the axis's range; a different
    choice of a categorical axis counts as far. With the full grid this is the nearest
    grid value on every axis."""
    point = []
    for axis in AXES:
        value = getattr(params, axis)
        if isinstance(value, str):
            point.append(float(table.values[axis].index(value)))
        else:
            point.append(math.log(value) if axis in LOG_AXES else float(value))
    dist = np.abs(table.features - np.array(point)) / table.scale
    return int(np.argmin(dist.sum(1)))


def replay(table: Table, method: str, seed: int, budget: float) -> dict:
    """One run: (cost, incumbent) at every improvement, trials run, and wall seconds of the replay."""
    sampler_conf, pruner_conf = METHODS[method]
    spec = space_spec(table, sampler_conf, pruner_conf, seed)
    study = optuna.create_study(direction="maximize", sampler=spec.make_sampler(), pruner=spec.make_pruner())
    rng = np.random.default_rng(seed)
    spent, best, trace, trials = 0.0, -math.inf, [(0.0, math.nan)], 0
    start = time.perf_counter()
    while spent < budget:
        trial = study.ask()
        cid = snap(table, suggest_params(trial, spec))
        acc, secs = table.curves[cid][rng.integers(len(table.curves[cid]))]
        trials += 1
        state, value = optuna.trial.TrialState.COMPLETE, None
        for epoch, (a, s) in enumerate(zip(acc, secs, strict=True), 1):
            spent += s
            if math.isnan(a):  # diverged in this epoch
                state = optuna.trial.TrialState.FAIL
                break
            trial.report(float(a), epoch)
            if spent >= budget:
                state = optuna.trial.TrialState.FAIL  # cut by the budget: no result to hand over
                break
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        else:
            value = float(acc[-1])
        study.tell(trial, value, state=state)
        if value is not None and value > best:
            best = value
            trace.append((spent, best))
    return {"trace": trace, "trials": trials, "replay_seconds": time.perf_counter() - start}


def time_to(trace: list[tuple[float, float]], target: float) -> float:
    return next((cost for cost, best in trace if best >= target), math.inf)


def incumbent_at(trace: list[tuple[float, float]], costs: np.ndarray) -> np.ndarray:
    xs = np.array([c for c, _ in trace])
    ys = np.array([b for _, b in trace])
    idx = np.searchsorted(xs, costs, side="right") - 1
    return ys[idx]


def _job(args):
    table, method, seed, budget = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return method, seed, replay(table, method, seed, budget)


def run(table: Table, methods: list[str], seeds: int, budget: float, processes: int) -> dict:
    jobs = [(table, m, s, budget) for m in methods for s in range(seeds)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_job, jobs, chunksize=1)
    runs: dict[str, list] = {m: [] for m in methods}
    for method, _seed, r in results:
        runs[method].append(r)
    return runs


def summarise(table: Table, runs: dict, budget: float) -> dict:
    out = {}
    for method, rs in runs.items():
        m = {"median_seconds": {}, "success": {}}
        for gap in GAPS:
            times = [time_to(r["trace"], table.best - float(gap) / 100) for r in rs]
            med = statistics.median(times)
            m["median_seconds"][gap] = None if math.isinf(med) else round(med, 1)
            m["success"][gap] = round(sum(t <= budget for t in times) / len(times), 3)
        m["median_trials"] = statistics.median(r["trials"] for r in rs)
        m["median_final"] = round(statistics.median(r["trace"][-1][1] for r in rs), 4)
        m["replay_seconds"] = round(statistics.median(r["replay_seconds"] for r in rs), 2)
        out[method] = m
    base = out.get(BASELINE)
    for m in out.values():
        m["speedup"] = {}
        for gap in GAPS:
            a = base["median_seconds"][gap] if base else None
            b = m["median_seconds"][gap]
            m["speedup"][gap] = round(a / b, 2) if a is not None and b else None
    return out


def decisive_gap(seed_noise: float) -> str:
    """The smallest gap at least twice the seed noise (in points): a smaller one measures luck."""
    return next((g for g in GAPS if float(g) >= 2 * seed_noise * 100), GAPS[-1])


def choose_default(methods: dict, gap: str) -> str:
    """The method with the lowest median cost to within `gap` points of the table's best,
    ties broken by the share of seeds that got there, then by the smaller gaps' shares."""
    def key(name):
        m = methods[name]
        cost = m["median_seconds"][gap]
        return (math.inf if cost is None else cost, -m["success"][gap], *(-m["success"][g] for g in GAPS))
    return min(methods, key=key)


def plot(table: Table, runs: dict, budget: float, path: Path, show: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = np.linspace(0, budget, 300)
    fig, ax = plt.subplots(figsize=(8, 5))
    for method in show:
        ys = np.array([incumbent_at(r["trace"], costs) for r in runs[method]]) * 100
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before the first result
            med, lo, hi = (np.nanpercentile(ys, q, axis=0) for q in (50, 25, 75))
        line, = ax.plot(costs, med, label=method, lw=2.2 if method == BASELINE else 1.6,
                        ls="--" if method == BASELINE else "-")
        ax.fill_between(costs, lo, hi, color=line.get_color(), alpha=0.12)
    ax.axhline(table.best * 100, color="grey", lw=0.8)
    ax.axhline((table.best - 0.001) * 100, color="grey", lw=0.8, ls=":")
    ax.set_ylim((table.best - 0.02) * 100, table.best * 100 + 0.3)
    ax.set_xlabel("cumulative training seconds (recorded, one CPU core)")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.set_title(f"Replay of {len(table.configs)} recorded MLP configurations: median and quartiles "
                 f"over {len(next(iter(runs.values())))} seeds", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--methods", default="", help="comma-separated, e.g. random+none,tpe+hyperband "
                                                  f"(from: {', '.join(METHODS)})")
    ap.add_argument("--quick", action="store_true", help=f"3 seeds, {', '.join(QUICK)}: a check, not figures")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--budget-x", type=float, default=BUDGET_X,
                    help="budget per run, in multiples of the best configuration's full training cost")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "replay-anytime.png")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    methods = choose("replay", "--methods", args.methods, METHODS) or (list(QUICK) if args.quick else list(METHODS))
    if BASELINE not in methods:
        methods.insert(0, BASELINE)
    seeds = 3 if args.quick and args.seeds == 30 else args.seeds
    table = load_table(args.table)
    budget = args.budget_x * table.best_cost
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    t0 = time.perf_counter()
    runs = run(table, methods, seeds, budget, args.processes)
    summary = summarise(table, runs, budget)
    gap = decisive_gap(table.seed_noise)
    default = choose_default(summary, gap)
    result = {"default": default, "decided_at_gap": gap, "methods": summary, "seeds": seeds, "budget_seconds": round(budget, 1),
              "budget_x": args.budget_x,
              "table": {"configurations": len(table.configs), "epochs": table.epochs, "train_size": table.train_size,
                        "best": table.best, "best_config": table.configs[table.best_id],
                        "best_cost_seconds": round(table.best_cost, 2), "seed_noise": table.seed_noise},
              "wall_seconds": round(time.perf_counter() - t0, 1), "quick": args.quick}
    if args.json:
        emit_json(result)
    if not args.quick:
        top = sorted(summary, key=lambda m: summary[m]["median_seconds"][gap] or math.inf)[:5]
        shown = [m for m in dict.fromkeys([BASELINE, "tpe+median", default, *top]) if m in runs]  # those run
        plot(table, runs, budget, args.png, shown)
        from bench import machine
        from render import render

        result["machine"] = machine()
        results = json.loads(args.results.read_text()) if args.results.exists() else {}
        results["replay"] = result
        args.results.write_text(json.dumps(results, indent=2))
        args.out.write_text(render(results))
        print(f"replay: {len(methods)} methods x {seeds} seeds in {result['wall_seconds']} s; default {default}; "
              f"wrote {args.png} and {args.results}", file=sys.stderr)


if __name__ == "__main__":
    guarded("replay", main)
