"""Every ipc test must leave no worker process and no shared-memory file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("iceoryx2")

from remotemedia.ipc import channel  # noqa: E402

OWN_PREFIX = f"rmx{os.getpid()}x"


def own_files() -> list[Path]:
    """Shared-memory and root-directory files of domains this test process created."""
    found = list(channel.SHM_DIR.glob(OWN_PREFIX + "*"))
    if channel.iox_root().exists():
        found += list(channel.iox_root().rglob(OWN_PREFIX + "*"))
        # a node directory left empty is a leak too
        nodes = channel.iox_root() / "nodes"
        found += [d for d in nodes.iterdir() if d.is_dir() and not any(d.iterdir())] \
            if nodes.exists() else []
    return found


def child_pids() -> set[int]:
    me = str(os.getpid())
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids


@pytest.fixture(autouse=True)
def no_leftovers():
    before = child_pids()
    yield
    assert own_files() == [], "shared-memory files left behind"
    assert child_pids() - before == set(), "worker processes left running"


def manifest(node_type: str, *, params=None, **node_keys) -> dict:
    node = {"id": "proc", "node_type": node_type, "executor": "process", **node_keys}
    if params:
        node["params"] = params
    return {"version": "v1", "nodes": [node],
            "connections": [{"from": "input", "to": "proc"}, {"from": "proc", "to": "output"}]}


def inline(m: dict) -> dict:
    nodes = [{k: v for k, v in n.items() if k != "executor"} for n in m["nodes"]]
    return {**m, "nodes": nodes}
