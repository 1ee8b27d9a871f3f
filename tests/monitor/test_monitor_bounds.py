"""What one client may cost a run, from outside: a client that floods the monitor with commands
and never reads (on a live run against JACK), a client that floods and reads every reply, and
late attaches to a run that has already emitted thousands of events (the hello and the final
`end` are never dropped)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from remotemedia.monitor.client import MonitorClient
from tests.monitor.test_monitor_stream import Stream, is_snapshot, read_until
from tests.streaming.device_support import load_allowance, require_jack

#: a LevelMeter reading on every 1 ms block: a thousand events a second in real time
CHATTY_MANIFEST = """\
version: v1
metadata: {name: chatty}
audio: {sample_rate: 48000, block_size: 48, channels: 1}
nodes:
  - {id: meter, node_type: LevelMeter, params: {every: 1}}
connections:
  - {from: input, to: meter}
  - {from: meter, to: output}
"""


def _flood(path: Path, lines: int) -> tuple[socket.socket, threading.Thread]:
    """A client that writes `lines` snapshot commands in one go and never reads (the writing
    on a thread: sendall blocks while the monitor throttles it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    payload = b'{"cmd": "snapshot"}\n' * lines

    def send():
        try:
            sock.sendall(payload)
        except OSError:
            pass
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return sock, thread


def _jack_stream(tmp_path: Path, name: str) -> Stream:
    """`stream --monitor` on JACK's own device, in and out, for 8 s."""
    folder = tmp_path / name
    folder.mkdir()
    return Stream(folder, env={**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"}, duration="8",
                  io=("-i", "device:system", "-o", "device:system"))


@pytest.mark.device
def test_a_flooding_client_costs_a_live_jack_run_no_blocks(tmp_path):
    """Two runs on the JACK server at the same time, one with an idle client and one with a
    client writing 20,000 snapshot commands in one go and never reading. The monitor thread
    never works for long at a stretch (before the bounds: about a second per 64 KiB read,
    20-30 drops and as many xruns), and the flooded run loses no more blocks than the idle one
    beside it, within what a loaded machine costs either (load_allowance)."""
    require_jack()
    idle = _jack_stream(tmp_path, "idle")
    flooded = _jack_stream(tmp_path, "flooded")
    clients = []
    try:
        for s in (idle, flooded):
            s.wait_for_line(r"monitor: ")
        idle_client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle_client.connect(str(idle.socket))
        clients.append(idle_client)
        flooder, sender = _flood(flooded.socket, 20_000)
        clients.append(flooder)
        results = [s.finish(timeout=60) for s in (idle, flooded)]
    finally:
        for c in clients:
            c.close()
        for s in (idle, flooded):
            s.kill()
    (rc_idle, idle_report, err_idle), (rc, report, err) = results
    assert rc_idle == 0, err_idle
    assert rc == 0, err
    mon = report["monitor"]
    # no stretch of monitor work as long as 5 blocks (bounded: about a millisecond)
    assert mon["busy_max_s"] < 0.1, mon
    frames = report["frames_in"]
    assert report["drops"] <= idle_report["drops"] + load_allowance(frames), \
        (report, idle_report)
    assert sum(report["xruns"].values()) <= sum(idle_report["xruns"].values()) \
        + load_allowance(frames), (report["xruns"], idle_report["xruns"])
    assert frames == report["frames_out"] + report["drops"] + report["in_flight"]
    # the flood reached the monitor, and was held back
    assert mon["commands"] >= 16 and mon["throttled_unread"] + mon["throttled_budget"] >= 1
    assert mon["commands"] < 20_000


def test_a_client_that_floods_and_reads_gets_every_reply_in_order(tmp_path):
    s = Stream(tmp_path)
    try:
        s.wait_for_line(r"monitor: ")
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(s.socket))
        raw.settimeout(30)
        n = 600
        lines = b"".join(json.dumps({"cmd": "snapshot" if i % 2 else "ping", "id": i}).encode()
                         + b"\n" for i in range(n))
        sender = threading.Thread(target=raw.sendall, args=(lines,), daemon=True)
        sender.start()
        reader = raw.makefile("rb")
        assert json.loads(reader.readline())["type"] == "hello"
        ids = []
        while len(ids) < n:
            msg = json.loads(reader.readline())
            if msg["type"] in ("reply", "error"):
                assert msg["type"] == "reply", msg
                if msg["cmd"] == "snapshot":
                    assert msg["snapshot"]["type"] == "snapshot"
                ids.append(msg["id"])
        assert ids == list(range(n))          # none lost, none reordered
        raw.sendall(b'{"cmd": "stop"}\n')
        sender.join(10)
        raw.close()
        rc, report, err = s.finish()
    finally:
        s.kill()
    assert rc == 0, err
    # 600 commands at once are more than a tick serves: the client waited, counted
    assert report["monitor"]["throttled_budget"] >= 1
    assert report["monitor"]["commands"] == n + 1
    assert report["drops"] == 0


def test_attaching_after_thousands_of_events_still_says_hello(tmp_path):
    s = Stream(tmp_path, manifest_text=CHATTY_MANIFEST, duration="120")
    try:
        first = s.attach()
        with first:
            seen = read_until(first, lambda m: is_snapshot(m)
                              and m["monitor"]["events_posted"] >= 3000, "3,000 events",
                              timeout=90)
            with MonitorClient.attach(str(s.socket)) as late:
                assert late.hello["type"] == "hello" and late.hello["manifest"] == "chatty"
                # then the recent events, all of them, before anything else
                backlog = [late.read(timeout=10) for _ in range(200)]
                assert [m["type"] for m in backlog] == ["event"] * 200
            # one that reads nothing while the events pile up loses some of them, not `end`
            with MonitorClient.attach(str(s.socket)) as lagging:
                dropped = seen["monitor"]["client_events_dropped"]
                read_until(first, lambda m: is_snapshot(m)
                           and m["monitor"]["client_events_dropped"] > dropped + 100,
                           "the lagging client's events to be dropped", timeout=60)
                first.send("stop")
                read_until(first, lambda m: m.get("type") == "end", "the end message")
                end = read_until(lagging, lambda m: m.get("type") == "end", "the end message",
                                 timeout=30)
                assert end["state"] == "stopped"
        rc, report, err = s.finish()
    finally:
        s.kill()
    assert rc == 0, err
    assert report["monitor"]["events_posted"] >= 3000
    assert report["monitor"]["clients_total"] == 3


def test_ps_lists_a_run_that_has_emitted_thousands_of_events(tmp_path):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(xdg)}
    s = Stream(tmp_path, manifest_text=CHATTY_MANIFEST, duration="120", monitor="default",
               env=env)
    try:
        path = Path(s.wait_for_line(r"monitor: (\S+)").group(1))
        with MonitorClient.attach(str(path)) as client:
            read_until(client, lambda m: is_snapshot(m)
                       and m["monitor"]["events_posted"] >= 3000, "3,000 events", timeout=90)
            ps = subprocess.run([sys.executable, "-m", "remotemedia", "ps", "--json"],
                                env=env, capture_output=True, text=True, timeout=60)
            client.send("stop")
        assert ps.returncode == 0, ps.stderr
        runs = json.loads(ps.stdout)
        assert [(r["pid"], r["manifest"], r["state"]) for r in runs] \
            == [(s.proc.pid, "chatty", "running")]
        rc, report, err = s.finish()
    finally:
        s.kill()
    assert rc == 0, err


def test_a_client_that_does_not_read_its_replies_is_throttled_and_its_leftovers_bounded(
        tmp_path):
    s = Stream(tmp_path)
    try:
        s.wait_for_line(r"monitor: ")
        flooder, sender = _flood(s.socket, 20_000)
        with MonitorClient.attach(str(s.socket)) as watcher:
            read_until(watcher, lambda m: is_snapshot(m)
                       and m["monitor"]["throttled_unread"] >= 1,
                       "the flooder to be throttled for not reading", timeout=60)
            # it leaves with thousands of commands unread: a bounded few are run, the rest
            # counted (its `stop`, had it sent one last, would be among the few)
            flooder.shutdown(socket.SHUT_RDWR)      # (close() alone waits for its sender)
            flooder.close()
            snap = read_until(watcher, lambda m: is_snapshot(m)
                              and m["monitor"]["clients"] == 1, "the flooder to be gone",
                              timeout=60)
            assert snap["state"] == "running"
            watcher.send("stop")
            read_until(watcher, lambda m: m.get("type") == "end", "the end message")
        sender.join(30)
        rc, report, err = s.finish()
    finally:
        s.kill()
    assert rc == 0, err
    mon = report["monitor"]
    assert mon["commands_unserved"] > 0
    assert mon["commands"] + mon["commands_unserved"] < 20_000
    assert report["drops"] == 0
