"""The monitor from outside, as a user meets it: a real headless `remotemedia stream --monitor` in
a subprocess, real unix sockets, real clients (MonitorClient and raw sockets), Prometheus over
real HTTP parsed by prometheus-client's own parser."""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from remotemedia.monitor.client import MonitorClient
from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[2]

#: a gain, and a meter whose readings (one every 5 blocks) are events of the graph
EVENTS_MANIFEST = (DATA / "monitored.yaml").read_text()


class Stream:
    """`remotemedia stream ... --monitor SOCK --json` in a subprocess."""

    def __init__(self, tmp_path: Path, *extra: str, env: dict | None = None,
                 monitor: str | None = "path", duration: str = "60",
                 manifest_text: str = EVENTS_MANIFEST,
                 io: tuple[str, ...] = ("-i", "sine:440", "-o", "null", "--realtime")):
        manifest = tmp_path / "monitored.yaml"
        manifest.write_text(manifest_text)
        self.socket = tmp_path / "run.sock"
        args = [sys.executable, "-m", "remotemedia", "stream", "-m", str(manifest),
                *io, "--duration", duration, "--json",
                "--events", str(tmp_path / "events.jsonl"), *extra]
        if monitor == "path":
            args += ["--monitor", str(self.socket)]
        elif monitor == "default":
            args += ["--monitor"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=tmp_path, env=env)
        self.stderr_lines: list[str] = []

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Read stderr until a line matches (the notes come before any audio)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode()
            if not line:
                raise AssertionError("stream exited early: " + "".join(self.stderr_lines)
                                     + self.proc.stderr.read().decode())
            self.stderr_lines.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"no stderr line matching {pattern!r}")

    def attach(self) -> MonitorClient:
        self.wait_for_line(r"monitor: ")
        return MonitorClient.attach(str(self.socket))

    def finish(self, timeout: float = 30.0) -> tuple[int, dict, str]:
        out, err = self.proc.communicate(timeout=timeout)
        err = "".join(self.stderr_lines) + err.decode()
        lines = out.decode().strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
        return self.proc.returncode, report, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def stream(tmp_path):
    started: list[Stream] = []

    def start(*extra, **kwargs) -> Stream:
        s = Stream(tmp_path, *extra, **kwargs)
        started.append(s)
        return s
    yield start
    for s in started:
        s.kill()


def read_until(client: MonitorClient, predicate, what: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        try:
            msg = client.read(timeout=left)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
        if msg is None:
            raise AssertionError(f"the monitor closed before {what}")
        if predicate(msg):
            return msg


def is_snapshot(msg) -> bool:
    return msg.get("type") == "snapshot" and msg.get("stats") is not None


def test_attach_read_snapshots_and_events_then_stop(stream):
    s = stream()
    with s.attach() as client:
        hello = client.hello
        assert hello["pid"] == s.proc.pid
        assert hello["manifest"] == "monitored"
        assert [n[0] for n in hello["nodes"]] == ["gain", "meter"]
        first = read_until(client, is_snapshot, "a snapshot")
        later = read_until(client, lambda m: is_snapshot(m) and m["stats"]["frames_in"]
                           > first["stats"]["frames_in"] + 10, "frames to advance")
        assert later["seq"] > first["seq"]
        assert later["state"] == "running"
        assert later["stats"]["serialization_events"] == 0
        # the sine generator's amplitude 0.5 at the input, 6 dB less after the gain
        assert later["levels"]["input_peak_dbfs"] == pytest.approx(-6.02, abs=0.05)
        assert later["levels"]["output_peak_dbfs"] == pytest.approx(-12.04, abs=0.05)
        event = read_until(client, lambda m: m.get("type") == "event", "an event")
        assert event["node"] == "meter" and event["event"] == "level"
        assert event["record"]["rms_dbfs"] < 0
        reply = client.request("stop")
        assert reply["type"] == "reply" and reply["ok"] is True
        end = read_until(client, lambda m: m.get("type") == "end", "the end message")
        assert end["state"] == "stopped"
        assert end["stats"]["frames_in"] >= later["stats"]["frames_in"]
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["stop_reason"] == "stopped"
    assert report["frames_in"] == report["frames_out"] > 0
    assert report["monitor"]["clients_total"] == 1
    assert report["monitor"]["snapshots_sent"] > 0
    assert report["monitor"]["events_dropped"] == 0
    assert not s.socket.exists(), "the socket outlived its run"
    # the events went to their file as well as to the monitor
    assert (s.socket.parent / "events.jsonl").read_text().count('"type": "level"') > 0


def test_two_clients_at_once(stream):
    s = stream()
    a = s.attach()
    b = MonitorClient.attach(str(s.socket))
    try:
        for client in (a, b):
            read_until(client, is_snapshot, "a snapshot on each client")
        assert a.request("bypass", on=True)["bypass"] is True
        for client in (a, b):
            read_until(client, lambda m: is_snapshot(m) and m["bypass"] is True,
                       "bypass seen by both clients")
        seen = read_until(b, is_snapshot, "a snapshot")
        assert seen["monitor"]["clients"] == 2
        a.close()                                  # one detaches, the run and the other go on
        after = read_until(b, lambda m: is_snapshot(m) and m["monitor"]["clients"] == 1,
                           "the detach to show")
        assert after["state"] == "running"
        b.send("stop")
        read_until(b, lambda m: m.get("type") == "end", "the end message")
    finally:
        a.close()
        b.close()
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["monitor"]["clients_total"] == 2


def test_a_client_that_never_reads_loses_snapshots_not_frames(stream):
    s = stream()
    s.wait_for_line(r"monitor: ")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    silent.connect(str(s.socket))          # and never reads a byte
    try:
        with MonitorClient.attach(str(s.socket)) as watcher:
            dropped = read_until(watcher, lambda m: is_snapshot(m)
                                 and m["monitor"]["snapshots_dropped"] > 0,
                                 "the silent client's snapshots to be dropped", timeout=40)
            running = dropped["stats"]
            watcher.send("stop")
            read_until(watcher, lambda m: m.get("type") == "end", "the end message")
    finally:
        silent.close()
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["monitor"]["snapshots_dropped"] > 0
    assert report["monitor"]["client_events_dropped"] > 0     # its events went the same way
    assert report["monitor"]["events_dropped"] == 0           # not the run's own queue
    # the audio path did not wait for it: nothing dropped, every frame out, and the engine's
    # worst block far inside its 20 ms budget (a bound only a blocking design would miss)
    assert report["drops"] == 0 and report["frames_in"] == report["frames_out"]
    assert report["frames_in"] >= running["frames_in"]
    assert report["latency_us"]["engine"]["p99"] < 20_000


GARBAGE = [
    (b"garbage\n", "not JSON"),
    (b"[1, 2]\n", "expected a JSON object"),
    (b"{}\n", 'missing "cmd"'),
    (b'{"cmd": "launch"}\n', "unknown command"),
    (b'{"cmd": 7}\n', 'missing "cmd"'),
    (b'{"cmd": "bypass", "on": "yes"}\n', '"on" must be'),
    (b'{"cmd": "record", "action": "pause"}\n', '"action" must be'),
    (b'{"cmd": "stop", "x": NaN}\n', "not strict JSON"),
    (b"\xff\xfe\xfd\n", "not UTF-8"),
    (b'{"cmd": "record", "action": "stop"}\n', "not recording"),
]


def raw_client(s) -> tuple[socket.socket, Any]:
    """A bare socket to the stream's monitor, past its hello; and a line reader on it."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(s.socket))
    raw.settimeout(10)
    reader = raw.makefile("rb")
    assert json.loads(reader.readline())["type"] == "hello"
    return raw, reader


def test_garbage_is_answered_and_survived(stream):
    s = stream()
    s.wait_for_line(r"monitor: ")
    raw, reader = raw_client(s)
    for line, expected in GARBAGE:
        raw.sendall(line)
        while True:
            msg = json.loads(reader.readline())
            if msg["type"] in ("error", "reply"):
                break
        assert msg["type"] == "error", (line, msg)
        assert expected in msg["error"], (line, msg)
    raw.sendall(b'{"cmd": "ping", "id": "p1"}\n')
    while True:
        msg = json.loads(reader.readline())
        if msg["type"] in ("error", "reply"):
            break
    assert msg == {"type": "reply", "cmd": "ping", "id": "p1", "ok": True}
    # a line that never ends: an error, then this client (only) is closed
    raw.sendall(b"x" * (70 * 1024))
    rest = reader.read()
    assert b"line longer than" in rest
    raw.close()
    with MonitorClient.attach(str(s.socket)) as client:
        snap = read_until(client, is_snapshot, "a snapshot after the garbage")
        assert snap["state"] == "running"
        assert snap["monitor"]["bad_commands"] == len(GARBAGE) + 1
        client.send("stop")
        read_until(client, lambda m: m.get("type") == "end", "the end message")
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["drops"] == 0 and report["errors"] == 0


def _private_env(tmp_path: Path) -> dict:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    return {**os.environ, "XDG_RUNTIME_DIR": str(xdg)}


def test_default_socket_is_private_and_listed_by_ps(stream, tmp_path):
    env = _private_env(tmp_path)
    s = stream(monitor="default", env=env)
    path = Path(s.wait_for_line(r"monitor: (\S+)").group(1))
    folder = Path(env["XDG_RUNTIME_DIR"]) / "remotemedia"
    assert path == folder / f"{s.proc.pid}.sock"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.stat(path).st_uid == os.getuid()
    # a stale socket of a run that died is removed by ps
    stale = folder / "999999999.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(stale))
    dead.close()
    ps = subprocess.run([sys.executable, "-m", "remotemedia", "ps", "--json"], env=env,
                        capture_output=True, text=True, timeout=30)
    assert ps.returncode == 0, ps.stderr
    runs = json.loads(ps.stdout)
    assert [r["pid"] for r in runs] == [s.proc.pid]
    assert runs[0]["manifest"] == "monitored" and runs[0]["state"] == "running"
    assert "removed a stale monitor socket" in ps.stderr and not stale.exists()
    # attach by PID, as `tui --attach PID` does
    with MonitorClient.attach(str(path)) as client:
        client.request("stop")
    rc, report, err = s.finish()
    assert rc == 0, err


NOBODY = pwd.getpwnam("nobody").pw_uid if "nobody" in {p.pw_name for p in pwd.getpwall()} \
    else None


def connect_as(uid: int, path: Path) -> str:
    """In a forked child switched to `uid`: connect to `path` and return "EACCES" or the first
    line the server sent. (The interpreter's files may not be readable by that user, so the
    child runs no new program: fork, setgid/setuid, connect, report through a pipe.)"""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # the child: syscalls only, then _exit
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(str(path))
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                out = data.split(b"\n")[0]
            except PermissionError:
                out = b"EACCES"
            os.write(w, out)
        except BaseException as exc:
            os.write(w, f"child failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(os.getuid() != 0 or NOBODY is None,
                    reason="switching to the user nobody needs root")
def test_another_user_is_refused(stream, tmp_path):
    env = _private_env(tmp_path)
    s = stream(monitor="default", env=env)
    path = Path(s.wait_for_line(r"monitor: (\S+)").group(1))
    # the file system refuses: the folder is 0700 and the socket 0600
    assert connect_as(NOBODY, path) == "EACCES"
    with MonitorClient.attach(str(path)) as client:
        client.send("stop")
    assert s.finish()[0] == 0
    # a socket someone made reachable (a shared folder, chmod 666): the peer-credential check
    # still refuses the other user
    import tempfile
    shared = Path(tempfile.mkdtemp(prefix="rm-shared-"))
    try:
        os.chmod(shared, 0o755)
        s2 = stream("--monitor", str(shared / "open.sock"), monitor=None)
        s2.wait_for_line(r"monitor: ")
        os.chmod(shared / "open.sock", 0o666)
        msg = json.loads(connect_as(NOBODY, shared / "open.sock"))
        assert msg["type"] == "error" and "another user" in msg["error"]
        with MonitorClient.attach(str(shared / "open.sock")) as client:
            snap = read_until(client, lambda m: is_snapshot(m)
                              and m["monitor"]["clients_refused"] == 1, "the refusal counted")
            assert snap["state"] == "running"
            client.send("stop")
        rc, report, err = s2.finish()
        assert rc == 0, err
        assert report["monitor"]["clients_refused"] == 1
    finally:
        for leftover in shared.iterdir():
            leftover.unlink()
        shared.rmdir()


def test_prometheus_scrape(stream):
    from prometheus_client.parser import text_string_to_metric_families
    s = stream("--metrics-port", "0")
    url = s.wait_for_line(r"metrics: (http://127\.0\.0\.1:\d+/metrics)").group(1)
    with MonitorClient.attach(str(s.socket)) as client:
        read_until(client, lambda m: m.get("type") == "event", "the first event")
        read_until(client, lambda m: is_snapshot(m) and m["stats"]["frames_in"] >= 30,
                   "30 frames")
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        families = {f.name: f for f in text_string_to_metric_families(body)}

        def value(family, sample_name, **labels):
            for sample in families[family].samples:
                if sample.name == sample_name and all(sample.labels.get(k) == v
                                                      for k, v in labels.items()):
                    return sample.value
            raise AssertionError(f"no {sample_name} {labels} in {family}")

        assert value("remotemedia_frames_in", "remotemedia_frames_in_total") >= 30
        assert value("remotemedia_serialization_events",
                     "remotemedia_serialization_events_total") == 0
        assert value("remotemedia_copies", "remotemedia_copies_total", kind="engine") == 0
        assert value("remotemedia_node_calls", "remotemedia_node_calls_total",
                     node="meter", type="LevelMeter") >= 30
        assert value("remotemedia_events", "remotemedia_events_total", type="level") >= 1
        assert value("remotemedia_running", "remotemedia_running") == 1
        hist = families["remotemedia_engine_latency_seconds"]
        assert hist.type == "histogram"
        buckets = [(float(x.labels["le"]), x.value) for x in hist.samples
                   if x.name.endswith("_bucket")]
        counts = [c for _, c in buckets]
        assert counts == sorted(counts) and buckets[-1][0] == float("inf")
        count = value("remotemedia_engine_latency_seconds",
                      "remotemedia_engine_latency_seconds_count")
        assert count == counts[-1] >= 30
        assert 0 < value("remotemedia_engine_latency_seconds",
                         "remotemedia_engine_latency_seconds_sum") < count * 0.02
        client.send("stop")
    rc, report, err = s.finish()
    assert rc == 0, err


def test_metrics_without_a_socket(stream):
    s = stream("--metrics-port", "0", monitor=None)
    url = s.wait_for_line(r"metrics: (\S+)").group(1)
    deadline = time.monotonic() + 15
    while True:
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        m = re.search(r"^remotemedia_frames_in_total (\S+)$", body, re.M)
        if m and float(m.group(1)) > 5:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    s.proc.terminate()
    rc, report, err = s.finish()
    assert rc == 143, err
    assert report["monitor"]["snapshots_sent"] == 0


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_bad_monitor_arguments(stream, tmp_path):
    manifest = ROOT / "manifests" / "passthrough.yaml"
    base = ["stream", "-m", str(manifest), "-i", "sine", "-o", "null", "--duration", "0.1"]
    cases = [
        (["--monitor", str(tmp_path / "no" / "such" / "dir.sock")], "does not exist"),
        (["--metrics-port", "http"], "expected a port number"),
        (["--metrics-port", "70000"], "expected a port number"),
        (["--monitor", str(manifest)], "exists and is not a socket"),
    ]
    for extra, expected in cases:
        r = run_cli(*base, *extra)
        assert r.returncode == 2, (extra, r.stderr)
        assert expected in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        r = run_cli(*base, "--metrics-port", str(taken.getsockname()[1]))
        assert r.returncode == 2 and "cannot listen on 127.0.0.1" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    finally:
        taken.close()
    # a socket a live run is listening on is not taken over
    s = stream()
    s.wait_for_line(r"monitor: ")
    r = run_cli(*base, "--monitor", str(s.socket))
    assert r.returncode == 2 and "another run is listening there" in r.stderr, r.stderr
    with MonitorClient.attach(str(s.socket)) as client:      # and that run is undisturbed
        assert read_until(client, is_snapshot, "a snapshot")["state"] == "running"
        client.send("stop")
    assert s.finish()[0] == 0
    env = _private_env(tmp_path)
    r = run_cli("tui", "--attach", "999999999", env=env)
    assert r.returncode == 2 and "no monitor socket for PID 999999999" in r.stderr, r.stderr
    r = run_cli("tui", "--attach", env=env)
    assert r.returncode == 2 and "no running stream to attach to" in r.stderr, r.stderr
    for args, expected in ((["tui", "--keep-running"], "--keep-running goes with --spawn"),
                           (["tui", "--spawn", "--attach", "1"], "pick one")):
        r = run_cli(*args, env=env)
        assert r.returncode == 2 and expected in r.stderr, r.stderr
    r = run_cli("ps", env=env)
    assert r.returncode == 0 and "no running streams" in r.stdout


FAILING_NODES = """
from remotemedia.engine.node import Node


class FailsSometimes(Node):
    node_type = "FailsSometimes"

    def setup(self):
        self.count = 0

    def process(self, frame):
        self.count += 1
        if self.count % 25 == 0:
            raise RuntimeError("every 25th block fails")
        return frame
"""

FAILING_MANIFEST = """\
version: v1
metadata: {name: flaky}
audio: {sample_rate: 48000, block_size: 960, channels: 1}
nodes:
  - {id: flaky, node_type: rm_failing_nodes.FailsSometimes, on_error: skip}
connections:
  - {from: input, to: flaky}
  - {from: flaky, to: output}
"""


def test_node_errors_and_drops_reach_the_log_as_events(stream, tmp_path):
    (tmp_path / "rm_failing_nodes.py").write_text(FAILING_NODES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))}
    s = stream("--allow-import", "rm_failing_nodes", env=env, manifest_text=FAILING_MANIFEST)
    with s.attach() as client:
        error = read_until(client, lambda m: m.get("type") == "event"
                           and m["event"] == "node_error", "a node_error event")
        assert error["node"] == "flaky" and error["record"]["errors"] >= 1
        drops = read_until(client, lambda m: m.get("type") == "event"
                           and m["event"] == "drops", "a drops event")
        assert drops["record"]["count"] >= 1
        client.send("stop")
        read_until(client, lambda m: m.get("type") == "end", "the end message")
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["errors"] >= 1 and report["nodes"]["flaky"]["errors"] >= 1


def test_stop_then_close_at_once_still_stops(stream):
    """A client that sends stop and closes with messages still unread (a TUI quitting): the
    server may meet the closed socket while writing before it reads the command; the command
    is carried out all the same."""
    import select
    s = stream()
    s.wait_for_line(r"monitor: ")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(s.socket))
    ready, _, _ = select.select([raw], [], [], 10)   # the hello is waiting, unread
    assert ready
    raw.sendall(b'{"cmd": "stop"}\n')
    raw.close()
    rc, report, err = s.finish()
    assert rc == 0, err
    assert report["stop_reason"] == "stopped" and report["monitor"]["commands"] == 1


def test_a_client_starts_and_stops_a_recording_of_the_running_stream(stream, tmp_path):
    from remotemedia.record import Recording
    s = stream()
    s.wait_for_line(r"monitor: ")
    raw, reader = raw_client(s)

    def command(obj):
        raw.sendall(json.dumps(obj).encode() + b"\n")
        while True:
            msg = json.loads(reader.readline())
            if msg["type"] in ("error", "reply"):
                return msg

    target = tmp_path / "rec"
    while True:                       # until the run has started (a loaded machine is slow)
        msg = json.loads(reader.readline())
        if msg["type"] == "snapshot" and msg.get("stats") is not None:
            break
    started = command({"cmd": "record", "action": "start", "path": str(target)})
    assert started["type"] == "reply", started
    again = command({"cmd": "record", "action": "start"})
    assert again["type"] == "error" and "already recording" in again["error"]
    while True:                       # until the recorder has seen some blocks
        msg = json.loads(reader.readline())
        if msg["type"] == "snapshot" and msg.get("stats", {}).get("frames_in", 0) > 0:
            break
    stopped = command({"cmd": "record", "action": "stop"})
    assert stopped["type"] == "reply", stopped
    raw.close()
    rec = Recording(target)
    assert (target / "input.wav").exists() and len(rec.timeline["seq"]) >= 1
