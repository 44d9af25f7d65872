"""The best config retrained once -> test accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

from search.config import best_job
from search.report._plots import plt, save
from search.report._render import Block, Image, Para, Table
from search.report._stats import fmt
from search.trained import retrain


def evaluation(study: optuna.Study, out: Path, device: str, data_dir: str | None,
               on_step=None) -> tuple[list[Block], list[Path], dict]:
    """The best config retrained: its blocks for the report, its files, and its summary
    (test accuracy and loss, seconds, ...: `search train --json`'s)."""
    job = best_job(study)
    result = retrain(job, device=device, data_dir=data_dir, on_step=on_step)
    y = result.data.test.y.cpu().numpy()
    pred = result.test_pred.cpu().numpy()
    names = list(result.data.class_names)
    k = len(names)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, pred), 1)
    s = result.summary
    per_class = Table(["class", "test images", "accuracy"],
                      [[names[i], str(cm[i].sum()), f"{cm[i, i] / max(cm[i].sum(), 1):.4f}"] for i in range(k)])
    off = [(cm[i, j], i, j) for i in range(k) for j in range(k) if i != j and cm[i, j]]
    pairs = Table(["true", "predicted as", "count"],
                  [[names[i], names[j], str(n)] for n, i, j in sorted(off, reverse=True)[:5]])
    plot_confusion(cm, names, out / "confusion.png")
    blocks: list[Block] = [
        Para([(f"Retrained trial #{job.source.get('trial')} from scratch (seed {job.seed}, {s['train_images']} "
               f"training images, {s['epochs']} epochs, {s['train_seconds']:.1f} s on {s['device']}): validation "
               f"accuracy {fmt(s['val_accuracy'])}, ", False),
              (f"test accuracy {s['test_accuracy']:.4f}", True), (f", test loss {s['test_loss']:.4f}.", False)]),
        per_class,
        "Most-confused pairs:",
        pairs,
        Image(out / "confusion.png", "Confusion matrix on the test set (rows: true class)"),
    ]
    return blocks, [out / "confusion.png"], s


def plot_confusion(cm: np.ndarray, names: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = np.log1p(cm)
    ax.imshow(shown, cmap="Blues")
    k = len(names)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > shown.max() * 0.6 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.grid(False)  # no lines through the counts
    save(fig, path)
