"""What a person sees in an 80x24 terminal: `search run` in a real pseudo-terminal of 80
columns shows live progress inside each trial (epoch, loss, accuracy, a bar redrawn as the
steps go) and no line wider than the terminal; piped, it prints plain lines."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import ROOT, needs_mnist, write_study

pytestmark = needs_mnist

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _in_terminal(args: list[str], columns: int = 80, rows: int = 24, limit: float = 300) -> str:
    """Run the CLI with a pseudo-terminal of `columns` x `rows` as its stdout and stderr; all it wrote."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "CI", "TERM")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color")
    proc = subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *args], stdin=child, stdout=child,
                            stderr=child, env=env, close_fds=True)
    os.close(child)
    chunks, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
        pytest.fail("search did not finish in the terminal")
    proc.wait(30)
    os.close(main)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_run_in_an_80_column_terminal_shows_progress_inside_trials_and_never_wraps(tmp_path):
    study = write_study(tmp_path, n_trials=2, train_size=8000, space={"epochs": 3, "batch_size": 32,
                                                                      "hidden_size": 64, "lr": 0.003})
    text = _in_terminal(["run", "--study", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    screens = [ANSI.sub("", part) for part in re.split(r"[\r\n]", text)]
    assert max(len(s) for s in screens if str(tmp_path) not in s) <= 80, max(screens, key=len)  # paths are long
    # the trial's own bar: its epoch, then its loss and accuracy once an epoch is done, redrawn
    assert any(re.search(r"#0 epoch 1/3 .* \d+/750 ", s) for s in screens)
    assert any(re.search(r"#1 epoch 3/3  loss [\d.]+  val 0\.\d{4} .* \d+/750 ", s) for s in screens)
    steps = {int(m[1]) for s in screens for m in [re.search(r"#1 epoch \d/3 .* (\d+)/750 ", s)] if m}
    assert len(steps) >= 3  # seen at several points of one trial (redrawn 10 times a second), not only at its end
    assert re.search(r"^#0   COMPLETE 0\.\d{4}  [\d.]+s  best 0\.\d{4} #0", "\n".join(screens), re.M)
    assert "device cpu" in text


def test_run_piped_prints_plain_lines(tmp_path):
    study = write_study(tmp_path, n_trials=1, train_size=2000, space={"epochs": 2, "hidden_size": 32})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "run", "--study", str(study)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\r" not in r.stdout  # no redraws, no colours
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"  #0 epoch 1/2  loss [\d.]+  val 0\.\d{4}  [\d.]+s", lines[4]), lines
    assert lines[5].startswith("#0   COMPLETE ") and max(len(s) for s in lines if str(tmp_path) not in s) <= 80


def test_workers_show_a_line_per_trial_above_a_live_table_that_fits(tmp_path):
    # 8 epochs of 10,000 images: the table polls the storage once a second, and on a fast CPU
    # 3-epoch trials of 6,000 (0.6 s) all ended between two polls
    study = write_study(tmp_path, n_trials=4, train_size=10000, space={"epochs": 8, "batch_size": 32,
                                                                       "hidden_size": 32, "lr": 0.003})
    text = _in_terminal(["run", "--study", str(study), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                         "--workers", "2"])
    screens = [ANSI.sub("", part) for part in re.split(r"[\r\n]", text)]
    assert max(len(s) for s in screens if str(tmp_path) not in s) <= 80, max(screens, key=len)
    done = {int(m[1]) for s in screens for m in [re.match(r"#(\d+) +COMPLETE 0\.\d{4}  ", s)] if m}
    assert done == {0, 1, 2, 3}  # the same trial lines as one worker prints
    assert any(re.match(r"  #\d+ epoch [1-8]/8", s) for s in screens)  # the running trials, live
    assert any(re.match(r"\d/4 done: \d complete, 0 pruned, 0 failed", s) for s in screens)
    assert any(re.match(r"(best 0\.\d{4} #\d|no best)  elapsed \d+s  ETA .*  workers [12]/2", s) for s in screens)


def test_train_in_a_terminal_shows_a_bar_for_its_steps(tmp_path):
    from conftest import cli

    study = write_study(tmp_path, n_trials=1, train_size=6000, space={"epochs": 3, "batch_size": 32,
                                                                      "hidden_size": 32, "lr": 0.003})
    assert cli("run", "--study", study).exit_code == 0
    assert cli("export", "--study", "tiny", "--out", tmp_path / "best.yaml").exit_code == 0
    text = _in_terminal(["train", "--config", str(tmp_path / "best.yaml")])
    screens = [ANSI.sub("", part) for part in re.split(r"[\r\n]", text)]
    assert max(len(s) for s in screens if str(tmp_path) not in s) <= 80, max(screens, key=len)
    assert any(re.match(r"training: epoch 3/3  loss [\d.]+  val 0\.\d{4} .* \d+/564 ", s) for s in screens)
    assert any("test_accuracy" in s for s in screens)  # then the result table
