"""The monitor's pieces without a socket: the wire's command parser (properties over any
bytes and any JSON), the latency histograms it folds for Prometheus, the audio thread's bounded
event hand-over; and that Resample leaves no soxr object for interpreter shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.data import JsonData
from remotemedia.engine.counters import RING_SIZE, LatencyRing
from remotemedia.monitor import protocol
from remotemedia.monitor.protocol import ProtocolError
from remotemedia.monitor.latency_histogram import LatencyHistogram
from remotemedia.monitor.server import Monitor

ROOT = Path(__file__).resolve().parents[2]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_to_an_object_or_a_protocol_error(line):
    try:
        value = protocol.decode(line)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(value, dict)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["cmd", "on", "action", "path", "id"]) | st.text(),
                       json_values | st.sampled_from(list(protocol.COMMANDS)), max_size=4))
def test_any_object_is_a_valid_command_or_a_protocol_error(message):
    line = json.dumps(message).encode()
    try:
        name, args = protocol.parse_command(protocol.decode(line))
    except ProtocolError as exc:
        assert str(exc)
        return
    assert name in protocol.COMMANDS and message["cmd"] == name
    if name == "bypass":
        assert args["on"] in (None, True, False)
    if name == "record":
        assert args["action"] in ("start", "stop")


def test_histogram_folds_every_value_once_and_counts_what_the_ring_lost():
    ring = LatencyRing()
    hist = LatencyHistogram((1e-5, 1e-4, 1e-3))
    for ns in (5_000, 50_000, 500_000, 5_000_000):          # one per bucket, +Inf last
        ring.add(ns)
    hist.fold(ring)
    hist.fold(ring)                                           # nothing new: nothing added
    assert hist.counts.tolist() == [1, 1, 1, 1]
    assert hist.cumulative() == [("1e-05", 1), ("0.0001", 2), ("0.001", 3), ("+Inf", 4)]
    assert hist.sum_s == pytest.approx(5.555e-3)
    for _ in range(RING_SIZE + 10):                           # more than the ring holds
        ring.add(5_000)
    hist.fold(ring)
    assert hist.missed == 10 and hist.total == 4 + RING_SIZE
    ring.reset()                                              # `r`: the ring starts over
    ring.add(50_000)
    hist.fold(ring)
    assert hist.total == 5 + RING_SIZE and hist.counts[1] == 2


def test_events_beyond_the_queue_are_dropped_and_counted():
    monitor = Monitor(runner=None, max_events=4)
    try:
        for i in range(6):
            monitor.post_event(JsonData({"type": "level", "node": "m", "i": i}))
        assert monitor.events_posted == 4 and monitor.events_dropped == 2
        lines = monitor._drain_events()
        assert [json.loads(line)["record"]["i"] for line in lines] == [0, 1, 2, 3]
        assert monitor.events_by_type["level"] == 4
    finally:
        monitor.close()


LEAK = """
import gc, sys
import numpy as np
from remotemedia.engine.session import Pipeline
s = Pipeline.from_manifest(sys.argv[1]).session()
s.push(np.zeros(960, np.float32))
s.close()
s.cycle = s
gc.freeze()        # as the TUI does: frozen objects are not collected, even at exit
"""


def test_a_closed_session_leaves_no_soxr_stream_for_shutdown():
    """The TUI keeps its last (closed) session to the end and freezes the collector; soxr's
    nanobind module then found a live stream at shutdown and printed ~20 'leaked' lines."""
    r = subprocess.run([sys.executable, "-c", LEAK, str(ROOT / "manifests" / "voice.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "leaked" not in r.stderr, r.stderr


def test_messages_are_strict_json_even_with_non_finite_values():
    line = protocol.encode({"type": "snapshot", "levels": {"peak": float("nan"),
                                                           "rms": float("-inf"), "ok": 1.5}})
    text = line.decode()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("\n")
    value = json.loads(text, parse_constant=lambda name: pytest.fail(name))
    assert value["levels"] == {"peak": None, "rms": None, "ok": 1.5,
                               "non_finite": ["peak", "rms"]}


class _BrokenRunner:
    """A runner whose session cannot be read: every tick of the monitor raises."""

    state = "running"
    realtime = False

    @property
    def session(self):
        raise RuntimeError("report read mid-teardown")


def test_the_monitor_thread_survives_its_own_errors_and_counts_them():
    import time
    monitor = Monitor(_BrokenRunner(), hz=20).start()
    try:
        deadline = time.monotonic() + 10
        while monitor.internal_errors < 2:
            assert time.monotonic() < deadline, "no error counted"
            time.sleep(0.02)
        assert monitor._thread.is_alive()
        assert monitor.counts()["internal_errors"] >= 2
    finally:
        monitor.close()
    assert not monitor._thread.is_alive()


@settings(max_examples=15, deadline=None)
@given(st.sets(st.integers(0, 255), max_size=4), st.booleans())
def test_a_client_that_hung_up_never_takes_a_place_of_the_limit(closed, shut_only_writes):
    """A full monitor whose select() has not yet served some clients' EOF takes a new client
    in their place (a CI run refused one after 276 clients had closed), after carrying out
    what they sent last; it refuses only when all MAX_CLIENTS are still there."""
    import socket

    from remotemedia.monitor.clients import MAX_CLIENTS
    class Runner:
        session = None
        stops: list = []

        def stop(self, why):
            self.stops.append(why)

    monitor = Monitor(runner=Runner())
    monitor._hello_line = b'{"type": "hello"}\n'   # the hello's content is not what is tested
    peers = []
    try:
        for _ in range(MAX_CLIENTS):
            ours, theirs = socket.socketpair()
            monitor._admit(ours)
            peers.append(theirs)
        for i in closed:
            if shut_only_writes:
                peers[i].shutdown(socket.SHUT_WR)
            else:
                peers[i].sendall(b'{"cmd": "stop"}\n')     # a TUI that quits: stop, close
                peers[i].close()
        ours, theirs = socket.socketpair()
        peers.append(theirs)
        monitor._admit(ours)
        assert monitor.clients_over_limit == (0 if closed else 1)
        assert len(monitor._clients) == MAX_CLIENTS - len(closed) + (1 if closed else 0)
        first = theirs.recv(65536).split(b"\n")[0]
        assert json.loads(first)["type"] == ("hello" if closed else "error")
        # what a departed client sent last is carried out, as on any departure
        assert len(Runner.stops) == (0 if shut_only_writes else len(closed))
    finally:
        for client in list(monitor._clients.values()):
            monitor._drop_client(client)
        for peer in peers:
            peer.close()
        monitor._selector.close()
