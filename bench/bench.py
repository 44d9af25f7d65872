"""mnist-search benchmarks: each figure is a ratio against a plain baseline measured in the
same run on the same machine. Absolute times are printed, never asserted.

    python bench/bench.py                      # everything; writes docs/benchmarks.md
    python bench/bench.py --only epoch,eval    # some sections (merged into the last results)

Sections: epoch (fit loop vs the tutorial pipeline, GFLOP/s vs the matmul peak), eval
(test-set images/s), overhead (storage + sampler ms per trial, SQLite and PostgreSQL),
search (time to 98 % validation: TPE + Hyperband vs random search without pruning),
workers (trials per minute with 1 vs 2 workers), live (the default sampler and pruner vs
random search, live), conv (convolutions: fp32 vs the measured fast path), fast99 (time to
99 % test: `search train --config configs/fast-99.yaml` vs pytorch/examples' recipe), augment
(search/augment.py vs kornia.augmentation, images per second).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models import Shape  # noqa: E402
from search.data import MEAN, STD, load_dataset, read_idx  # noqa: E402
from search.experiment import build, subset  # noqa: E402
from search.fit import evaluate, fit  # noqa: E402
from search.params import Params  # noqa: E402

from _common import choose, emit_json, guarded  # noqa: E402

MNIST = Path(os.environ.get("SEARCH_DATA_DIR", ROOT.parent / "shared" / "datasets" / "mnist"))
RESULTS = ROOT / "bench" / "results.json"
MODELS = {
    "MLP 784-100-10": dict(model="mlp", hidden_size=100, n_layers=1, batch_size=128, epochs=1),
    "LeNet-5": dict(model="lenet5", batch_size=128, epochs=1),
}


optuna.logging.set_verbosity(optuna.logging.WARNING)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # progress; stdout is for --json


# ---------------------------------------------------------------- 1. epoch throughput


class TutorialDataset(torch.utils.data.Dataset):
    """The common tutorial pipeline: each digit becomes a PIL image, then a normalised tensor
    (what torchvision's ToTensor + Normalize do), one sample at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)
        return (x - MEAN) / STD, int(self.labels[i])


def tutorial_epoch(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    loader = torch.utils.data.DataLoader(TutorialDataset(images, labels), batch_size=128, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    running = 0.0
    start = time.perf_counter()
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        running += loss.item()
    return time.perf_counter() - start


def matmul_peak() -> float:
    """This machine's float32 matrix-multiply GFLOP/s: the physical limit of a training step on CPU."""
    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        reps = 10
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(model: torch.nn.Module, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def bench_epoch(quick: bool) -> dict:
    data = load_dataset("mnist", MNIST, "cpu")
    images = read_idx(MNIST / "train-images-idx3-ubyte.gz")[:55000]
    labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz")[:55000]
    peak = matmul_peak()
    log(f"matmul peak: {peak:.1f} GFLOP/s on {torch.get_num_threads()} threads")
    out = {"matmul_peak_gflops": peak, "threads": torch.get_num_threads(), "models": {}}
    for name, kw in MODELS.items():
        p = Params.from_dict(kw, "bench")
        n_tut = 5000 if quick else (20000 if kw["model"] == "mlp" else 10000)
        tut = tutorial_epoch(build(p, 0, torch.device("cpu"), Shape()), images[:n_tut], labels[:n_tut])
        tut_ips = n_tut / tut
        model = build(p, 0, torch.device("cpu"), Shape())
        fit(model, subset(data.train, 2000), None, p, 0)  # warm-up
        train = subset(data.train, 11000) if quick else data.train
        runs = []
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            fit(model, train, None, p, 0)
            runs.append(time.perf_counter() - t)
        ours = statistics.median(runs)
        ours_ips = len(train) / ours
        flops = step_flops(build(p, 0, torch.device("cpu"), Shape()), 128) / 128 * len(train)
        gflops = flops / ours / 1e9
        out["models"][name] = {
            "tutorial_images_per_s": tut_ips, "ours_images_per_s": ours_ips, "speedup": ours_ips / tut_ips,
            "ours_epoch_s": 55000 / ours_ips, "tutorial_epoch_s": 55000 / tut_ips,
            "train_gflops": gflops, "fraction_of_peak": gflops / peak,
        }
        log(f"{name}: ours {55000 / ours_ips:.2f} s/epoch ({ours_ips:,.0f} img/s), tutorial "
            f"{55000 / tut_ips:.1f} s/epoch ({tut_ips:,.0f} img/s): {ours_ips / tut_ips:.1f}x; "
            f"{gflops:.1f} GFLOP/s = {gflops / peak:.0%} of the matmul peak")
    return out


CONV = {"LeNet-5": dict(model="lenet5", batch_size=128, epochs=1),
        "CNN": dict(model="cnn", batch_size=128, epochs=1, batch_norm=True)}


def bench_conv(quick: bool) -> dict:
    """Convolutional epochs on CPU: the tutorial pipeline, our loop in fp32, and our loop with
    the precision the measured rule picks (search/precision.py), in one run."""
    from search import precision

    data = load_dataset("mnist", MNIST, "cpu")
    images = read_idx(MNIST / "train-images-idx3-ubyte.gz")
    labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz")
    n = 2000 if quick else 10000
    train = subset(data.train, n)
    out = {"bf16_instructions": precision.cpu_has_bf16(), "images": n, "models": {}}
    for name, kw in CONV.items():
        p = Params.from_dict(kw, "bench")
        tut = n / tutorial_epoch(build(p, 0, torch.device("cpu"), Shape()), images[:n], labels[:n])
        chosen = precision.choose(build(p, 0, torch.device("cpu"), Shape()), train.images(slice(0, 128)), train.y[:128])
        row = {"tutorial_images_per_s": tut, "chosen": str(chosen)}
        for label, mode in (("fp32", precision.FP32), ("fast", chosen)):
            model = build(p, 0, torch.device("cpu"), Shape())
            with precision.forced(mode):
                fit(model, subset(data.train, 512), None, p, 0)  # warm-up
                t = time.perf_counter()
                fit(model, train, None, p, 0)
                row[f"{label}_images_per_s"] = n / (time.perf_counter() - t)
        row["fp32_speedup"] = row["fp32_images_per_s"] / tut
        row["fast_speedup"] = row["fast_images_per_s"] / tut
        row["fast_over_fp32"] = row["fast_images_per_s"] / row["fp32_images_per_s"]
        out["models"][name] = row
        log(f"conv {name}: tutorial {55000 / tut:.1f} s/epoch, fp32 {55000 / row['fp32_images_per_s']:.1f} s, "
            f"{chosen} {55000 / row['fast_images_per_s']:.1f} s ({row['fast_over_fp32']:.2f}x fp32, "
            f"{row['fast_speedup']:.1f}x the tutorial)")
    return out


# ---------------------------------------------------------------- 9. time to 99 % test, whole processes

FAST99 = ROOT / "configs" / "fast-99.yaml"
QUICK_FAST99 = {"dataset": "mnist", "seed": 0, "train_size": 5000,
                "params": {"model": "convnet", "iterations": 40, "batch_size": 128, "schedule": "onecycle",
                           "lr": 3e-3}}


def bench_fast99(quick: bool, target: float = 0.99) -> dict:
    """`search train --config configs/fast-99.yaml` against pytorch/examples' MNIST recipe
    (bench/examples_mnist.py), each a whole process from a cold start, side by side in one
    run: ours 3 times (median), the recipe once, stopped at its first epoch at >= 99 % test."""
    env = {**os.environ, "SEARCH_DATA_DIR": str(MNIST), "SEARCH_DEVICE": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        config = FAST99
        if quick:  # a smoke test: a few steps of a small config
            config = Path(tmp) / "quick.yaml"
            config.write_text(json.dumps(QUICK_FAST99))
        runs = []
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "--config", str(config), "--json"],
                               capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
            if r.returncode:
                raise SystemExit(f"search train failed: {r.stderr.strip()}")
            s = json.loads(r.stdout)
            runs.append({"seconds": wall, "test_accuracy": s["test_accuracy"], "train_seconds": s["train_seconds"]})
            log(f"fast99 ours: {wall:.2f} s whole process, test {s['test_accuracy']:.4f}")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "examples_mnist.py"), "--data-dir", str(MNIST),
                             "--target", str(target), *(["--epochs", "1", "--train-images", "2000"] if quick else [])],
                            stdout=subprocess.PIPE, text=True, env=env)
    epochs = []
    for line in proc.stdout:  # "epoch N test_accuracy A elapsed S", timed here as it arrives
        _, n, _, acc, _, own = line.split()
        epochs.append({"epoch": int(n), "test_accuracy": float(acc), "seconds": time.perf_counter() - t,
                       "own_elapsed": float(own)})
        log(f"fast99 recipe: epoch {n} test {acc} at {epochs[-1]['seconds']:.1f} s")
    proc.wait()
    reached = next((e for e in epochs if e["test_accuracy"] >= target), None)
    ours = statistics.median(r["seconds"] for r in runs)
    return {"target": target, "config": str(config.relative_to(ROOT)) if not quick else "quick", "ours": runs,
            "ours_median_s": ours, "ours_all_reach": all(r["test_accuracy"] >= target for r in runs),
            "recipe_epochs": epochs, "recipe_s": reached["seconds"] if reached else None,
            "speedup": reached["seconds"] / ours if reached else None}


# ---------------------------------------------------------------- 2. evaluation throughput


def bench_eval(quick: bool) -> dict:
    data = load_dataset("mnist", MNIST, "cpu")
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz")
    out = {}
    for name, kw in MODELS.items():
        model = build(Params.from_dict(kw, "bench"), 0, torch.device("cpu"), Shape())
        evaluate(model, data.test)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            evaluate(model, data.test)
            runs.append(time.perf_counter() - t)
        ours = 10000 / statistics.median(runs)
        loader = torch.utils.data.DataLoader(TutorialDataset(images, labels), batch_size=1000)
        t = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in loader:
                correct += (model(x).argmax(1) == y).sum().item()
        tut = 10000 / (time.perf_counter() - t)
        out[name] = {"ours_images_per_s": ours, "tutorial_images_per_s": tut, "speedup": ours / tut}
        log(f"eval {name}: {ours:,.0f} img/s vs tutorial loader {tut:,.0f} img/s ({ours / tut:.1f}x)")
    return out


# ---------------------------------------------------------------- 3. service overhead


def _null_fit(model, train, val, cfg, seed, on_epoch=None, transform=None, on_step=None):
    """Reports `cfg.epochs` epochs without training: what is left is the service's overhead."""
    from search.fit import EpochResult, FitResult
    from search.precision import FP32

    history = []
    for epoch in range(1, cfg.epochs + 1):
        r = EpochResult(epoch, 0.5, 100.0, 0.4, 0.9 + epoch / 100 + cfg.lr, 0.0)
        history.append(r)
        if on_epoch:
            on_epoch(r)
    return FitResult(history, FP32)


def _overhead_run(url: str, n: int) -> dict:
    import optuna

    from search.objective import Objective
    from search.spec import read_study_file
    from search.study import RunOptions, open_study, optimize

    spec = read_study_file(str(ROOT / "studies" / "quickstart.yaml"), overrides=["pruner=none"])
    study = open_study(spec, url, RunOptions())
    objective = Objective(spec, load_dataset("mnist", MNIST, "cpu"), torch.device("cpu"), fit_fn=_null_fit)
    stamps = [time.perf_counter()]
    optimize(study, objective, url, n, on_trial=lambda s, t: stamps.append(time.perf_counter()))
    per = np.diff(stamps) * 1000
    # plain Optuna on the same storage kind: same space, 5 reports, no user attributes
    from search.storage import open_storage

    plain_url = url.replace("overhead", "plain")  # a file beside ours; on PostgreSQL the same database
    plain = optuna.create_study(storage=open_storage(plain_url, heartbeat=None), study_name="plain",
                                direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8))

    def objective_plain(trial):
        from search.space import suggest_params

        params = suggest_params(trial, spec)
        for e in range(1, 6):
            trial.report(0.9 + e / 100, e)
        return 0.95 + params.lr

    pstamps = [time.perf_counter()]
    plain.optimize(objective_plain, n_trials=n, callbacks=[lambda s, t: pstamps.append(time.perf_counter())])
    pper = np.diff(pstamps) * 1000
    k = min(100, n // 5)
    return {"ms_first": float(np.mean(per[:k])), "ms_last": float(np.mean(per[-k:])),
            "plain_ms_first": float(np.mean(pper[:k])), "plain_ms_last": float(np.mean(pper[-k:])),
            "window": k, "n": n}


def bench_overhead(quick: bool) -> dict:
    n = 100 if quick else 500
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _overhead_run(f"sqlite:///{tmp}/overhead.db", n)
        out["journal file"] = _overhead_run(f"journal:{tmp}/overhead.log", n)
    from pg import Server, find_bin

    bindir = find_bin()
    if bindir:
        server = Server(bindir)
        try:
            server.init()
            server.start()
            server.create_db()
            out["postgresql"] = _overhead_run(server.url, n)
        finally:
            server.remove()
    for kind, r in out.items():
        log(f"overhead {kind}: {r['ms_first']:.1f} -> {r['ms_last']:.1f} ms/trial (trials 1-{r['window']} -> "
            f"last {r['window']} of {r['n']}); plain Optuna optimize {r['plain_ms_first']:.1f} -> "
            f"{r['plain_ms_last']:.1f}")
    return out


# ---------------------------------------------------------------- 4. search efficiency

SEARCH_SPACE = {
    "dataset": "mnist", "metric": "val_accuracy",
    "space": {"model": "mlp", "epochs": 10, "lr": {"low": 1e-4, "high": 1e-2}, "batch_size": [64, 128, 256],
              "hidden_size": {"low": 128, "high": 1024, "step": 128}, "n_layers": {"low": 1, "high": 2},
              "activation": ["relu", "tanh", "sigmoid"], "dropout": {"low": 0.0, "high": 0.3}},
}
METHODS = {
    "tpe+hyperband": {"sampler": {"name": "tpe", "n_startup_trials": 5},
                      "pruner": {"name": "hyperband", "min_resource": 1, "reduction_factor": 3}},
    "random, no pruning": {"sampler": "random", "pruner": "none"},
}


def _time_to_target(spec, target: float, limit_s: float) -> dict:
    """Run `spec` on a fresh SQLite file until a completed trial reaches `target`: wall
    seconds from the first trial (data loading and warm-up excluded) and trials used."""
    import optuna

    from search.objective import Objective
    from search.study import RunOptions, open_study, optimize

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/s.db"
        data = load_dataset("mnist", MNIST, "cpu")
        study = open_study(spec, url, RunOptions())
        objective = Objective(spec, data, torch.device("cpu"))
        start = time.perf_counter()
        hit: dict = {}

        def on_trial(st, t):
            if t.state == optuna.trial.TrialState.COMPLETE and t.value >= target and not hit:
                hit.update(seconds=time.perf_counter() - start, trials=t.number + 1, value=t.value)
                st.stop()

        optimize(study, objective, url, spec.n_trials, timeout=limit_s, on_trial=on_trial)
        return hit or {"seconds": None, "trials": len(study.trials), "value": None}


def bench_search(quick: bool, target: float = 0.98) -> dict:
    seeds = [0] if quick else [0, 1, 2]
    limit = 120 if quick else 360
    out = {"target": target, "limit_s": limit, "methods": {}}
    for name, method in METHODS.items():
        from search.spec import parse_study

        runs = [_time_to_target(parse_study({**SEARCH_SPACE, **method, "seed": seed, "n_trials": 1000},
                                            "bench-search.yaml"), target, limit) for seed in seeds]
        secs = [r["seconds"] if r["seconds"] is not None else float("inf") for r in runs]
        out["methods"][name] = {"runs": runs, "median_s": statistics.median(secs),
                                "median_trials": statistics.median(r["trials"] for r in runs)}
        log(f"search {name}: median {statistics.median(secs):.0f} s, "
            f"{statistics.median(r['trials'] for r in runs)} trials to {target:.1%} ({runs})")
    a, b = (out["methods"][m]["median_s"] for m in METHODS)
    out["speedup"] = b / a if a and a != float("inf") else None
    return out


# ---------------------------------------------------------------- 7. the default, live

LIVE_TRAIN_SIZE = 10_000  # the replay table's training-set size


def _live_run(args) -> dict:
    """One live run in its own process (one torch thread)."""
    method, seed, target, limit_s = args
    import optuna

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from search.spec import read_study_file

    sets = [f"seed={seed}", f"train_size={LIVE_TRAIN_SIZE}", "n_trials=100000"]
    sets += [f"{k}={json.dumps(v)}" for k, v in method.items()]
    return _time_to_target(read_study_file(str(ROOT / "studies" / "quickstart.yaml"), overrides=sets), target, limit_s)


def bench_live(quick: bool, target: float = 0.955) -> dict:
    """The default sampler + pruner (chosen by bench/replay.py) against random search
    without pruning, live on the quickstart space: wall time to `target` validation."""
    import multiprocessing

    from search.samplers import DEFAULT_PRUNER, DEFAULT_SAMPLER

    seeds = [0] if quick else [0, 1, 2, 3, 4]
    limit = 60 if quick else 150
    methods = {"default": {"sampler": DEFAULT_SAMPLER, "pruner": DEFAULT_PRUNER},
               "random, no pruning": {"sampler": {"name": "random"}, "pruner": {"name": "none"}}}
    jobs = [(m, seed, target, limit) for m in methods.values() for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(min(2, os.cpu_count() or 1)) as pool:
        results = pool.map(_live_run, jobs, chunksize=1)
    out = {"target": target, "limit_s": limit, "train_size": LIVE_TRAIN_SIZE, "methods": {}}
    for i, (name, method) in enumerate(methods.items()):
        runs = results[i * len(seeds):(i + 1) * len(seeds)]
        secs = [r["seconds"] if r["seconds"] is not None else float("inf") for r in runs]
        out["methods"][name] = {"config": method, "runs": runs, "median_s": statistics.median(secs),
                                "median_trials": statistics.median(r["trials"] for r in runs)}
        log(f"live {name}: median {statistics.median(secs):.0f} s to {target:.1%} ({runs})")
    a, b = (out["methods"][m]["median_s"] for m in methods)
    out["speedup"] = b / a if a and a != float("inf") and b != float("inf") else None
    return out


# ---------------------------------------------------------------- 5. workers


def bench_workers(quick: bool) -> dict:
    n = 8 if quick else 16
    out = {}
    study = ("n_trials: {n}\ntrain_size: 20000\nsampler: random\npruner: none\n"
             "space: {{epochs: 2, hidden_size: 256, lr: {{low: 1.0e-3, high: 1.0e-2}}}}\n").format(n=n)
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "w.yaml").write_text(study)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import cli; cli.main()", "run", "--study", f"{tmp}/w.yaml",
                            "--workers", str(workers), "--storage", f"sqlite:///{tmp}/w.db", "--data-dir",
                            str(MNIST), "--device", "cpu"], check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
            secs = time.perf_counter() - t
        out[workers] = {"seconds": secs, "trials_per_min": n / secs * 60}
        log(f"workers {workers}: {n} trials in {secs:.1f} s = {n / secs * 60:.1f} trials/min")
    out["speedup"] = out[2]["trials_per_min"] / out[1]["trials_per_min"]
    return out


# ---------------------------------------------------------------- report


# ---------------------------------------------------------------- 10. augmentation: ours against kornia

AUGMENTS = {  # what a study's axes ask for -> the same transform in kornia.augmentation
    "affine (rotation 15, shift 2 px, zoom 0.1)": {"rotation": 15.0, "shift": 2.0, "scale": 0.1},
    "blur (sigma 0..1)": {"blur_sigma": 1.0},
    "hflip": {"hflip": True},
    "all of them": {"rotation": 15.0, "shift": 2.0, "scale": 0.1, "blur_sigma": 1.0, "hflip": True},
}


def _kornia_pipeline(cfg: dict):
    import kornia.augmentation as K

    ops = []
    if cfg.get("hflip"):
        ops.append(K.RandomHorizontalFlip(p=0.5))
    if cfg.get("rotation") or cfg.get("shift") or cfg.get("scale"):
        t, z = cfg.get("shift", 0.0) / 28, cfg.get("scale", 0.0)
        ops.append(K.RandomAffine(degrees=cfg.get("rotation", 0.0), translate=(t, t) if t else None,
                                  scale=(1 - z, 1 + z) if z else None, padding_mode="zeros", p=1.0))
    if cfg.get("blur_sigma"):
        ops.append(K.RandomGaussianBlur(kernel_size=(7, 7), sigma=(1e-3, cfg["blur_sigma"]), p=1.0))
    return K.AugmentationSequential(*ops)


def bench_augment(quick: bool) -> dict:
    """Per-sample augmentation of normalised MNIST batches on this CPU: search/augment.py
    against kornia.augmentation doing the same transforms (both shift the background to 0 so
    that zero padding is black), batches per second, interleaved so that drift hits both."""
    import kornia

    from search.augment import BACKGROUND, Augment
    from search.fit import TrainConfig

    data = load_dataset("mnist", MNIST, "cpu")
    reps = 20 if quick else 200
    from search.precision import cpu_has_bf16

    out: dict = {"kornia": kornia.__version__, "threads": torch.get_num_threads(), "bf16_instructions": cpu_has_bf16(),
                 "rows": {}}
    for batch in (128, 512):
        x = data.train.images(slice(0, batch))
        for name, cfg in AUGMENTS.items():
            off = {"rotation": 0.0, "shift": 0.0, "scale": 0.0, "blur_sigma": 0.0, "hflip": False}
            ours = Augment(TrainConfig(**{**off, **cfg}), torch.Generator().manual_seed(0))
            theirs = _kornia_pipeline(cfg)
            runs = {"ours": ours, "kornia": lambda b, k=theirs: k(b - BACKGROUND) + BACKGROUND}
            assert all(fn(x).shape == x.shape for fn in runs.values())
            times: dict[str, list[float]] = {"ours": [], "kornia": []}
            for _ in range(reps):
                for label, fn in runs.items():
                    t = time.perf_counter()
                    fn(x)
                    times[label].append(time.perf_counter() - t)
            row = {k: batch / statistics.median(v) for k, v in times.items()}
            row["ours_over_kornia"] = row["ours"] / row["kornia"]
            out["rows"][f"{name}, batch {batch}"] = row
            log(f"augment {name}, batch {batch}: ours {row['ours']:,.0f} img/s, kornia {row['kornia']:,.0f} img/s "
                f"({row['ours_over_kornia']:.1f}x)")
    return out


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


SECTIONS = {"epoch": bench_epoch, "eval": bench_eval, "overhead": bench_overhead, "search": bench_search,
            "workers": bench_workers, "live": bench_live, "conv": bench_conv, "fast99": bench_fast99,
            "augment": bench_augment}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test, not figures to report)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--results", type=Path, default=RESULTS, help="JSON with every figure (merged across runs)")
    ap.add_argument("--json", action="store_true", help="print this run's figures as one JSON object on stdout")
    args = ap.parse_args()
    sections = choose("bench", "--only", args.only, SECTIONS)  # checked before anything runs
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    if set(sections) == set(SECTIONS) or "machine" not in results:
        results["machine"] = machine()  # the header's machine: that of the last whole run
    for name in sections:
        log(f"== {name}")
        results[name] = SECTIONS[name](args.quick)
        results[name]["quick"] = args.quick
        results.setdefault("machines", {})[name] = machine()  # where and when each section was last run
        args.results.write_text(json.dumps(results, indent=2))
    from render import render

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results))
    log(f"wrote {args.out} and {args.results}")
    if args.json:
        emit_json({"machine": results["machine"], **{name: results[name] for name in sections}})


if __name__ == "__main__":
    guarded("bench", main)
