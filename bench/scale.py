"""Scale: simulated workers (the service's own trial loop and objective, with a fit that sleeps
instead of training) through PostgreSQL directly, the gRPC storage proxy and a journal file;
and the per-trial cost as a study grows to 100,000 trials, the service beside plain Optuna on
the same storage and sampler, in the same run.

    python bench/scale.py                                   # both parts: bench/results.json, docs/benchmarks.md
    python bench/scale.py --only workers --workers 1,8,32,64
    python bench/scale.py --only growth --sizes 100,1000,10000,100000
    python bench/scale.py --only growth --filled /tmp/filled   # the filled studies kept, reused next time
    python bench/scale.py --quick                           # a small run of both, for the test suite

Workers are forked from one process that has imported everything and loaded MNIST, so 64 of
them start at once and share the data's pages; each runs `search.study.optimize` on its own
storage connection. The fit sleeps `--sleep` seconds over 3 epochs and reports each one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from _common import choose, emit_json, fail, guarded  # noqa: E402

MNIST = Path(os.environ.get("SEARCH_DATA_DIR", ROOT.parent / "shared" / "datasets" / "mnist"))
RESULTS = ROOT / "bench" / "results.json"  # under "scale"; docs/benchmarks.md is rendered from it
DOCS = ROOT / "docs"
STORAGES = ["postgresql", "proxy", "journal"]
SAMPLERS = {"default (qmc)": None, "tpe": "tpe", "random": "random"}
STUDY = """dataset: mnist
n_trials: 1000000
seed: 0
train_size: 2000
pruner: none
{sampler}
space:
  model: mlp
  epochs: 3
  lr: {{low: 1.0e-4, high: 1.0e-1, log: true}}
  hidden_size: {{low: 16, high: 512, log: true}}
  batch_size: [64, 128, 256]
  dropout: {{low: 0.0, high: 0.5}}
"""

optuna.logging.set_verbosity(optuna.logging.ERROR)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def spec_for(tmp: Path, name: str, sampler: str | None = None):
    from search.spec import read_study_file

    path = tmp / f"{name}.yaml"
    path.write_text(STUDY.format(sampler=f"sampler: {sampler}" if sampler else ""))
    return read_study_file(str(path))


def sleeping_fit(sleep_s: float):
    def fit(model, train, val, cfg, seed, on_epoch=None, transform=None, on_step=None):
        from search.fit import EpochResult, FitResult
        from search.precision import FP32

        history = []
        for epoch in range(1, cfg.epochs + 1):
            time.sleep(sleep_s / cfg.epochs)
            r = EpochResult(epoch, 0.5, 100.0, 0.4, 0.9 + epoch / 100 + cfg.lr, sleep_s / cfg.epochs)
            history.append(r)
            if on_epoch:
                on_epoch(r)
        return FitResult(history, FP32)

    return fit


# ---------------------------------------------------------------- part 1: many workers


_DATA: Any = None  # MNIST, loaded before the fork: the workers share its pages


def _worker(conn) -> None:
    import torch

    torch.set_num_threads(1)
    while True:
        task = conn.recv()
        if task is None:
            return
        try:
            conn.send(_simulate(**task))
        except Exception as e:  # noqa: BLE001 - reported, the run goes on
            conn.send({"error": f"{type(e).__name__}: {str(e)[:200]}"})


def _simulate(url: str, spec_path: str, budget: int, sleep_s: float, go_at: float) -> dict:
    import torch

    from search.objective import Objective
    from search.spec import read_study_file
    from search.study import RunOptions, open_study, optimize

    spec = read_study_file(spec_path)
    study = open_study(spec, url, RunOptions())
    asks: list[float] = []
    tells: list[float] = []
    for name, into in (("ask", asks), ("tell", tells)):
        method = getattr(study, name)

        def timed(*a, _m=method, _into=into, **k):
            t = time.perf_counter()
            try:
                return _m(*a, **k)
            finally:
                _into.append(time.perf_counter() - t)

        setattr(study, name, timed)  # the loop calls study.ask / study.tell: measured where they are called
    objective = Objective(spec, _DATA, torch.device("cpu"), fit_fn=sleeping_fit(sleep_s))
    while time.time() < go_at:
        time.sleep(0.005)
    start = time.perf_counter()
    result = optimize(study, objective, url, budget)
    return {"ran": result.ran, "asks": asks, "tells": tells, "seconds": time.perf_counter() - start}


def _warm(tmp: Path) -> None:
    """Import the trial path and run one trial in memory, so that the forked workers start warm."""
    import torch

    import search.objective  # noqa: F401
    import search.proxy  # noqa: F401
    import search.study  # noqa: F401
    from search.objective import Objective
    from search.study import optimize

    spec = spec_for(tmp, "warm")
    study = optuna.create_study(direction="maximize", sampler=spec.make_sampler(0))
    optimize(study, Objective(spec, _DATA, torch.device("cpu"), fit_fn=sleeping_fit(0.0)), "memory", 2)


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, with their reaped children's (PostgreSQL's ended backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
    return total


def _postgres_pids(bindir: Path) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "exe").startswith(str(bindir)):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def _check_study(url: str, name: str, budget: int) -> dict:
    from search import records
    from search.storage import open_storage

    ts = optuna.load_study(study_name=name, storage=open_storage(url, create=False)).trials
    finished = [t for t in ts if t.state.name == "COMPLETE"]
    by_point: dict[tuple, list] = {}
    for t in ts:
        by_point.setdefault(tuple(sorted(t.params.items())), []).append(t)
    # every trial of a point that two complete trials share, so that a failure says how it came about
    twice = [[{"number": t.number, "state": t.state.name, "retries": records.retries(t),
               "fail_reason": records.fail_reason(t)} for t in group] for group in by_point.values() if sum(t.state.name == "COMPLETE" for t in group) > 1]
    return {"finished": len(finished), "running_or_waiting": sum(t.state.name in ("RUNNING", "WAITING") for t in ts),
            "duplicates": len(finished) - len({tuple(sorted(t.params.items())) for t in finished}),
            "duplicated": twice, "failed": sum(t.state.name == "FAIL" for t in ts), "exact": len(finished) == budget}


def bench_workers(counts: list[int], sleep_s: float, per_worker: int, tmp: Path) -> dict:
    global _DATA
    from search.data import load_dataset

    from pg import Server, find_bin

    bindir = find_bin()
    if bindir is None:
        fail("bench/scale.py", "the workers part needs PostgreSQL's server binaries (apt-get install postgresql)")
    _DATA = load_dataset("mnist", MNIST, "cpu")
    _warm(tmp)  # what every worker imports and builds once, done before the fork: not 64 imports at once
    ctx = multiprocessing.get_context("fork")  # nothing connected yet: the children open their own storages
    pool = []
    for _ in range(max(counts)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        pool.append((proc, parent))
    server = Server(bindir)
    server.max_connections = 4 * max(counts) + 20  # each direct worker: its pool, its heartbeat thread's
    out: dict[str, Any] = {"sleep_s": sleep_s, "per_worker": per_worker}
    try:
        server.init()
        server.start()
        server.create_db()
        from search.storage import open_storage

        open_storage(server.url)  # the schema, once
        for kind in STORAGES:
            proxy = None
            if kind == "proxy":
                proxy = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", "storage-proxy", "--storage",
                                          server.url, "--port", "13999", "--threads", str(max(32, max(counts)))],
                                         env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
                assert "storage proxy for" in proxy.stdout.readline(), proxy.stderr.read()
            url = {"postgresql": server.url, "proxy": "grpc://127.0.0.1:13999",
                   "journal": f"journal:{tmp / 'scale.log'}"}[kind]
            rows = {}
            for n in counts:
                name = f"scale-{kind}-{n}"
                spec = spec_for(tmp, name)
                budget = n * per_worker
                from search.study import RunOptions, open_study

                open_study(spec, url, RunOptions())  # created once, before the workers
                pids = _postgres_pids(bindir) + ([proxy.pid] if proxy else [])
                cpu0, wall0 = _cpu_seconds(pids), time.perf_counter()
                go_at = time.time() + 1.0
                for _, conn in pool[:n]:
                    conn.send({"url": url, "spec_path": str(spec.path), "budget": budget, "sleep_s": sleep_s,
                               "go_at": go_at})
                got = [conn.recv() for _, conn in pool[:n]]
                wall = time.perf_counter() - wall0 - 1.0
                pids = _postgres_pids(bindir) + ([proxy.pid] if proxy else [])
                cpu = _cpu_seconds(pids) - cpu0
                errors = [g["error"] for g in got if "error" in g]
                asks = [a for g in got for a in g.get("asks", [])]
                tells = [a for g in got for a in g.get("tells", [])]
                check = _check_study(url, name, budget)
                row = {"workers": n, "trials": budget, "seconds": wall, "trials_per_s": check["finished"] / wall,
                       "ideal_trials_per_s": n / sleep_s, "server_cpu_s": cpu if kind != "journal" else None,
                       "ask_ms_p50": _pct(asks, 50), "ask_ms_p99": _pct(asks, 99),
                       "tell_ms_p50": _pct(tells, 50), "tell_ms_p99": _pct(tells, 99), **check,
                       "errors": errors[:3]}
                rows[str(n)] = row
                log(f"workers {kind:10s} {n:3d}: {row['trials_per_s']:6.1f} trials/s (ideal {n / sleep_s:.0f}); ask "
                    f"p50/p99 {row['ask_ms_p50']:.0f}/{row['ask_ms_p99']:.0f} ms, tell {row['tell_ms_p50']:.0f}/"
                    f"{row['tell_ms_p99']:.0f} ms; server CPU {cpu:.1f} s; finished {check['finished']}/{budget}, "
                    f"running {check['running_or_waiting']}, duplicates {check['duplicates']}"
                    + (f"; errors: {errors[0]}" if errors else ""))
            out[kind] = rows
            if proxy is not None:
                proxy.terminate()
                proxy.communicate(timeout=30)
    finally:
        for _, conn in pool:
            conn.send(None)
        server.remove()
    return out


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q)) if xs else float("nan")


# ---------------------------------------------------------------- part 2: growth with the study's size


def _trial(rng: np.random.Generator, spec) -> optuna.trial.FrozenTrial:
    """A finished trial as the service stores one (its config too), with random values."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from search.params import Params
    from search.records import CONFIG

    lr, hidden, batch, dropout = (float(10 ** rng.uniform(-4, -1)), int(rng.integers(16, 513)),
                                  int(rng.choice([64, 128, 256])), float(rng.uniform(0, 0.5)))
    params = {"lr": lr, "hidden_size": hidden, "batch_size": batch, "dropout": dropout}
    dists = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "hidden_size": IntDistribution(16, 512, log=True),
             "batch_size": CategoricalDistribution([64, 128, 256]), "dropout": FloatDistribution(0.0, 0.5)}
    value = float(rng.uniform(0.8, 0.99))
    config = Params(model="mlp", epochs=3, **params).active()
    # params, value and config only: each row more is an insert more, and 100,000 trials take
    # ~10 minutes to add through Optuna's API as it is
    return optuna.trial.create_trial(params=params, distributions=dists, value=value, system_attrs={CONFIG: config})


def _copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file in WAL mode (a plain copy misses what the -wal holds)."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _fill(tmp: Path, sizes: list[int], keep: Path | None = None) -> dict[int, Path]:
    """One SQLite study filled through Optuna's API (add_trials), copied at each size (into
    `keep`, where copies of every size left there by an earlier run are used as they are)."""
    from search.storage import open_storage
    from search.study import RunOptions, open_study

    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        kept = {size: keep / f"size-{size}.db" for size in sizes}
        if all(p.is_file() for p in kept.values()):
            log(f"growth: the filled studies kept in {keep} ({', '.join(f'{s:,}' for s in sizes)} trials)")
            return kept
    db = tmp / "fill.db"
    url = f"sqlite:///{db}"
    spec = spec_for(tmp, "growth")
    study = open_study(spec, url, RunOptions())
    store = optuna.load_study(study_name="growth", storage=open_storage(url))
    rng = np.random.default_rng(0)
    have, copies = 0, {}
    for size in sorted(sizes):
        t = time.perf_counter()
        while have < size:
            k = min(1000, size - have)
            store.add_trials([_trial(rng, spec) for _ in range(k)])
            have += k
        copies[size] = (keep or tmp) / f"size-{size}.db"
        part = copies[size].with_suffix(".part")  # a copy cut short is never taken for a filled study
        part.unlink(missing_ok=True)
        _copy_db(db, part)
        part.replace(copies[size])
        log(f"growth: filled {size:,} trials ({time.perf_counter() - t:.0f} s)")
    del study
    return copies


def _measure(kind: str, filled: Path, size: int, sampler: str | None, k: int, tmp: Path) -> dict:
    """ms per trial over `k` trials after the first (which loads the study), on a copy of the study."""
    from search import _optuna
    from search.objective import Objective
    from search.space import suggest_params
    from search.study import RunOptions, open_study, optimize

    db = tmp / f"m-{kind}.db"
    _copy_db(filled, db)
    url = f"sqlite:///{db}"
    spec = spec_for(tmp, "growth", sampler)
    stamps: list[float] = []
    if kind == "service":
        import warnings

        import torch

        from search.identity import DefinitionChanged

        with warnings.catch_warnings():  # the sampler is changed on purpose, once per arm and round
            warnings.simplefilter("ignore", DefinitionChanged)
            study = open_study(spec, url, RunOptions(allow_change=True))
        objective = Objective(spec, _GROWTH_DATA, torch.device("cpu"), fit_fn=sleeping_fit(0.0))
        stamps.append(time.perf_counter())
        optimize(study, objective, url, size + k + 1, on_trial=lambda s, t: stamps.append(time.perf_counter()))
    else:  # plain Optuna: the same storage, sampler and space; reports and a value, nothing else
        plain_sampler = spec.make_sampler(size)
        if type(plain_sampler).__module__.startswith("search."):  # our QMCSampler: plain Optuna has its own
            with _optuna.quiet_experimental():
                plain_sampler = optuna.samplers.QMCSampler(seed=size, scramble=True)
        study = optuna.load_study(study_name="growth", storage=url, sampler=plain_sampler)

        def objective_plain(trial):
            params = suggest_params(trial, spec)
            for e in range(1, 4):
                trial.report(0.9 + e / 100, e)
            return 0.95 + params.lr

        stamps.append(time.perf_counter())
        study.optimize(objective_plain, n_trials=k + 1, callbacks=[lambda s, t: stamps.append(time.perf_counter())])
    per = np.diff(stamps) * 1000
    db.unlink()
    return {"first_ms": float(per[0]), "ms": float(statistics.median(per[1:])), "n": len(per) - 1}


_GROWTH_DATA: Any = None


def _rounds(kind_first: list[str], copy: Path, size: int, sampler: str | None, k: int, tmp: Path,
            rounds: int) -> dict[str, dict]:
    """The service and plain Optuna measured `rounds` times each, alternating which goes first:
    on these VMs one median of 10 trials moves by a third between runs on an idle machine, so
    each arm reports the median of its rounds' medians, and every round."""
    runs: dict[str, list[dict]] = {kind: [] for kind in kind_first}
    for r in range(rounds):
        for kind in (kind_first if r % 2 == 0 else kind_first[::-1]):
            runs[kind].append(_measure(kind, copy, size, sampler, k, tmp))
    return {kind: {"ms": statistics.median(x["ms"] for x in xs), "rounds_ms": [round(x["ms"], 2) for x in xs],
                   "first_ms": xs[0]["first_ms"], "n": sum(x["n"] for x in xs)} for kind, xs in runs.items()}


def bench_growth(sizes: list[int], k: int, tmp: Path, keep: Path | None = None, rounds: int = 3) -> dict:
    global _GROWTH_DATA
    from search.data import load_dataset

    _GROWTH_DATA = load_dataset("mnist", MNIST, "cpu")
    copies = _fill(tmp, sizes, keep)
    out: dict[str, Any] = {"trials_timed": k, "rounds": rounds, "storage": "sqlite"}
    for label, sampler in SAMPLERS.items():
        rows = {}
        for size in sizes:
            n = k if size < 100_000 or sampler != "tpe" else max(3, k // 4)  # TPE reads every trial
            # each load of 100,000 trials takes ~35 s: one round there
            arms = _rounds(["service", "plain"], copies[size], size, sampler, n, tmp, rounds if size < 100_000 else 1)
            service, plain = arms["service"], arms["plain"]
            rows[str(size)] = {"service": service, "plain": plain, "ratio": service["ms"] / plain["ms"]}
            log(f"growth {label:14s} {size:7,d} trials: service {service['ms']:7.1f} ms/trial, plain Optuna "
                f"{plain['ms']:7.1f} ({service['ms'] / plain['ms']:.2f}x); first trial {service['first_ms']:.0f} / "
                f"{plain['first_ms']:.0f} ms")
        out[label] = rows
    out["readers"] = _readers(copies[max(sizes)], max(sizes))
    out["readers_small"] = _readers(copies[min(sizes)], min(sizes))  # the baseline: the same processes, a small study
    return out


def _readers(filled: Path, size: int) -> dict:
    """Whole `search show` / `search studies` processes on the largest study (the CLI as a user runs it)."""
    url = f"sqlite:///{filled}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEARCH_DATA_DIR": str(MNIST)}
    out = {"trials": size}
    for name, args in (("show --top 10", ["show", "--study", "growth", "--top", "10"]), ("studies", ["studies"]),
                       ("show --top 10 --json", ["show", "--study", "growth", "--top", "10", "--json"])):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args, "--storage", url], env=env,
                           capture_output=True, text=True, timeout=600)
        out[name] = {"seconds": time.perf_counter() - t, "rc": r.returncode}
        log(f"readers: search {name} on {size:,} trials: {out[name]['seconds']:.1f} s (exit {r.returncode})")
    return out


# ---------------------------------------------------------------- plots and main


def plot(results: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "workers" in results:
        w = results["workers"]
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for kind in STORAGES:
            if kind in w:
                xs = sorted(int(n) for n in w[kind])
                ax.plot(xs, [w[kind][str(n)]["trials_per_s"] for n in xs], marker="o", label=kind)
        xs = sorted({int(n) for kind in STORAGES if kind in w for n in w[kind]})
        ax.plot(xs, [n / w["sleep_s"] for n in xs], ls=":", c="grey", label="ideal (no storage cost)")
        ax.set(xscale="log", yscale="log", xlabel="simulated workers", ylabel="trials / s",
               title=f"Trials per second, {w['sleep_s']:g} s sleeping trials")
        ax.legend()
        path = DOCS / "scale-workers.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    if "growth" in results:
        g = results["growth"]
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for i, label in enumerate(SAMPLERS):
            if label not in g:
                continue
            xs = sorted(int(n) for n in g[label])
            ax.plot(xs, [g[label][str(n)]["service"]["ms"] for n in xs], marker="o", c=f"C{i}", label=f"{label}: service")
            ax.plot(xs, [g[label][str(n)]["plain"]["ms"] for n in xs], marker="x", ls="--", c=f"C{i}",
                    label=f"{label}: plain Optuna")
        ax.set(xscale="log", yscale="log", xlabel="trials in the study", ylabel="ms per trial (SQLite)",
               title="Per-trial cost as the study grows")
        ax.legend(fontsize=8)
        path = DOCS / "scale-growth.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="workers,growth", help="workers, growth or both")
    ap.add_argument("--workers", default="1,8,32,64", help="simulated worker counts")
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds each simulated trial sleeps")
    ap.add_argument("--per-worker", type=int, default=8, help="trials per worker in the budget")
    ap.add_argument("--sizes", default="100,1000,10000,100000", help="study sizes for the growth part")
    ap.add_argument("--timed", type=int, default=20, help="trials timed at each size")
    ap.add_argument("--rounds", type=int, default=3, help="service / plain rounds at each size below 100,000")
    ap.add_argument("--filled", metavar="DIR", help="keep the growth part's filled studies in DIR and reuse them "
                                                    "next time (filling 100,000 trials takes ~18 min)")
    ap.add_argument("--quick", action="store_true", help="a small run (the test suite's)")
    ap.add_argument("--out", default=str(RESULTS), help="results JSON (merged into what is there)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    parts = choose("bench/scale.py", "--only", args.only, ["workers", "growth"])
    try:
        counts = [int(x) for x in args.workers.split(",")]
        sizes = [int(x) for x in args.sizes.split(",")]
    except ValueError:
        fail("bench/scale.py", "--workers and --sizes take comma-separated whole numbers, e.g. 1,8,32,64")
    if args.quick:
        counts, sizes, args.timed, args.sleep, args.per_worker, args.rounds = [1, 4], [100, 300], 5, 0.2, 3, 1
    out = Path(args.out)
    everything = json.loads(out.read_text()) if out.is_file() else {}
    results = everything.get("scale", {})
    results["machine"] = _machine()
    with tempfile.TemporaryDirectory(prefix="search-scale-") as tmp:
        if "workers" in parts:
            results["workers"] = {**bench_workers(counts, args.sleep, args.per_worker, Path(tmp)), "machine": _machine()}
        if "growth" in parts:
            results["growth"] = {**bench_growth(sizes, args.timed, Path(tmp),
                                                 Path(args.filled) if args.filled else None, args.rounds),
                                 "machine": _machine()}  # each part says where and when it ran
    if args.quick:
        results["quick"] = True
    everything["scale"] = results
    out.write_text(json.dumps(everything, indent=1))
    if not args.quick:
        from render import render

        for path in plot(results):
            log(f"wrote {path}")
        (DOCS / "benchmarks.md").write_text(render(everything))
    if args.json:
        emit_json(results)


def _machine() -> dict:
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    return {"cpu": cpu + (" with AVX512-BF16" if "avx512_bf16" in flags else ""), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"), "optuna": optuna.__version__, "python": sys.version.split()[0]}


if __name__ == "__main__":
    guarded("bench/scale.py", main)
