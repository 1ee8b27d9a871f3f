"""Connecting to a Ray cluster, for `executor: ray` nodes and `batch --ray`.

`connect(address)` returns the `ray` module connected to: the cluster at `address` ("host:port"
of its GCS, or "auto"), else `RAY_ADDRESS`, else a cluster started on this machine with `ray
start`, else a new local one (`ray.init()`'s own order; a new one costs about 2.4 s and 950 MiB
measured on our test machines). A "host:port" that accepts no TCP connection is refused within
CONNECT_TIMEOUT_S with a one-line ClusterError, instead of Ray's minute of retries.
"""

from __future__ import annotations

import logging
import socket

from ..engine.errors import ClusterError

CONNECT_TIMEOUT_S = 5.0


def connect(address: str | None = None):
    """The `ray` module, initialized; raises ClusterError (one line) when that fails."""
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed: pip install 'remotemedia[ray]'") from None
    if ray.is_initialized():
        return ray
    where = f" at {address}" if address else ""
    if address:
        _check_reachable(address, where)
    try:
        ray.init(address=address or None, logging_level=logging.WARNING,
                 include_dashboard=False)
    except Exception as exc:
        raise ClusterError(f"cannot reach a Ray cluster{where}: {describe(exc)}") from None
    return ray


def _check_reachable(address: str, where: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return   # "auto", or a ray:// client address: Ray's own checks apply
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)),
                                      timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach a Ray cluster{where}: {reason.lower()}") from None


def describe(exc: BaseException) -> str:
    """One line from a Ray exception, whose str() is often a multi-line traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
