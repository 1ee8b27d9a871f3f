"""A worker outlives no parent, and what a crash leaves in /dev/shm goes at the next start."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from remotemedia import Pipeline
from remotemedia.ipc import channel

from .conftest import manifest

ENGINE_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from remotemedia import Pipeline, RuntimeData
    m = {"version": "v1",
         "nodes": [{"id": "proc", "node_type": sys.argv[1], "executor": "process",
                    "params": {"hang_at": 0} if "Sleepy" in sys.argv[1] else {}}],
         "connections": [{"from": "input", "to": "proc"}, {"from": "proc", "to": "output"}]}
    session = Pipeline.from_manifest(m, allow_import=["tests.ipc.nodes"]).session()
    session.push(RuntimeData.Numpy(np.ones(960, dtype=np.float32), seq=0))
    node = session.node("proc")
    print(node.pid, node.worker.prefix, flush=True)
    time.sleep(60)
""")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"     # exited; its new parent has not reaped it yet


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("node_type", ["PassThrough", "tests.ipc.nodes:Sleepy"],
                         ids=["idle worker", "worker stuck in process()"])
def test_a_worker_whose_engine_is_killed_exits_and_its_files_go_at_next_start(node_type):
    engine = subprocess.Popen([sys.executable, "-c", ENGINE_SCRIPT, node_type],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        line = engine.stdout.readline().split()
        assert line, "the engine script did not start its worker"
        worker_pid, prefix = int(line[0]), line[1]
        assert not _gone(worker_pid)
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        engine.stdout.close()
    deadline = time.monotonic() + 5
    while not _gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(worker_pid), "the orphaned worker kept running"
    assert channel.domain_files(prefix), "a SIGKILLed engine should leave files to clean"
    # The next start removes what the dead engine left.
    with Pipeline.from_manifest(manifest("PassThrough")).session() as session:
        assert len(session.push(np.ones(960, dtype=np.float32))) == 1
    assert channel.domain_files(prefix) == []


def test_stale_domains_of_dead_parents_are_removed_and_live_ones_kept():
    dead = f"rmx{_dead_pid()}x{secrets.token_hex(8)}_"
    live = f"rmx{os.getpid()}x{secrets.token_hex(8)}_"
    node_dir = channel.iox_root() / "nodes" / "424242424242"
    node_dir.mkdir(parents=True)
    made = [channel.SHM_DIR / f"{dead}abc.data", node_dir / f"{dead}node.details",
            channel.SHM_DIR / f"{live}abc.data"]
    for path in made:
        path.write_bytes(b"x")
    try:
        assert channel.remove_stale_domains() >= 2
        assert not made[0].exists() and not node_dir.exists()
        assert made[2].exists()
    finally:
        channel.remove_domain(live)
        channel.remove_domain(dead)


def test_a_crashed_workers_files_are_removed_with_its_domain():
    with Pipeline.from_manifest(manifest("PassThrough", on_error="restart")).session() as s:
        node = s.node("proc")
        first = node.worker.prefix
        os.kill(node.pid, signal.SIGKILL)
        node.worker.proc.wait()
        assert len(s.push(np.ones(960, dtype=np.float32))) == 1
        assert node.worker.prefix != first           # a fresh domain and fresh names
        assert channel.domain_files(first) == []


def test_an_engine_that_exits_without_closing_its_session_leaves_nothing():
    script = textwrap.dedent("""
        import numpy as np
        from remotemedia import Pipeline
        m = {"version": "v1",
             "nodes": [{"id": "proc", "node_type": "PassThrough", "executor": "process"}],
             "connections": [{"from": "input", "to": "proc"}, {"from": "proc", "to": "output"}]}
        session = Pipeline.from_manifest(m).session()     # never closed
        assert len(session.push(np.ones(960, dtype=np.float32))) == 1
        print(session.node("proc").pid, session.node("proc").worker.prefix)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    worker_pid, prefix = done.stdout.split()
    assert _gone(int(worker_pid))
    assert channel.domain_files(prefix) == []
