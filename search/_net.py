"""A host and port to serve on -> checked (one line when it cannot be bound); shared by the
dashboard and the storage proxy."""

from __future__ import annotations

import errno
import ipaddress
import socket

from search.errors import SearchError

__all__ = ["check_address", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether serving on `host` keeps a server on this machine (no warning needed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> None:
    """One line for an address that cannot be served on: a host that is not an address of
    this machine (say which), or a port in use (say to pick another)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SearchError(f"--host {host!r} is not a host name or address this machine can resolve: use "
                          "127.0.0.1 (this machine only) or one of its own addresses") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SearchError(f"port {port} on {host} is already in use: pick another --port") from None
            if e.errno in (errno.EACCES, errno.EPERM):
                raise SearchError(f"port {port} needs privileges to bind: pick a --port above 1023") from None
            raise SearchError(f"cannot serve on {host}: {e.strerror} (not an address of this machine?); use "
                              "127.0.0.1 or one of this machine's addresses") from None
