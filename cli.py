"""`search`: the command line. Parses flags, calls the library in search/, prints with rich."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Hyperparameter search for MNIST-style image classifiers, on Optuna.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)

StorageOpt = typer.Option(None, "--storage", envvar="SEARCH_STORAGE", show_envvar=True,
                          help="Optuna RDB storage URL [default: sqlite:///search.db in the working directory].")
DataDirOpt = typer.Option(None, "--data-dir", envvar="SEARCH_DATA_DIR", show_envvar=True,
                          help="Folder with the four IDX files [default: user cache, system dirs, then download].")
DeviceOpt = typer.Option("auto", "--device", envvar="SEARCH_DEVICE", show_envvar=True,
                         help="auto, cpu, cuda, cuda:N or mps.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Input mistakes end as one line on stderr and exit code 2; interrupts as 130/143."""
    from search.errors import SearchError
    from search.study import Terminated

    try:
        yield
    except SearchError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(getattr(e, "exit_code", 2)) from None
    except Terminated:
        err.print("terminated: finished trials are stored; run the same command again to resume")
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        err.print("interrupted: finished trials are stored; run the same command again to resume")
        raise typer.Exit(130) from None


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _study_name(study: str) -> str:
    """`show`/`export` accept a stored study's name or its study file."""
    if study.endswith((".yaml", ".yml")):
        from search.spec import load_study

        return load_study(study).name
    return study


@app.command()
def run(
    study: str = typer.Option(..., "--study", help="Study name (studies/NAME.yaml) or path to a study file."),
    n_trials: Optional[int] = typer.Option(None, "--n-trials", min=1,
                                           help="Total finished trials the study should hold [default: the file's]."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.0,
                                            help="Stop starting trials after this many seconds."),
    device: str = DeviceOpt,
    storage: Optional[str] = StorageOpt,
    data_dir: Optional[str] = DataDirOpt,
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Study seed [default: the file's]."),
    workers: int = typer.Option(1, "--workers", min=1, max=256,
                                help="Worker processes on this machine sharing the study (and the CPU threads)."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help="Override a study key or fix an axis, e.g. --set epochs=1 "
                                                       "--set train_size=2000 (repeatable; checked like the file)."),
    heartbeat: int = typer.Option(10, "--heartbeat", min=0, envvar="SEARCH_HEARTBEAT",
                                  help="Seconds between trial heartbeats (RDB storages); a trial silent for 3 "
                                       "intervals is failed and retried with the same parameters. 0: off."),
) -> None:
    """Run (or resume) a study: train trials, prune bad ones, store every trial."""
    from search.spec import load_study
    from search.storage import mask_url, storage_url
    from search.study import run_study

    _quiet_optuna()
    with _user_errors():
        spec = load_study(study, overrides=overrides)
        url = storage_url(storage)
        if workers > 1:
            _run_workers(spec, url, workers, device=device, data_dir=data_dir, n_trials=n_trials, timeout=timeout,
                         seed=seed, heartbeat=heartbeat)
            return
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=out, transient=True)
        task = None

        def on_start(st, remaining: int) -> None:
            nonlocal task
            out.print(f"study [bold]{spec.name}[/] in {mask_url(url)}: {len(st.trials)} trials stored, "
                      f"{remaining} to run", highlight=False)
            if remaining:
                progress.start()
                task = progress.add_task("trials", total=remaining)

        def on_trial(st, trial) -> None:
            out.print(_trial_line(st, trial, spec.metric), highlight=False)
            if task is not None:
                progress.advance(task)

        try:
            result = run_study(spec, url, device=device, data_dir=data_dir, n_trials=n_trials, timeout=timeout,
                               seed=seed, heartbeat=heartbeat, on_trial=on_trial, on_start=on_start)
        finally:
            progress.stop()
        _print_summary(result.study, result.ran, result.seconds)


def _run_workers(spec, url: str, workers: int, **kwargs) -> None:
    from rich.live import Live

    from search.storage import mask_url
    from search.workers import run_workers, threads_per_worker

    out.print(f"study [bold]{spec.name}[/] in {mask_url(url)}: {workers} workers, "
              f"{threads_per_worker(workers)} torch thread(s) each", highlight=False)
    with Live(console=out, refresh_per_second=4, transient=False) as live:
        result = run_workers(spec, url, workers, on_poll=lambda f: live.update(_progress_view(f)), **kwargs)
    codes = result.exit_codes
    dead = [f"worker {i} ({_exit_reason(c)})" for i, c in enumerate(codes) if c != 0]
    if dead:
        err.print("warning: " + ", ".join(dead) + "; trials they left were failed and queued again", highlight=False)
    facts = result.facts
    s = facts["states"]
    out.print(f"study holds {facts['n_trials']} trials: {s['COMPLETE']} complete, {s['PRUNED']} pruned, "
              f"{s['FAIL']} failed; {facts['done']}/{facts['budget']} of the budget done in "
              f"{result.seconds:.0f}s", highlight=False)
    if facts["done"] < facts["budget"] and any(c not in (0, None) for c in codes):
        raise typer.Exit(1)


def _exit_reason(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _progress_view(f: dict[str, Any]) -> Table:
    s = f["states"]
    table = Table(show_header=True, box=None)
    for col in ("done", "complete", "pruned", "failed", "running", "best", "elapsed", "ETA", "workers"):
        table.add_column(col)
    best = "-" if f["best_value"] is None else f"{f['best_value']:.4f} (#{f['best_trial']})"
    eta = "-" if f["eta"] is None else f"{f['eta']:.0f}s"
    table.add_row(f"{f['done']}/{f['budget']}", str(s["COMPLETE"]), str(s["PRUNED"]), str(s["FAIL"]),
                  str(s["RUNNING"]), best, f"{f['elapsed']:.0f}s", eta, f"{f['workers_alive']}/{f['workers']}")
    return table


def _trial_line(study, trial, metric: str) -> str:
    state = trial.state.name
    color = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}.get(state, "white")
    epochs = len(trial.intermediate_values)
    if state == "COMPLETE":
        what = f"{metric} {trial.value:.4f}"
    elif state == "PRUNED":
        last = trial.intermediate_values[max(trial.intermediate_values)] if epochs else float("nan")
        what = f"at epoch {epochs}, {metric} {last:.4f}"
    else:
        what = trial.user_attrs.get("fail_reason", "failed")
    from search.study import best_or_none

    top = best_or_none(study)
    best = f"best {top.value:.4f} (#{top.number})" if top else "no best yet"
    secs = sum(trial.user_attrs.get("epoch_seconds", []))
    return f"#{trial.number:<3} [{color}]{state:<8}[/] {what}  {secs:5.1f}s  {best}  {_short_params(trial.params)}"


def _short_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _print_summary(study, ran: int, seconds: float) -> None:
    from search.study import study_facts

    facts = study_facts(study)
    s = facts["states"]
    out.print(f"ran {ran} trials in {seconds:.0f}s; study holds {facts['n_trials']}: {s['COMPLETE']} complete, "
              f"{s['PRUNED']} pruned, {s['FAIL']} failed", highlight=False)
    if facts["best_value"] is not None:
        out.print(f"best: trial #{facts['best_trial']} {facts['metric']} {facts['best_value']:.4f}", highlight=False)


@app.command()
def studies(storage: Optional[str] = StorageOpt, as_json: bool = JsonOpt) -> None:
    """List every study in the storage: trials by state and best value."""
    from search.storage import storage_url
    from search.study import all_studies

    with _user_errors():
        rows = all_studies(storage_url(storage))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="studies")
    for col in ("study", "dataset", "metric", "trials", "complete", "pruned", "failed", "running", "best"):
        table.add_column(col, justify="right" if col not in ("study", "dataset", "metric") else "left")
    for r in rows:
        s = r["states"]
        best = "-" if r["best_value"] is None else f"{r['best_value']:.4f} (#{r['best_trial']})"
        table.add_row(r["study"], str(r["dataset"]), str(r["metric"]), str(r["n_trials"]), str(s["COMPLETE"]),
                      str(s["PRUNED"]), str(s["FAIL"]), str(s["RUNNING"]), best)
    out.print(table)


@app.command()
def show(
    study: str = typer.Option(..., "--study", help="Stored study name (or its study file)."),
    storage: Optional[str] = StorageOpt,
    top: int = typer.Option(0, "--top", min=0, help="Only the N best trials (0: all)."),
    as_json: bool = JsonOpt,
) -> None:
    """Trials table, best trial and its parameters."""
    from search.objective import merged_config
    from search.storage import storage_url
    from search.study import load_stored_study, study_facts

    with _user_errors():
        st = load_stored_study(_study_name(study), storage_url(storage))
        facts = study_facts(st)
    trials = st.get_trials(deepcopy=False)
    if top:
        done = [t for t in trials if t.value is not None]
        done.sort(key=lambda t: t.value, reverse=facts["direction"] == "maximize")
        trials = done[:top]
    rows = [{"number": t.number, "state": t.state.name, "value": t.value,
             "epochs": len(t.intermediate_values), "seconds": round(sum(t.user_attrs.get("epoch_seconds", [])), 2),
             "params": t.params, "fail_reason": t.user_attrs.get("fail_reason")} for t in trials]
    best = st.best_trial if facts["best_trial"] is not None else None
    if as_json:
        facts["trials"] = rows
        facts["best_params"] = merged_config(best) if best else None
        print(json.dumps(facts, indent=2, default=str))
        return
    names = sorted({k for r in rows for k in r["params"]})
    table = Table(title=f"study {st.study_name}: {facts['n_trials']} trials")
    for col in ("#", "state", facts["metric"] or "value", "epochs", "s", *names):
        table.add_column(col)
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        style = "bold green" if best and r["number"] == best.number else None
        table.add_row(str(r["number"]), r["state"], value, str(r["epochs"]), f"{r['seconds']:.1f}",
                      *[_fmt(r["params"].get(n)) for n in names], style=style)
    out.print(table)
    if best:
        out.print(f"best trial #{best.number}: {facts['metric']} {best.value:.4f}", highlight=False)
        out.print(_short_params(merged_config(best)), highlight=False)


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command()
def export(
    study: str = typer.Option(..., "--study", help="Stored study name (or its study file)."),
    out_path: Path = typer.Option(Path("best.yaml"), "--out", help="Config file to write."),
    trial: Optional[int] = typer.Option(None, "--trial", min=0, help="Export this completed trial [default: the best]."),
    storage: Optional[str] = StorageOpt,
) -> None:
    """Write the best (or a chosen) trial's parameters to a self-contained config file."""
    from search.export import best_config, write_config
    from search.storage import storage_url
    from search.study import load_stored_study

    with _user_errors():
        st = load_stored_study(_study_name(study), storage_url(storage))
        config = best_config(st, trial)
        write_config(config, out_path)
    src = config["source"]
    out.print(f"wrote {out_path}: trial #{src['trial']} of {src['study']}, {src['metric']} {src['value']:.4f}",
              highlight=False)


@app.command()
def train(
    config: Path = typer.Option(..., "--config", help="Config file written by `search export`."),
    device: str = DeviceOpt,
    data_dir: Optional[str] = DataDirOpt,
    full: bool = typer.Option(False, "--full", help="Train on all 60,000 training images (no validation)."),
    save: Optional[Path] = typer.Option(None, "--save", help="Save the trained weights here (e.g. model.pt)."),
    as_json: bool = JsonOpt,
) -> None:
    """Retrain a config from scratch and evaluate it once on the test set."""
    from search.export import load_config, retrain, save_weights

    with _user_errors():
        job = load_config(config)
        if save is not None and not save.parent.is_dir():
            from search.errors import SearchError

            raise SearchError(f"cannot write {save}: directory {save.parent} does not exist")
        if as_json:
            result = retrain(job, device=device, data_dir=data_dir, full=full)
        else:
            with out.status("training...") as status:
                def on_epoch(r) -> None:
                    status.update(f"epoch {r.epoch}: train loss {r.train_loss:.4f}, val acc {r.val_accuracy:.4f}")
                result = retrain(job, device=device, data_dir=data_dir, full=full, on_epoch=on_epoch)
        if save is not None:
            save_weights(result, job, save)
    s = result.summary
    if as_json:
        print(json.dumps({**s, "saved": str(save) if save else None}, indent=2))
        return
    table = Table(title=f"{s['model']} on {s['dataset']}", show_header=False)
    for key in ("train_images", "epochs", "train_loss", "val_accuracy", "test_accuracy", "test_loss",
                "train_seconds", "device", "seed"):
        if s[key] is not None:
            table.add_row(key, _fmt(s[key]))
    if s["source"]:
        table.add_row("from", f"{s['source'].get('study')} trial #{s['source'].get('trial')} "
                              f"({s['source'].get('metric')} {_fmt(s['source'].get('value'))})")
    if save:
        table.add_row("saved", str(save))
    out.print(table)


@app.command()
def report(
    study: str = typer.Option(..., "--study", help="Stored study name (or its study file)."),
    out_dir: Path = typer.Option(Path("report"), "--out", help="Directory for report.md, report.html and PNGs."),
    evaluate: bool = typer.Option(False, "--evaluate",
                                  help="Retrain the best config and add test accuracy, per-class accuracy "
                                       "and a confusion matrix."),
    storage: Optional[str] = StorageOpt,
    device: str = DeviceOpt,
    data_dir: Optional[str] = DataDirOpt,
) -> None:
    """Write the experiment report: tables, plots, what each axis did, a confusion matrix."""
    from search.report import write_report
    from search.storage import storage_url
    from search.study import load_stored_study

    _quiet_optuna()
    with _user_errors():
        st = load_stored_study(_study_name(study), storage_url(storage))
        if out_dir.exists() and not out_dir.is_dir():
            from search.errors import SearchError

            raise SearchError(f"--out {out_dir} is a file, not a directory")
        with out.status("writing the report" + (" (retraining the best config)" if evaluate else "")):
            result = write_report(st, out_dir, evaluate=evaluate, device=device, data_dir=data_dir)
    out.print(f"wrote {out_dir / 'report.md'}, {out_dir / 'report.html'} and "
              f"{sum(p.suffix == '.png' for p in result.files)} plots", highlight=False)


@app.command()
def dashboard(
    storage: Optional[str] = StorageOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
) -> None:
    """Serve optuna-dashboard for the storage."""
    from search.dashboard import serve
    from search.storage import mask_url, storage_url

    with _user_errors():
        url = storage_url(storage)
        if host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"warning: serving on {host} exposes every study to the network; the dashboard has "
                      "no authentication", highlight=False)
        out.print(f"optuna-dashboard for {mask_url(url)} on http://{host}:{port}/ (Ctrl-C stops)", highlight=False)
        serve(url, host, port)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
