"""A journal file whose last line is broken (the disk filled mid-append, a process killed
mid-write, garbage) never makes the stored trials unreadable: the next command that
writes cuts the broken tail before appending (keeping a copy of what it cut), readers
ignore it, and a line broken inside the file is one error line, not a traceback."""

from __future__ import annotations

import json

import pytest

from conftest import cli, needs_mnist, one_line_error, write_study

pytestmark = needs_mnist


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "j.log"
    r = cli("run", "--study", write_study(tmp_path, n_trials=2), "--storage", f"journal:{path}")
    assert r.exit_code == 0, r.output
    return path


@pytest.mark.parametrize("tail", [
    b'{"op_code":5,"worker_id":"x","trial_id":1,"sta',  # an append cut off: no newline
    b"\x00\x00\x00\x00\n",  # a block of zeros where the file system lost the write
    b"not a journal entry\n",
])
def test_a_broken_last_line_is_cut_before_anything_is_appended(journal, tmp_path, tail):
    url = f"journal:{journal}"
    whole = journal.read_bytes()
    journal.write_bytes(whole + tail)
    shown = cli("show", "--study", "tiny", "--storage", url, "--json")  # the first command mends it, and says so
    assert shown.exit_code == 0, shown.output
    assert "warning: the journal" in shown.stderr and "the bytes cut are kept in" in shown.stderr
    r = cli("run", "--study", tmp_path / "tiny.yaml", "--storage", url, "--n-trials", 3)
    assert r.exit_code == 0, r.output
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("j.log.broken-")]
    assert len(kept) == 1 and kept[0].read_bytes() == tail
    assert journal.read_bytes().startswith(whole)  # nothing before the broken line changed
    for line in journal.read_bytes().splitlines():
        json.loads(line)  # every line whole again
    trials = json.loads(cli("show", "--study", "tiny", "--storage", url, "--json").stdout)["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    assert cli("studies", "--storage", url).exit_code == 0


def test_a_line_broken_inside_the_journal_is_one_line(journal):
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:2] + [b"garbage\n"] + lines[2:]))
    for command in (("show", "--study", "tiny"), ("studies",)):
        one_line_error(cli(*command, "--storage", f"journal:{journal}"), "has a broken line inside it",
                       "restore a backup")
