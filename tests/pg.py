"""A real PostgreSQL server on 127.0.0.1 for tests: initdb into a temp dir as a non-root
user, a random free port, password authentication; stopped and removed afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "pg-Secr3t-for-tests"
USER = "search"
# Drop root for initdb/pg_ctl with the interpreter itself: runuser lives in /usr/sbin, missing
# from some PATHs and some images (CI had none), and setpriv is as optional.
_AS_USER = ("import os, pwd, sys; u = pwd.getpwnam(sys.argv[1]); os.setgroups([]); os.setgid(u.pw_gid); "
            "os.setuid(u.pw_uid); os.execvp(sys.argv[2], sys.argv[2:])")


def find_bin() -> Path | None:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="search-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = ""
        self.as_user: list[str] = []
        self.prefix: list[str] = []  # e.g. ip netns exec NS: the server on another host's loopback
        self.max_connections = 100
        if os.geteuid() == 0:  # initdb refuses to run as root
            user = "postgres" if _user_exists("postgres") else "nobody"
            self.user = user
            self.as_user = [sys.executable, "-c", _AS_USER, user]
            shutil.chown(self.dir, user=user)
        os.chmod(self.dir, 0o700)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/search"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, *self.as_user, *args], capture_output=True, text=True, check=check,
                              env={**os.environ, "PGPASSWORD": PASSWORD}, cwd=self.dir)

    def init(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_user:
            shutil.chown(pwfile, user=self.user)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync")
        pwfile.unlink()

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections={self.max_connections} -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")

    def create_db(self) -> None:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "search")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
