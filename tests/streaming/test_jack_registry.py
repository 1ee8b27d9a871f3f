"""Tests that start JACK servers of their own leave jackd's machine-wide server registry as they
found it: it has 8 entries, a server killed with SIGKILL keeps its entry, and a registry full of
leftovers makes every later jackd refuse to start (on CI, and for everyone on a shared machine).

The registry is /dev/shm/jack-shm-registry (jack/shm.h, jack2 1.9.x): a header of magic,
protocol, size, hdr_len and entry_len (int32 each after a 4-byte magic), then MAX_SERVERS = 8
entries of {pid_t pid; char name[257]} padded to 264 bytes, each name "jack-UID:SERVER:"."""

from __future__ import annotations

import signal
import struct
from pathlib import Path

import pytest

from tests.streaming.jack_server import JackServer, require_jackd

REGISTRY = Path("/dev/shm/jack-shm-registry")
MAX_SERVERS = 8
ENTRY = 264
FIRST = 24

pytestmark = pytest.mark.device


def registry_servers() -> dict[str, int]:
    """The servers registered: {SERVER name: pid}."""
    if not REGISTRY.exists():
        return {}
    data = REGISTRY.read_bytes()
    assert data[:4] == b"KCAJ", "not a jack2 shm registry"
    hdr_len = struct.unpack_from("<i", data, 16)[0]
    assert hdr_len == FIRST + MAX_SERVERS * ENTRY, f"unexpected registry layout ({hdr_len})"
    found = {}
    for i in range(MAX_SERVERS):
        off = FIRST + i * ENTRY
        pid = struct.unpack_from("<i", data, off)[0]
        name = data[off + 4:off + ENTRY].split(b"\0")[0].decode(errors="replace")
        if pid and name:
            found[name.split(":")[1] if name.count(":") >= 2 else name] = pid
    return found


def ours(prefix: str) -> dict[str, int]:
    """Entries of this checkout's test servers (other checkouts' runs come and go meanwhile)."""
    return {k: v for k, v in registry_servers().items() if k.startswith(prefix)}


def test_private_servers_leave_the_registry_as_they_found_it():
    require_jackd()
    probe = JackServer("registry")
    prefix = probe.name.rsplit("-", 1)[0]
    before = ours(prefix)
    with JackServer("registry") as server:               # started and stopped cleanly
        assert server.name in registry_servers()
    assert ours(prefix) == before
    with JackServer("registry") as server:               # killed as a crash would
        server.kill(signal.SIGKILL)
        assert server.name in registry_servers(), "a killed server keeps its entry"
    assert ours(prefix) == before
    with JackServer("registry") as server:               # hung, then the test ends
        server.freeze()
    assert ours(prefix) == before
    assert len(registry_servers()) < MAX_SERVERS, "the registry is full: jackd cannot start"
