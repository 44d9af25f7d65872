"""`search`: the command line. Parses flags, calls one library function in search/, prints with rich."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from search import HEARTBEAT_S, RunView, best_text, fit_bar, fit_text, spinner, trial_line, values_text

app = typer.Typer(
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # help text is plain: '[default: ...]' must not be read as markup
)
# User text (study names, file contents in errors) is printed as is: no markup, no :emoji: codes.
out = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

StudyOpt = Annotated[str, typer.Option("--study", metavar="NAME", help="Stored study name (or its study file).")]
StorageOpt = Annotated[Optional[str], typer.Option(
    "--storage", metavar="URL", envvar="SEARCH_STORAGE", show_default="sqlite:///search.db in the working directory",
    help="Optuna storage URL: sqlite:///FILE, postgresql+psycopg://..., journal:FILE.")]
DataDirOpt = Annotated[Optional[str], typer.Option(
    "--data-dir", metavar="DIR", envvar="SEARCH_DATA_DIR", show_default="user cache, system dirs, then a download",
    help="Folder with the four IDX files (or one folder per dataset).")]
InputOpt = Annotated[str, typer.Option(
    "--input", metavar="KIND", help="What an ONNX model takes: uint8 (0..255) or float (0..1). TorchScript takes "
                                    "either.")]
DeviceOpt = Annotated[str, typer.Option("--device", metavar="DEVICE", envvar="SEARCH_DEVICE", help="auto, cpu, cuda, cuda:N or mps.")]
ArtifactsOpt = Annotated[Optional[str], typer.Option(
    "--artifacts", metavar="DIR", envvar="SEARCH_ARTIFACTS", show_default="beside a SQLite or journal file; none for a server",
    help="Folder for checkpoints and report images (a shared path for a PostgreSQL study).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


@contextlib.contextmanager
def _errors(url: str | None = None, *, stops: bool = True) -> Iterator[None]:
    """Input mistakes end as one line on stderr with the error's exit code; interrupts as 130/143
    (SIGTERM and SIGHUP too, with `stops`: a killed report or export would leave its hidden
    work folder); what the library mended on the way (a journal's broken last line) is one
    warning line."""
    from search import Notice, SearchError, Terminated, exit_code, ignore_stopping, sigterm_as_interrupt, storage_errors

    try:
        with storage_errors(url or "the storage"), warnings.catch_warnings(), (  # a storage fault no library call
                sigterm_as_interrupt() if stops else contextlib.nullcontext()):
            warnings.simplefilter("always", Notice)  # turned into a line
            warnings.showwarning = lambda message, *_, **__: err.print(f"warning: {message}", markup=False,
                                                                      soft_wrap=True)
            yield
    except SearchError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(exit_code(e)) from None
    except KeyboardInterrupt as e:
        ignore_stopping()  # the clean-up is done: a 2nd, 3rd, ... Ctrl-C must not land in the exit
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            err.print(f"{what}: finished trials are stored; run the same command again to resume", markup=False,
                      soft_wrap=True)
        raise typer.Exit(exit_code(e)) from None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        def of(package: str) -> str:
            with contextlib.suppress(PackageNotFoundError):
                return version(package)
            return "not installed"

        _say(f"search {of('mnist-search')} (optuna {of('optuna')}, torch {of('torch')}, python "
             f"{sys.version.split()[0]})")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Hyperparameter search for MNIST-style image classifiers, on Optuna.

    \b
    Start with:
      search run --study quickstart     a first study (two minutes on a CPU)
      search show --study quickstart    its trials and best parameters
    """
    if ctx.invoked_subcommand is None:  # bare `search`: the help, and success
        _say(ctx.get_help())
        raise typer.Exit()


def _table() -> Table:
    """A table for the terminal (a rule under the header), or plain text when piped."""
    return Table(box=box.SIMPLE_HEAD if out.is_terminal else None, pad_edge=False, show_edge=False)


def _print_table(table: Table) -> None:
    """The table, fitted to the terminal; piped, without its padding (no trailing blanks)."""
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:
        out.print(table)
    for line in captured.get().splitlines():
        print(line.rstrip())


def _say(text: str) -> None:
    out.print(text, markup=False, soft_wrap=True)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _stored(study: str, storage: str | None):
    """The stored study named `study` (or named by a study file), and its storage URL."""
    from search import load_stored_study, storage_url

    url = storage_url(storage)
    return load_stored_study(_study_name(study), url), url


def _study_name(study: str) -> str:
    """--study NAME, or a study file (its name: key, else its stem)."""
    from search import read_study_file

    return read_study_file(study).name if study.endswith((".yaml", ".yml")) else study


@app.command()
def run(
    study: Annotated[str, typer.Option("--study", metavar="NAME|FILE", help="Study name (studies/NAME.yaml) or path to a study file.")],
    n_trials: Annotated[Optional[int], typer.Option(
        "--n-trials", metavar="N", min=1, show_default="the file's n_trials",
        help="Total finished trials the study should hold.")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", metavar="SECONDS", min=0.0, show_default="the file's timeout, else none",
        help="Stop starting trials after this many seconds.")] = None,
    device: DeviceOpt = "auto",
    storage: StorageOpt = None,
    data_dir: DataDirOpt = None,
    seed: Annotated[Optional[int], typer.Option("--seed", metavar="N", min=0, show_default="the file's seed",
                                                help="Study seed: trial k is seeded with seed + k.")] = None,
    workers: Annotated[int, typer.Option("--workers", metavar="N", min=1, max=256, help="Worker processes on this machine "
                                                                           "sharing the study (and the CPU threads).")] = 1,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a study key or fix an axis, e.g. --set epochs=1 "
                                           "--set train_size=2000 (repeatable; checked like the file).")] = None,
    heartbeat: Annotated[int, typer.Option(
        "--heartbeat", metavar="SECONDS", min=0, envvar="SEARCH_HEARTBEAT",
        help="Seconds between trial heartbeats (RDB storages); a trial silent for 3 intervals is failed and "
             "retried with the same parameters. 0: off.")] = HEARTBEAT_S,
    artifacts: ArtifactsOpt = None,
    allow_change: Annotated[bool, typer.Option(
        "--allow-change", help="Resume the stored study under the file's changed space, sampler, pruner or path "
                               "(logged in the study); without it a changed study file is refused.")] = False,
    track: Annotated[Optional[list[str]], typer.Option(
        "--track", metavar="mlflow[:URI]|tensorboard[:DIR]", show_default="the file's track, else none",
        help="Copy every trial (parameters, per-epoch curves, outcome, kept checkpoint) to MLflow (default store: "
             "MLFLOW_TRACKING_URI, else sqlite:///mlflow.db) or TensorBoard (default dir: runs); repeatable; "
             "none: off.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Try the study file end to end on a throwaway storage (2 trials, 1 epoch, 2,000 images; "
                          "--n-trials and --set still apply): nothing is stored.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary and warnings.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also a line per epoch on a terminal, and "
                                                                  "Optuna's own log.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object when done (and nothing else on "
                                                         "stdout).")] = False,
) -> None:
    """Run or resume a study: train, prune, store every trial.

    \b
    Examples:
      search run --study quickstart
      search run --study studies/my.yaml --n-trials 40 --workers 2
      search run --study best-mlp --dry-run
    """
    from search import DRY_RUN_SETS, RunOptions, dry_run_storage, mask_url, read_study_file, run_study, storage_url

    if not verbose:
        _quiet_optuna()
    url = storage_url(storage)
    with _errors(url), contextlib.ExitStack() as stack:
        if dry_run:
            url = stack.enter_context(dry_run_storage())
            overrides, artifacts, track = [*DRY_RUN_SETS, *(overrides or [])], None, ["none"]  # stores nothing
        opts = RunOptions(device=device, data_dir=data_dir, n_trials=n_trials, timeout=timeout, seed=seed,
                          heartbeat=heartbeat, workers=workers, artifacts=artifacts, allow_change=allow_change,
                          track=None if track is None else tuple(track))
        spec = read_study_file(study, overrides=overrides)
        if workers > 1:
            _run_workers(spec, url, opts, show=not (quiet or as_json), as_json=as_json)
            return
        view = RunView(out, show=not (quiet or as_json), epochs=verbose)

        def on_start(st, remaining: int, header: list[str]) -> None:
            if not view.show:
                return
            if dry_run:
                _say(f"dry run of study {spec.name} ({', '.join(DRY_RUN_SETS)}) on a throwaway storage: "
                     f"{remaining} to run, nothing kept")
            else:
                _say(f"study {spec.name}: {len(st.trials)} trials stored, {remaining} to run")
                _say(f"storage {mask_url(url)}")
            for line in header:  # the data, the device, and the code a study file names
                _say(line)
            view.start(remaining)

        def on_trial(st, trial) -> None:
            from search import best_or_none, primary

            top = best_or_none(st)
            best = best_text(None if top is None else primary(top), None if top is None else top.number)
            view.finished(trial_line(trial, spec.goal, best, out.width))

        try:
            result = run_study(spec, url, opts, on_trial=on_trial, on_start=on_start, on_step=view.step)
        finally:
            view.stop()
        for note in result.notes:
            err.print(f"warning: {note}", markup=False, soft_wrap=True)
        if as_json:
            from search import study_facts

            print(json.dumps({"storage": mask_url(url), "dry_run": dry_run, "ran": result.ran,
                              "seconds": round(result.seconds, 3), **study_facts(result.study),
                              "notes": result.notes}, indent=2, default=str))
            return
        _print_summary(result.study, result.ran, result.seconds)


def _run_workers(spec, url: str, opts, show: bool = True, as_json: bool = False) -> None:
    from rich.live import Live

    from search import mask_url, run_workers, threads_per_worker

    if show:
        _say(f"study {spec.name}: {opts.workers} workers, {threads_per_worker(opts.workers)} torch thread(s) each")
        _say(f"storage {mask_url(url)}")
    with Live(console=out, refresh_per_second=4, transient=True, auto_refresh=show and out.is_terminal) as live:
        def on_poll(f: dict[str, Any]) -> None:
            best = best_text(f["best_value"], f["best_trial"])
            for trial in f["finished"] if show else []:  # a line per finished trial, above the live table
                live.console.print(trial_line(trial, spec.goal, best, out.width), soft_wrap=True)
            if show and out.is_terminal:
                live.update(_progress_view(f))

        result = run_workers(spec, url, opts, on_poll=on_poll)
    for message in result.errors:
        err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    for note in result.notes:
        err.print(f"warning: {note}", markup=False, soft_wrap=True)
    codes = result.exit_codes
    dead = [f"worker {i} ({_exit_reason(c)})" for i, c in enumerate(codes) if c != 0]
    if dead:
        err.print("warning: " + ", ".join(dead) + "; trials they left were failed and queued again", markup=False)
    facts = result.facts
    s = facts["states"]
    if as_json:
        plain = {k: v for k, v in facts.items() if k not in ("finished", "running")}
        print(json.dumps({"storage": mask_url(url), **plain, "seconds": round(result.seconds, 3),
                          "errors": result.errors, "notes": result.notes}, indent=2, default=str))
    else:
        _say(f"{facts['done']}/{facts['budget']} done in {result.seconds:.0f}s; study holds {facts['n_trials']}: "
             f"{s['COMPLETE']} complete, {s['PRUNED']} pruned, {s['FAIL']} failed")
    if facts["done"] < facts["budget"] and any(c not in (0, None) for c in codes):
        raise typer.Exit(1)


def _exit_reason(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _progress_view(f: dict[str, Any]) -> Table:
    """The workers' live table: a row per running trial (its epoch and last value), then the
    study's counts, best, elapsed time and ETA."""
    s = f["states"]
    table = Table(show_header=False, box=None, pad_edge=False)
    for number, done, planned, last in f["running"]:
        value = "" if last is None else f"  {last:.4f}"
        table.add_row(f"  #{number} epoch {min(done + 1, planned or done + 1)}/{planned or '?'}{value}")
    eta = "-" if f["eta"] is None else f"{f['eta']:.0f}s"
    table.add_row(f"{f['done']}/{f['budget']} done: {s['COMPLETE']} complete, {s['PRUNED']} pruned, "
                  f"{s['FAIL']} failed")
    table.add_row(f"{best_text(f['best_value'], f['best_trial'])}  elapsed {f['elapsed']:.0f}s  ETA {eta}  "
                  f"workers {f['workers_alive']}/{f['workers']}")
    return table


def _print_summary(study, ran: int, seconds: float) -> None:
    from search import study_facts

    facts = study_facts(study)
    s = facts["states"]
    _say(f"ran {ran} trials in {seconds:.0f}s; study holds {facts['n_trials']}: {s['COMPLETE']} complete, "
         f"{s['PRUNED']} pruned, {s['FAIL']} failed")
    if facts["best_trial"] is not None:
        _say(f"best: trial #{facts['best_trial']} {values_text(facts['metrics'], facts['best_values'])}")


@app.command()
def studies(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """List the stored studies: trials by state, best value.

    \b
    Examples:
      search studies
      search studies --storage postgresql+psycopg://me@db/search --json
    """
    from search import all_studies, source_text, storage_url

    url = storage_url(storage)
    with _errors(url):
        rows = all_studies(url)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = _table()
    for col in ("study", "dataset", "metric", "trials", "done", "pruned", "failed", "best"):  # names whole; the
        table.add_column(col, justify="left" if col in ("study", "dataset", "metric") else "right",  # rest folds
                         overflow="fold", no_wrap=col in ("study", "best", "trials", "done", "pruned", "failed"))
    for r in rows:
        s = r["states"]
        best = "-" if r["best_value"] is None else f"{r['best_value']:.4f} #{r['best_trial']}"
        table.add_row(escape(r["study"]), escape(source_text(r["dataset"])), str(r["metric"]), str(r["n_trials"]),
                      str(s["COMPLETE"]), str(s["PRUNED"]), str(s["FAIL"]), best)
    _print_table(table)


@app.command()
def axes(as_json: JsonOpt = False) -> None:
    """List every axis a study file can set, with its default.

    \b
    Examples:
      search axes
      search axes --json
    """
    from search import AXES

    rows = [{"axis": a.name, "values": a.describe(), "default": a.encode(a.default),
             "applies": a.condition() or "always", "help": a.help}
            for a in AXES.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = _table()
    for col in ("axis", "values", "default", "help"):
        table.add_column(col, overflow="fold", no_wrap=col == "axis", ratio=2 if col == "help" else None)
    for r in rows:
        when = "" if r["applies"] == "always" else f" (when {r['applies']})"
        table.add_row(r["axis"], r["values"], str(r["default"]).lower() if isinstance(r["default"], bool)
                      else str(r["default"]), escape(r["help"] + when))
    _print_table(table)


@app.command()
def show(
    study: StudyOpt,
    storage: StorageOpt = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Only the N best trials (0: all).")] = 0,
    wide: Annotated[bool, typer.Option("--wide", "-w", help="Every parameter of each trial, folded over lines "
                                                            "(default: one line per trial).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a study's trials, best trial and its parameters.

    \b
    Examples:
      search show --study quickstart
      search show --study quickstart --top 5 --json
    """
    from search import best_or_none, fmt, params_of, pareto_front, ranked, study_facts, trial_row

    with _errors(storage):
        st, url = _stored(study, storage)
        facts = study_facts(st)
        rows = [trial_row(t) for t in ranked(st, top)]
        best = best_or_none(st)
        best_params = params_of(best).active() if best else None
        front = [t.number for t in pareto_front(st)]
    if as_json:
        print(json.dumps({**facts, "trials": rows, "best_params": best_params, "pareto_front": front}, indent=2,
                         default=str))
        return
    _say(f"{st.study_name}: {facts['n_trials']} trials, value = {facts['goal']}")
    table = _table()
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("ep", justify="right", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("parameters", overflow="fold", ratio=1)
    cells = []
    for r in rows:
        value = ("" if r["last_value"] is None else "/".join(fmt(v) for v in r["values"] or [r["last_value"]])
                 + ("*" if not r["feasible"] else ""))
        params = " ".join(f"{k}={fmt(v, 3)}" for k, v in r["params"].items())
        if r["failure"]:
            params = f"({r['failure']}) {params}"
        cells.append((str(r["number"]), r["state"].lower(), value, str(r["epochs"]), f"{r['seconds']:.1f}", params))
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(("#", "state", "value", "ep", "s"))]
    room = max(out.width - sum(widths) - 2 * len(widths), 12)  # what the parameters have of one line
    for r, cell in zip(rows, cells, strict=True):
        style = ("bold green" if best and r["number"] == best.number else
                 "cyan" if r["number"] in front else None)
        table.add_row(*cell[:5], escape(cell[5] if wide else fit_text(cell[5], room)), style=style)
    _print_table(table)
    if any(not r["feasible"] for r in rows):
        _say("* misses a floor or ceiling of the study")
    if front:
        _say(f"Pareto front (cyan): trials {', '.join(f'#{n}' for n in front)}; the best in {facts['metric']} is "
             "exported unless --trial says otherwise")
    if best:
        _say(f"best trial #{best.number}: {values_text(st.metric_names or [facts['metric']], best.values)}")
        flat = {**{k: v for k, v in best_params.items() if k != "model_args"}, **best_params.get("model_args", {})}
        out.print(" ".join(f"{k}={fmt(v, 4)}" for k, v in flat.items()), markup=False)  # wrapped; a factory's own too


@app.command()
def export(
    study: StudyOpt,
    out_path: Annotated[Path, typer.Option("--out", help="Config file to write.")] = Path("best.yaml"),
    trial: Annotated[Optional[int], typer.Option("--trial", min=0, show_default="the best",
                                                 help="Export this completed trial.")] = None,
    model_format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FORMAT", help="Also write the checkpoint as a model that takes raw images: onnx "
                                           "(best.onnx) or torchscript (best.ts).")] = None,
    image_input: InputOpt = "uint8",
    data_dir: DataDirOpt = None,
    storage: StorageOpt = None,
    artifacts: ArtifactsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the best (or a chosen) trial to a config file.

    Its stored checkpoint is written beside it (best.yaml -> best.pt) when the study kept one;
    --format writes it as ONNX or TorchScript too, checked on the validation images.

    \b
    Examples:
      search export --study quickstart --out best.yaml
      search export --study quickstart --trial 7 --out t7.yaml
      search export --study quickstart --format onnx
    """
    from search import artifact_dir, check_output, export_trial, storage_url

    with _errors(storage):
        url = storage_url(storage)  # the outputs first: nothing opened for a path that cannot be written
        check_output(out_path, url, artifact_dir(url, artifacts), "the config")
        st, url = _stored(study, storage)
        with spinner(out, f"writing {model_format}", show=model_format is not None and not as_json):
            done = export_trial(st, url, artifacts, trial, out_path, model_format, data_dir, image_input)
    src = done.config["source"]
    if as_json:
        print(json.dumps({"config": str(out_path), "weights": str(done.weights) if done.weights else None,
                          "removed": str(done.removed) if done.removed else None,
                          "deployed": _check_json(done.model), **src}, indent=2, default=str))
        return
    _say(f"wrote {out_path}: trial #{src['trial']} of {src['study']}, {src['metric']} {src['value']:.4g}"
         + (f"; its trained weights: {done.weights}" if done.weights else "")
         + (f"; removed {done.removed}, the weights of the config it replaced" if done.removed else ""))
    if done.model is not None:
        _say(_check_line(done.model))


def _check_json(check: Any) -> dict[str, Any] | None:
    return None if check is None else {"path": str(check.path), "format": check.format, "images": check.images,
                                       "max_diff": check.max_diff, "disagree": check.disagree}


def _check_line(check: Any) -> str:
    return (f"wrote {check.path} ({check.format}): same predictions as PyTorch on {check.images:,} images, "
            f"probabilities within {check.max_diff:.1g}")


@app.command()
def ensemble(
    study: Annotated[list[str], typer.Option(
        "--study", metavar="NAME", help="Stored study name (or its study file); repeat it to choose among the kept "
                                        "checkpoints of several studies on one dataset.")],
    size: Annotated[int, typer.Option("--size", metavar="K",
                                      help="Picks of greedy selection with replacement (1-100): at most K "
                                           "members.")] = 5,
    out_path: Annotated[Path, typer.Option("--out", help="Ensemble config to write.")] = Path("ensemble.yaml"),
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    storage: StorageOpt = None,
    artifacts: ArtifactsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose an ensemble among the kept checkpoints of a study (or several) and write its config.

    Greedy selection with replacement on the validation images (Caruana et al. 2004),
    averaging the members' softmax; nothing is retrained. Prints each member's and the
    ensemble's validation and test accuracy; `search train --config` retrains it.

    \b
    Examples:
      search ensemble --study mnist-record --size 5 --out ensemble.yaml
      search ensemble --study mnist-record --study mnist-vgg --size 10
      search train --config ensemble.yaml --save ensemble.pt
    """
    from search import artifact_dir, check_output, choose_ensemble, storage_url, write_ensemble_config

    with _errors(storage):
        url = storage_url(storage)  # the output first: nothing opened for a path that cannot be written
        check_output(out_path, url, artifact_dir(url, artifacts), "the ensemble config")
        studies = [_stored(name, storage)[0] for name in study]
        with spinner(out, "evaluating the kept checkpoints", show=not as_json):
            chosen = choose_ensemble(studies, url, artifacts, size, data_dir=data_dir, device=device)
        write_ensemble_config(chosen, out_path)
    if as_json:
        print(json.dumps({"config": str(out_path), "study": chosen.study, **chosen.stored()}, indent=2))
        return
    _print_table(_ensemble_table(chosen.members, chosen.val_accuracy, chosen.test_accuracy, chosen.studies))
    _say(f"chosen from {chosen.candidates} kept checkpoints ({chosen.checkpoint_bytes / 1e6:.1f} MB in "
         f"{chosen.artifacts}); wrote {out_path}: retrain and test it with: search train --config {out_path}")


def _ensemble_table(members: list[dict[str, Any]], val: float | None, test: float, studies: list[str]) -> Table:
    from search import fmt, member_label

    table = _table()
    for name in ("trial", "weight", "val_accuracy", "test_accuracy"):
        table.add_column(name, justify="right")
    for m in members:
        table.add_row(escape(member_label(m, studies)), str(m["weight"]), fmt(m["val_accuracy"]),
                      fmt(m["test_accuracy"]))
    table.add_row("ensemble", str(sum(m["weight"] for m in members)), fmt(val) if val is not None else "-", fmt(test))
    return table


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", help="Config file written by `search export` (or an ensemble's, "
                                                          "by `search ensemble`).")],
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Train on all 60,000 training images (no validation).")] = False,
    save: Annotated[Optional[Path], typer.Option(
        "--save", help="Save the trained model here: a checkpoint (model.pt), ONNX (model.onnx) or TorchScript "
                       "(model.ts), the last two taking raw images.")] = None,
    image_input: InputOpt = "uint8",
    as_json: JsonOpt = False,
) -> None:
    """Retrain a config and evaluate it once on the test set.

    An ensemble config retrains its members one by one and tests their average.

    \b
    Examples:
      search train --config best.yaml
      search train --config configs/fast-99.yaml --save model.pt --json
    """
    from search import EnsembleJob, load_job, retrain, save_weights

    with _errors():
        job = load_job(config)
        if save is not None:  # never over the storage in force, its artifacts, or any study's file
            # imported only here: the artifact store pulls in optuna-dashboard and scikit-learn
            # (~3 s of a 11 s `search train` of configs/fast-99.yaml, measured with cProfile)
            from search import artifact_dir, check_output, member_paths, storage_url

            url = storage_url(None)
            for path in member_paths(job, save) if isinstance(job, EnsembleJob) else [save]:
                check_output(path, url, artifact_dir(url), "the weights")
    if isinstance(job, EnsembleJob):
        _train_ensemble(job, device, data_dir, full, save, image_input, as_json)
        return
    with _errors():
        with fit_bar(out, "training", show=not as_json) as on_step:
            result = retrain(job, device=device, data_dir=data_dir, full=full, on_step=on_step)
        check = save_weights(result, job, save, image_input) if save is not None else None
    s = result.summary
    if as_json:
        # "model" is the summary's network name; how a saved ONNX/TorchScript file compared is "deployed"
        print(json.dumps({**s, "saved": str(save) if save else None, "deployed": _check_json(check)}, indent=2))
        return
    from search import fmt

    table = Table(title=escape(f"{s['model']} on {s['dataset']}"), show_header=False)
    for key in ("train_images", "epochs", "train_loss", "val_accuracy", "test_accuracy", "test_loss",
                "train_seconds", "device", "seed"):
        if s[key] is not None:
            table.add_row(key, fmt(s[key]))
    if s["source"]:
        table.add_row("from", escape(f"{s['source'].get('study')} trial #{s['source'].get('trial')} "
                                     f"({s['source'].get('metric')} {fmt(s['source'].get('value'))})"))
    if save:
        table.add_row("saved", escape(str(save)))
    out.print(table)
    if check is not None:
        _say(_check_line(check))


def _train_ensemble(job, device: str, data_dir: str | None, full: bool, save: Path | None, image_input: str,
                    as_json: bool) -> None:
    """`search train` of an ensemble config: its members one by one, then the ensemble."""
    from search import member_paths, retrain_ensemble, save_ensemble

    def on_member(i: int, member: Any) -> None:
        if not as_json:
            _say(f"member {i + 1}/{len(job.members)}: trial #{member.job.source.get('trial', '?')} of "
                 f"{member.job.source.get('study', '?')} (weight {member.weight})")

    with _errors():
        with fit_bar(out, "training", show=not as_json) as on_step:
            result = retrain_ensemble(job, device=device, data_dir=data_dir, full=full, on_member=on_member,
                                      on_step=on_step)
        checks = save_ensemble(result, job, save, image_input) if save is not None else []
    s = result.summary
    saved = [str(p) for p in member_paths(job, save)] if save is not None else []
    if as_json:
        print(json.dumps({**s, "saved": saved, "deployed": [_check_json(c) for c in checks]}, indent=2))
        return
    _print_table(_ensemble_table(s["members"], s["val_accuracy"], s["test_accuracy"], job.source.get("studies", [])))
    _say(f"{len(job.members)} members on {s['dataset']}, {s['train_seconds']:.1f} s of training on {s['device']}"
         + (f"; saved {', '.join(saved)}" if saved else ""))
    for check in checks:
        if check is not None:
            _say(_check_line(check))


@app.command()
def report(
    study: StudyOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.md, report.html and PNGs.")] = Path(
        "report"),
    evaluate: Annotated[bool, typer.Option(
        "--evaluate", help="Retrain the best config and add test accuracy, per-class accuracy and a confusion "
                           "matrix.")] = False,
    storage: StorageOpt = None,
    device: DeviceOpt = "auto",
    data_dir: DataDirOpt = None,
    artifacts: ArtifactsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a study's report: tables, plots, what each axis did.

    \b
    Examples:
      search report --study quickstart --out report
      search report --study quickstart --out report --evaluate
    """
    from search import artifact_dir, check_output_dir, storage_url, write_report

    _quiet_optuna()
    with _errors(storage):
        url = storage_url(storage)
        check_output_dir(out_dir, url, artifact_dir(url, artifacts), "the report")
        st, url = _stored(study, storage)
        with fit_bar(out, "retraining the best config", show=not as_json) as on_step:
            result = write_report(st, out_dir, evaluate=evaluate, device=device, data_dir=data_dir,
                                  artifacts=artifact_dir(url, artifacts), on_step=on_step)
    if as_json:
        print(json.dumps({"out": str(out_dir), "files": [str(p) for p in result.files], "evaluated": evaluate},
                         indent=2))
        return
    _say(f"wrote {out_dir / 'report.md'}, {out_dir / 'report.html'} and "
         f"{sum(p.suffix == '.png' for p in result.files)} plots")


@app.command()
def fail(
    study: StudyOpt,
    trial: Annotated[int, typer.Option("--trial", min=0, help="The RUNNING trial to fail.")],
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fail a RUNNING trial whose worker is gone; queue it again.

    \b
    Example:
      search fail --study quickstart --trial 12
    """
    from search import fail_trial

    with _errors(storage):
        st, _ = _stored(study, storage)
        failed = fail_trial(st, trial, "failed by `search fail`")
    if as_json:
        print(json.dumps({"study": st.study_name, "trial": failed.number, "state": failed.state.name,
                          "queued_again": True}, indent=2))
        return
    _say(f"trial #{failed.number} of {st.study_name} failed (worker gone) and queued again: `search run` runs it")


@app.command()
def delete(
    study: StudyOpt,
    storage: StorageOpt = None,
    artifacts: ArtifactsOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete it (without: say what would be deleted).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a stored study, its trials and their files.

    Checkpoints and report images go with it. Without --yes: says what would go.

    \b
    Example:
      search delete --study quickstart --yes
    """
    from search import delete_study, mask_url, storage_url

    url = storage_url(storage)
    with _errors(url):
        gone = delete_study(_study_name(study), url, artifacts, yes=yes)
    if as_json:
        print(json.dumps({"deleted": gone.study, "storage": mask_url(url), "trials": gone.trials,
                          "files": gone.files}, indent=2))
        return
    _say(f"deleted study {gone.study} from {mask_url(url)}: {gone.trials} trials, {gone.files} stored files")


@app.command()
def dashboard(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8080,
    artifacts: ArtifactsOpt = None,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="Let the dashboard change studies: edit notes, rename and delete studies and "
                               "their checkpoints (off: read-only).")] = False,
) -> None:
    """Serve optuna-dashboard for the storage (read-only).

    Notes, checkpoints and report images included; --allow-writes lets it change studies.

    \b
    Examples:
      search dashboard
      search dashboard --port 8081 --storage sqlite:///own.db
    """
    from search import check_address, is_loopback, serve, storage_url

    url = storage_url(storage)
    with _errors(url, stops=False):  # the server handles its own signals
        check_address(host, port)
        if not is_loopback(host):
            err.print(f"warning: serving on {host} exposes every study to the network; the dashboard has "
                      "no authentication", markup=False)
        if allow_writes and not is_loopback(host):
            err.print(f"warning: with --allow-writes anyone who reaches {host}:{port} can delete studies",
                      markup=False)
        serve(url, host, port, artifacts, say=_say, allow_writes=allow_writes)


@app.command("storage-proxy")
def storage_proxy(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 13000,
    threads: Annotated[int, typer.Option("--threads", min=1, max=1024,
                                         help="Server threads (calls served at once).")] = 64,
) -> None:
    """Serve a storage to many workers (Optuna's gRPC proxy).

    Workers, readers and the dashboard then take --storage grpc://HOST:PORT; the study lock
    (the exact budget) and heartbeats work through it.

    \b
    Examples:
      search storage-proxy --storage postgresql+psycopg://u:PASSWORD@db/search
      search run --study quickstart --storage grpc://127.0.0.1:13000 --workers 4
    """
    from search import is_loopback, serve_storage_proxy, storage_url

    url = storage_url(storage)
    with _errors(url, stops=False):  # the server handles its own signals
        if not is_loopback(host):
            err.print(f"warning: serving on {host} lets anyone who reaches port {port} read and change every study; "
                      "the storage proxy has no authentication", markup=False, soft_wrap=True)
        serve_storage_proxy(url, host, port, threads, say=_say)


def main() -> None:
    app(prog_name="search")  # also when started as `python -m` or `python -c` (the tests)


if __name__ == "__main__":
    sys.exit(main())
