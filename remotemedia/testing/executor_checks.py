"""`check_executor`: the conformance kit for executors, as trio ships checks for its streams.

    from remotemedia.testing import check_executor
    def test_my_executor():
        check_executor(make_my_node)          # a factory spec -> Node, or a registered name

It runs small graphs (input -> node on the executor -> output) with the nodes of this module,
which every executor can import (a worker process or a Ray actor imports them by path), and
fails with every broken rule listed:

- order: frames come back in order, with their samples, pts, seq and metadata; nothing dropped
  under `block`; frames_in == frames_out;
- drops: with a node slower than the pushes and a full queue, `drop_newest` keeps the first
  frames and `drop_oldest` the last one; every frame is an output or a counted drop (in the
  session's `drops` and the node's own);
- errors: a node that raises fails the session under `on_error: fail` with a NodeError caused by
  RemoteNodeError naming the node's exception; under `skip` that one frame is dropped and one
  error counted;
- restart: where the node runs dies (the node raises SystemExit on frame 2) under `on_error:
  restart`: the frame lost with it is one counted drop, one restart and one error are counted,
  and a new worker takes the frames pushed after a flush;
- stats: the node's report carries `executor` (its name), `queue` {size, policy}, `drops`,
  `restarts` and `round_trip_us` {p50, p95, p99, max}, non-negative, p50 <= max, set once a
  frame went through;
- close: closing a session twice, and tearing the node down again, raise nothing;
- drain: end_of_stream waits until nothing is in flight: every frame queued behind a slow node
  comes out of it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..engine.data import NumpyData
from ..engine.errors import NodeError, RemoteNodeError
from ..engine.executors import executors
from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE, Node, Param
from ..engine.session import Pipeline
from .conformance import ConformanceReport
from .manifests import manifest
from .registry import isolated_registry

RULES = ("order", "drops", "errors", "restart", "stats", "close", "drain")
_STATS_KEYS = ("executor", "queue", "drops", "restarts", "round_trip_us")


class CheckSlow(Node):
    """Sleeps `delay_ms` per block (as a model would compute), then passes it on."""

    node_type = "CheckSlow"
    params = (Param("delay_ms", float, 0.0),)

    def process(self, frame):
        """Sleeps, then returns the same block."""
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        return frame


class CheckFails(Node):
    """Fails on the block with seq `at`: `how` "raise" raises ValueError (the node's error),
    "exit" raises SystemExit (the thread, process or actor running it ends: a crash wherever
    it runs)."""

    node_type = "CheckFails"
    params = (Param("at", int, 0), Param("how", str, "raise", choices=("raise", "exit")))

    def process(self, frame):
        """The failure for the block with seq `at`, else the same block."""
        if frame.seq == self.at:
            if self.how == "exit":
                raise SystemExit(f"exiting at frame {frame.seq}")
            raise ValueError(f"refusing frame {frame.seq}")
        return frame


class _Failed(Exception):
    """One rule broken; the message says how."""


def _frames(n: int) -> list[NumpyData]:
    block = DEFAULT_BLOCK_SIZE
    return [NumpyData(np.full(block, i, np.float32), sample_rate=DEFAULT_SAMPLE_RATE,
                      pts=i * block, seq=i, metadata={"check": i}) for i in range(n)]


def check_executor(executor: str | Callable, *, raise_on_failure: bool = True,
                   skip: tuple[str, ...] = ()) -> ConformanceReport:
    """Run the rules above on `executor`: a name in the executor registry, or a factory
    `factory(spec) -> Node` (registered for the check under a temporary name). `skip` names
    rules not to run. Returns the ConformanceReport (its `node_type` is the executor's name);
    raises AssertionError listing every broken rule unless `raise_on_failure` is False."""
    temporary = None
    if callable(executor):
        temporary = f"check-executor-{id(executor):x}"
        executors.register(temporary, executor)
        name = temporary
    else:
        name = executor
    registry = isolated_registry()
    for cls in (CheckSlow, CheckFails):
        registry.register(cls, cls.node_type)
    report = ConformanceReport(name)
    try:
        for rule in RULES:
            if rule in skip:
                continue
            try:
                _RULES[rule](name, registry)
            except _Failed as exc:
                report.failures.append(f"{rule}: {exc}")
            except BaseException as exc:   # noqa: BLE001 (SystemExit too: reported, not raised)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                report.failures.append(f"{rule}: raised {type(exc).__name__}: {exc}")
            else:
                report.passed.append(rule)
    finally:
        if temporary is not None:
            executors.unregister(temporary)
    if report.failures and raise_on_failure:
        raise AssertionError(f"executor {name!r} breaks {len(report.failures)} rule(s):\n  "
                             + "\n  ".join(report.failures))
    return report


def _session(name: str, registry, node_type: str, params=None, **keys):
    node = {"id": "x", "node_type": node_type, "executor": name, **keys}
    if params:
        node["params"] = params
    m = manifest([node], [{"from": "input", "to": "x"}, {"from": "x", "to": "output"}],
                 name=f"check-{name}")
    return Pipeline.from_manifest(m, registry=registry).session()


def _run(session, frames) -> tuple[list, dict]:
    with session as s:
        outs = [o for f in frames for o in s.push(f)] + s.end_of_stream()
        stats = s.stats()
    return [o for o in outs if isinstance(o, NumpyData)], stats


def _accounted(stats: dict) -> None:
    if stats["frames_in"] != stats["frames_out"] + stats["drops"]:
        raise _Failed(f"frames_in {stats['frames_in']} != frames_out {stats['frames_out']} "
                      f"+ drops {stats['drops']}: a frame was lost uncounted")


def _check_order(name: str, registry) -> None:
    frames = _frames(20)
    got, stats = _run(_session(name, registry, "CheckSlow", {"delay_ms": 1}), frames)
    if [o.seq for o in got] != list(range(20)):
        raise _Failed(f"frames came back as seq {[o.seq for o in got]}, not 0..19 in order")
    for o, f in zip(got, frames):
        if o.pts != f.pts or dict(o.metadata) != dict(f.metadata) \
                or not np.array_equal(o.array, f.array):
            raise _Failed(f"frame {f.seq} came back changed (pts, metadata or samples)")
    if stats["drops"] or stats["frames_out"] != 20:
        raise _Failed(f"under block: {stats['drops']} drops, {stats['frames_out']} frames out")
    _accounted(stats)


def _check_drops(name: str, registry) -> None:
    for policy in ("drop_newest", "drop_oldest"):
        got, stats = _run(_session(name, registry, "CheckSlow", {"delay_ms": 150},
                                   queue_size=2, queue_policy=policy), _frames(8))
        seqs = [o.seq for o in got]
        if stats["drops"] < 1:
            raise _Failed(f"{policy}: 8 frames pushed at once into a queue of 2 before a node "
                          f"taking 150 ms each, and no drop counted")
        if seqs != sorted(seqs) or len(seqs) + stats["drops"] != 8:
            raise _Failed(f"{policy}: outputs {seqs} and {stats['drops']} drops for 8 frames")
        node_drops = stats["nodes"]["x"].get("drops")
        if node_drops != stats["drops"]:
            raise _Failed(f"{policy}: the node reports {node_drops} drops, the session "
                          f"{stats['drops']}")
        if policy == "drop_newest" and seqs[:1] != [0]:
            raise _Failed(f"drop_newest lost the first frame (kept {seqs})")
        if policy == "drop_oldest" and seqs[-1:] != [7]:
            raise _Failed(f"drop_oldest lost the newest frame (kept {seqs})")
        _accounted(stats)


def _check_errors(name: str, registry) -> None:
    session = _session(name, registry, "CheckFails", {"at": 2})
    try:
        with session as s:
            for f in _frames(6):
                s.push(f)
            s.end_of_stream()
    except NodeError as exc:
        if not isinstance(exc.__cause__, RemoteNodeError) or "refusing frame 2" not in str(exc):
            raise _Failed(f"under fail: {exc!r} (cause {exc.__cause__!r}), not a NodeError "
                          f"from RemoteNodeError naming the node's ValueError") from None
    else:
        raise _Failed("under fail: a node that raised did not fail the session")
    got, stats = _run(_session(name, registry, "CheckFails", {"at": 2}, on_error="skip"),
                      _frames(6))
    if [o.seq for o in got] != [0, 1, 3, 4, 5] or stats["drops"] != 1 \
            or stats["errors"] != 1:
        raise _Failed(f"under skip: outputs {[o.seq for o in got]}, {stats['drops']} drops, "
                      f"{stats['errors']} errors (want 0,1,3,4,5, one drop, one error)")


def _check_restart(name: str, registry) -> None:
    frames = _frames(8)
    with _session(name, registry, "CheckFails", {"at": 2, "how": "exit"},
                  on_error="restart") as s:
        # Frames 0-2, then a flush (the crash at 2 is noticed by then at the latest), then
        # frames 3-7, which the new worker must take.
        outs = [o for f in frames[:3] for o in s.push(f)] + s.flush()
        outs += [o for f in frames[3:] for o in s.push(f)] + s.end_of_stream()
        stats = s.stats()
    seqs = [o.seq for o in outs if isinstance(o, NumpyData)]
    restarts = stats["nodes"]["x"].get("restarts")
    if restarts != 1 or stats["errors"] != 1:
        raise _Failed(f"{restarts} restarts and {stats['errors']} errors after one crash")
    if seqs != [0, 1, 3, 4, 5, 6, 7] or stats["drops"] != 1:
        raise _Failed(f"outputs {seqs} and {stats['drops']} drops after a crash at frame 2 "
                      f"(want 0, 1, 3..7 and the one lost frame counted)")
    _accounted(stats)


def _check_stats(name: str, registry) -> None:
    _, stats = _run(_session(name, registry, "CheckSlow", queue_size=3), _frames(5))
    node = stats["nodes"]["x"]
    missing = [k for k in _STATS_KEYS if k not in node]
    if missing:
        raise _Failed(f"the node's report lacks {', '.join(missing)}")
    if node["executor"] != name or node["queue"] != {"size": 3, "policy": "block"}:
        raise _Failed(f"executor {node['executor']!r}, queue {node['queue']!r} (want {name!r}, "
                      f"{{'size': 3, 'policy': 'block'}})")
    rt = node["round_trip_us"]
    if set(rt) != {"p50", "p95", "p99", "max"} or not 0 < rt["p50"] <= rt["max"]:
        raise _Failed(f"round_trip_us {rt!r} after 5 frames")
    if not (isinstance(node["drops"], int) and isinstance(node["restarts"], int)):
        raise _Failed("drops and restarts must be integers")


def _check_close(name: str, registry) -> None:
    session = _session(name, registry, "CheckSlow", {"delay_ms": 50})
    node = session.node("x")
    session.push(_frames(1)[0])
    session.close()
    session.close()
    node.teardown()


def _check_drain(name: str, registry) -> None:
    got, stats = _run(_session(name, registry, "CheckSlow", {"delay_ms": 40}, queue_size=8),
                      _frames(6))
    if [o.seq for o in got] != list(range(6)) or stats["drops"]:
        raise _Failed(f"end_of_stream returned with frames {[o.seq for o in got]} out and "
                      f"{stats['drops']} dropped of 6 queued (it must wait for them)")


_RULES = {"order": _check_order, "drops": _check_drops, "errors": _check_errors,
          "restart": _check_restart, "stats": _check_stats, "close": _check_close,
          "drain": _check_drain}
