"""bench/results.json -> docs/benchmarks.md."""

from __future__ import annotations


def _f(x, spec=".1f", none="-"):
    return none if x is None or x == float("inf") else format(x, spec)


def render(r: dict) -> str:
    m = r.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Measured by `python bench/bench.py` (one command; `--only SECTION`, `--quick`). Every",
        "figure that matters is a ratio against a plain baseline measured in the same run on the",
        "same machine; absolute times are for orientation. No timed assertion lives in the tests.",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, Python {m.get('python')}"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + f"; run on {m.get('date')}.",
        "",
    ]
    targets = []
    if "epoch" in r:
        e = r["epoch"]
        lines += ["## 1. Epoch throughput (55,000 training images, batch 128, Adam)", "",
                  "Baseline: the common tutorial pipeline - a per-sample Dataset that turns each digit into a",
                  "PIL image and then a normalised tensor, a shuffling DataLoader, Adam, `loss.item()` per step.",
                  "Ours: `search.train.fit` - resident normalised tensors, index batches, one host sync per epoch.",
                  "",
                  f"Matrix-multiply peak of this machine: **{e['matmul_peak_gflops']:.0f} GFLOP/s** "
                  f"(float32, {e['threads']} threads).", "",
                  "| model | tutorial s/epoch | ours s/epoch | speed-up | ours GFLOP/s | of matmul peak |",
                  "|---|---|---|---|---|---|"]
        for name, x in e["models"].items():
            lines.append(f"| {name} | {x['tutorial_epoch_s']:.1f} | {x['ours_epoch_s']:.2f} | "
                         f"**{x['speedup']:.1f}x** | {x['train_gflops']:.1f} | {x['fraction_of_peak']:.0%} |")
        mlp, lenet = e["models"].get("MLP 784-100-10"), e["models"].get("LeNet-5")
        if mlp:
            targets.append(("MLP epoch >= 15x the tutorial pipeline", f"{mlp['speedup']:.1f}x", mlp["speedup"] >= 15))
            bound = 1 / mlp["fraction_of_peak"]
            targets.append(("MLP step within 3x of the matmul bound", f"{bound:.1f}x the bound", bound <= 3))
        if lenet:
            targets.append(("LeNet-5 epoch >= 5x the tutorial pipeline", f"{lenet['speedup']:.1f}x",
                            lenet["speedup"] >= 5))
        lines.append("")
    if "eval" in r:
        lines += ["## 2. Evaluation throughput (10,000 test images)", "",
                  "| model | tutorial loader (batch 1000, no_grad) img/s | ours (`evaluate`, 4096, inference_mode) "
                  "img/s | speed-up |", "|---|---|---|---|"]
        for name, x in r["eval"].items():
            if isinstance(x, dict):
                lines.append(f"| {name} | {x['tutorial_images_per_s']:,.0f} | {x['ours_images_per_s']:,.0f} | "
                             f"{x['speedup']:.1f}x |")
        lines.append("")
    if "overhead" in r:
        lines += ["## 3. Service overhead per trial (objective does nothing)", "",
                  "A quickstart-space study whose fit reports 5 epochs without training: what remains is",
                  "storage + sampler (TPE, multivariate) + our loop (study lock, budget check, heartbeats,",
                  "user attributes). Baseline: plain `study.optimize` on the same kind of storage, same",
                  "space, 5 reports, no user attributes.", "",
                  "| storage | ours: first trials ms | ours: last trials ms | plain Optuna: first | plain: last |",
                  "|---|---|---|---|---|"]
        for kind, x in r["overhead"].items():
            if isinstance(x, dict):
                lines.append(f"| {kind} (trials 1-{x['window']} / last {x['window']} of {x['n']}) | "
                             f"{x['ms_first']:.1f} | **{x['ms_last']:.1f}** | {x['plain_ms_first']:.1f} | "
                             f"{x['plain_ms_last']:.1f} |")
        sq = r["overhead"].get("sqlite")
        if sq:
            targets.append((f"overhead < 30 ms per trial at {sq['n']} trials on SQLite", f"{sq['ms_last']:.1f} ms",
                            sq["ms_last"] < 30))
        lines.append("")
    if "search" in r:
        s = r["search"]
        lines += [f"## 4. Search efficiency: time to {s['target']:.0%} validation accuracy", "",
                  "MLP space: lr 1e-4..1e-2 (log), batch {64, 128, 256}, hidden 128..1024, 1-2 layers,",
                  "relu/tanh/sigmoid, dropout 0-0.3, 10 epochs; full 55,000-image training split; "
                  f"each run capped at {s['limit_s']} s.", "",
                  "| method | median wall time | median trials | runs (s, trials) |", "|---|---|---|---|"]
        for name, x in s["methods"].items():
            runs = ", ".join(f"({_f(u['seconds'], '.0f', 'not reached')}, {u['trials']})" for u in x["runs"])
            lines.append(f"| {name} | {_f(x['median_s'], '.0f', 'not reached')} s | {x['median_trials']} | {runs} |")
        if s.get("speedup"):
            lines += ["", f"TPE + Hyperband reaches the target **{s['speedup']:.1f}x** faster (median wall time)."]
            targets.append(("TPE + Hyperband >= 3x faster than random without pruning", f"{s['speedup']:.1f}x",
                            s["speedup"] >= 3))
        lines.append("")
    if "workers" in r:
        w = r["workers"]
        lines += ["## 5. Workers on this machine", "",
                  "| workers | trials/min | wall s |", "|---|---|---|"]
        for k in ("1", "2"):
            if k in w:
                lines.append(f"| {k} | {w[k]['trials_per_min']:.1f} | {w[k]['seconds']:.1f} |")
        lines += ["", f"2 workers / 1 worker: **{w['speedup']:.2f}x** trials per minute (the torch threads are "
                  "split between them; short trials gain from overlapping storage and evaluation with training).",
                  ""]
    if targets:
        lines += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t} | {v} | {'yes' if ok else '**no**'} |" for t, v, ok in targets]
        lines.append("")
    quick = [k for k, v in r.items() if isinstance(v, dict) and v.get("quick")]
    if quick:
        lines += [f"Sections run with `--quick` (smaller, not for reporting): {', '.join(quick)}.", ""]
    return "\n".join(lines)
