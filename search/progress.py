"""Trials and fit steps -> what a person sees: live bars on a terminal (or a notebook), plain
lines elsewhere, trial lines that fit the width. Used by cli.py and `search.run`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["RunView", "bars", "best_text", "epoch_text", "fit_bar", "fit_text", "short_params", "spinner",
           "trial_line", "values_text"]


def epoch_text(last) -> str:
    """'  loss 0.3124  val 0.9612' for the last finished epoch ('' before the first; no val
    without a validation split)."""
    if last is None:
        return ""
    return f"  loss {last.train_loss:.4g}" + ("" if last.val_accuracy != last.val_accuracy else
                                               f"  val {last.val_accuracy:.4f}")


def bars(out: Console) -> Progress:
    """Live bars in the terminal's width: what is going on, the bar, steps done of all, ETA."""
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=None), MofNCompleteColumn(),
                    TimeRemainingColumn(compact=True), console=out, transient=True, expand=True)


@contextlib.contextmanager
def fit_bar(out: Console, what: str, show: bool = True) -> Iterator[Any]:
    """A progress bar for one fit (`search train`, `report --evaluate`): its epoch, last loss and
    accuracy, steps and ETA, on a terminal; an `on_step` for the fit loop (None: nothing shown)."""
    if not (show and out.is_terminal):
        yield None
        return
    progress = bars(out)
    task = None
    last = 0

    def on_step(s) -> None:
        nonlocal task, last
        text = f"{what}: epoch {s.epoch}/{s.epochs}{epoch_text(s.last)}"
        if task is None or s.step <= last:  # the first fit, or the next one (an ensemble's members)
            task = progress.add_task(text, total=s.steps)
        last = s.step
        progress.update(task, completed=s.step, description=text)

    with progress:
        yield on_step


@contextlib.contextmanager
def spinner(out: Console, what: str, show: bool = True) -> Iterator[None]:
    """A spinner on a terminal while something without steps runs (an ONNX export)."""
    if not (show and out.is_terminal):
        yield
        return
    with out.status(what):
        yield


class RunView:
    """What `search run` (and `search.run`) shows while it trains: on a terminal, a live study bar and a bar for
    the trial in progress (its epoch, last loss and accuracy, ETA), redrawn in place, with a
    line above them per finished trial; elsewhere (a pipe, a log) plain lines: one per epoch
    of a trial, one per trial."""

    def __init__(self, out: Console, show: bool = True, epochs: bool = False) -> None:
        self.out = out
        self.show = show  # False: --quiet or --json, nothing but the summary
        self.epochs = epochs  # --verbose: a line per epoch on a terminal too
        self.live = show and out.is_terminal
        self.progress = bars(out)
        self.study_task: Any = None
        self.trial_task: Any = None
        self.at: tuple[int, int] = (-1, 0)  # (trial number, epoch) last shown

    def start(self, remaining: int) -> None:
        if remaining and self.live:
            self.progress.start()
            self.study_task = self.progress.add_task("trials", total=remaining)

    def step(self, number: int, s) -> None:
        if not self.show:
            return
        if (number, s.epoch) != self.at:
            last = epoch_text(s.last)
            if self.live:
                text = f"  #{number} epoch {s.epoch}/{s.epochs}{last}"
                if self.trial_task is None:
                    self.trial_task = self.progress.add_task(text, total=s.steps)
                elif number != self.at[0]:
                    self.progress.reset(self.trial_task, total=s.steps, description=text)
                else:
                    self.progress.update(self.trial_task, description=text)
            if s.last is not None and (self.epochs or not self.live):
                self.progress.console.print(f"  #{number} epoch {s.last.epoch}/{s.epochs}{last}  "
                                            f"{s.last.seconds:.1f}s", markup=False, soft_wrap=True)
            self.at = (number, s.epoch)
        if self.live:
            self.progress.update(self.trial_task, completed=s.step)

    def finished(self, line: str) -> None:
        if self.show:
            self.out.print(line, soft_wrap=True)
        if self.study_task is not None:
            self.progress.advance(self.study_task)

    def stop(self) -> None:
        self.progress.stop()


def best_text(value: float | None, number: int | None) -> str:
    """'best 0.9712 #4', or 'no best' before the first complete trial."""
    return "no best" if value is None else f"best {value:.4f} #{number}"


def values_text(names, values) -> str:
    """'val_accuracy 0.9712 train_seconds 41.2': each metric with its value."""
    return " ".join(f"{n} {v:.4g}" for n, v in zip(names, values, strict=False))


def trial_line(trial, goal, best: str, width: int = 80) -> str:
    """One finished trial in `width` columns: its state, value, seconds, the best so far
    (`best`), and as many of its sampled parameters as fit (`search show` has them all)."""
    from search import fail_reason, feasible, last_value, trial_seconds

    state = trial.state.name
    color = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}.get(state, "white")
    if state == "COMPLETE":
        what = (f"{trial.values[0]:.4f}" if len(trial.values) == 1 else values_text(goal.metrics, trial.values))
        what += "" if feasible(trial) else " (misses a bound)"
    elif state == "PRUNED":
        last = last_value(trial)
        what = f"epoch {len(trial.intermediate_values)} {'-' if last is None else f'{last:.4f}'}"
    else:
        what = fail_reason(trial) or "failed"
    number = f"#{trial.number:<3} "
    rest = fit_text(f"{what}  {trial_seconds(trial):.1f}s  {best}", width - len(number) - 9)
    params = fit_text(short_params(trial.params), width - len(number) - 9 - len(rest) - 2)
    return (f"{number}[{color}]{state:<8}[/] {escape(rest)}" + (f"  {escape(params)}" if params else ""))


def fit_text(text: str, room: int) -> str:
    """`text` cut to `room` characters at a space, '…' marking the cut ('' when nothing fits)."""
    if len(text) <= room:
        return text
    cut = text[:max(room - 1, 0)].rsplit(" ", 1)[0]
    return cut + "…" if room >= 8 else ""


def short_params(params: dict[str, Any]) -> str:
    """'lr=0.00312 batch_size=64': the sampled parameters, 3 significant digits."""
    from search import fmt

    return " ".join(f"{k}={fmt(v, 3)}" for k, v in params.items())
