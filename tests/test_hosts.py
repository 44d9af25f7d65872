"""Workers on separate hosts, for real: network namespaces as a database host (PostgreSQL and
`search storage-proxy`) and two worker hosts, joined by veth pairs, each with its own address.
One worker host's link is cut mid-trial: its trial is failed by its heartbeat and retried on
the other host; when the link comes back, the cut-off worker's result is dropped, not written
over the retry's. Needs root and iproute2 (CI has both); skips with the reason elsewhere."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from conftest import MNIST, ROOT, finish, needs_mnist, write_study
from pg import Server, find_bin

pytestmark = needs_mnist

PORT = 13000
LONG = {"n_trials": 4, "train_size": 20000, "sampler": "random", "pruner": "none",  # ~1.5-3 s trials
        "space": {"epochs": 4, "hidden_size": 64, "lr": {"low": 1e-3, "high": 1e-2}}}


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


class Hosts:
    """A database host `db` and worker hosts, each a namespace with one veth link to `db`
    (10.N.k.1 on db's side, 10.N.k.2 on the worker's); the test's own namespace is linked too."""

    def __init__(self, workers: int) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.net = 64 + int(self.tag, 16) % 64  # 10.64-127.*.*: a private range, one per test run
        self.db = f"db-{self.tag}"
        self.workers = [f"w{i}-{self.tag}" for i in range(1, workers + 1)]
        self.made: list[str] = []

    def addr(self, link: int, side: int) -> str:
        return f"10.{self.net}.{link}.{side}"

    def veth(self, link: int) -> str:
        return f"v{link}-{self.tag}"

    def up(self) -> None:
        for ns in (self.db, *self.workers):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("link", "set", "lo", "up", ns=ns)
        for link, ns in enumerate([None, *self.workers]):  # link 0: this test's own namespace
            here, there = self.veth(link) + "a", self.veth(link) + "b"
            ip("link", "add", here, "type", "veth", "peer", "name", there)
            ip("link", "set", there, "netns", self.db)
            ip("addr", "add", self.addr(link, 1) + "/24", "dev", there, ns=self.db)
            ip("link", "set", there, "up", ns=self.db)
            if ns is not None:
                ip("link", "set", here, "netns", ns)
            ip("addr", "add", self.addr(link, 2) + "/24", "dev", here, ns=ns)
            ip("link", "set", here, "up", ns=ns)

    def cut(self, worker: int, up: bool = False) -> None:
        ip("link", "set", self.veth(worker) + "a", "up" if up else "down", ns=self.workers[worker - 1])

    def down(self) -> None:
        ip("link", "del", self.veth(0) + "a", check=False)
        for ns in self.made:
            ip("netns", "del", ns, check=False)


@pytest.fixture
def hosts():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (ip netns)")
    if find_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    h = Hosts(workers=2)
    try:
        h.up()
    except subprocess.CalledProcessError as e:
        h.down()
        pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
    yield h
    h.down()


def in_ns(ns: str, *args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEARCH_DATA_DIR": str(MNIST), "SEARCH_DEVICE": "cpu"}
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", "import cli; cli.main()",
                             *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def trials(url: str) -> list[optuna.trial.FrozenTrial]:
    from search.storage import open_storage

    try:
        return optuna.load_study(study_name="tiny", storage=open_storage(url, create=False)).trials
    except Exception:  # not created yet
        return []


def test_a_worker_host_cut_off_mid_trial_is_failed_retried_elsewhere_and_overwrites_nothing(tmp_path, hosts):
    pg = Server(find_bin())
    pg.prefix = ["ip", "netns", "exec", hosts.db]  # PostgreSQL on the database host's loopback
    procs: list[subprocess.Popen] = []
    try:
        pg.init()
        pg.start()
        pg.create_db()
        proxy = in_ns(hosts.db, "storage-proxy", "--storage", pg.url, "--host", "0.0.0.0", "--port", PORT)
        procs.append(proxy)
        assert "storage proxy for" in proxy.stdout.readline(), proxy.stderr.read()
        mine = f"grpc://{hosts.addr(0, 1)}:{PORT}"  # this test reads through its own link
        study = write_study(tmp_path, **LONG)
        workers = [in_ns(ns, "run", "--study", study, "--storage", f"grpc://{hosts.addr(k, 1)}:{PORT}",
                         "--heartbeat", 1) for k, ns in enumerate(hosts.workers, start=1)]
        procs += workers
        w1 = f"{socket.gethostname()}:{workers[0].pid}"  # `ip netns exec` runs the command in its own process
        victim = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline:
            victim = next((t for t in trials(mine) if t.state.name == "RUNNING" and t.user_attrs.get("worker") == w1
                           and t.intermediate_values), None)
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.05)
        assert victim is not None, "worker 1 ran no trial"
        hosts.cut(1)  # mid-trial: its epochs go on, its heartbeats and reports reach nobody
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            ts = trials(mine)
            retry = next((t for t in ts if t.system_attrs.get("failed_trial") == victim.number), None)
            if retry is not None and retry.state.name == "COMPLETE":
                break
            time.sleep(0.2)
        assert ts[victim.number].state.name == "FAIL", ts[victim.number]  # its heartbeat went stale
        assert "fail_reason" not in ts[victim.number].user_attrs  # failed by Optuna's stale check, not by us
        assert retry is not None and retry.state.name == "COMPLETE" and retry.params == victim.params
        assert retry.user_attrs["worker"] == f"{socket.gethostname()}:{workers[1].pid}"  # on the other host
        hosts.cut(1, up=True)
        results = [finish(w, 240) for w in workers]
        assert results[1][0] == 0, results[1]
        # the cut-off worker comes back: its trial was finished elsewhere, so its result is dropped
        assert results[0][0] == 0, results[0]
        assert "was finished by another worker" in results[0][2], results[0]
        ts = trials(mine)
        assert sum(t.state.name == "COMPLETE" for t in ts) == 4  # exactly the budget
        assert not [t for t in ts if t.state.name in ("RUNNING", "WAITING")]
        assert ts[victim.number].state.name == "FAIL" and ts[victim.number].values is None  # not overwritten
        again = next(t for t in ts if t.number == retry.number)
        assert again.values == retry.values and again.user_attrs["worker"] == retry.user_attrs["worker"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
        pg.remove()
