"""The servers' edges, on real loopback sockets: a burst of attaches, a client that retries a
busy or starting socket, the metrics server's bounds on connections, threads and time (a
slowloris client), and what `--metrics-host` says about where the metrics go."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia import prometheus as metrics_http
from remotemedia.engine.errors import UsageError
from remotemedia.prometheus import MetricsServer, exposure_warning, format_url
from remotemedia.monitor import protocol
from remotemedia.monitor.client import MonitorClient
from remotemedia.monitor.clients import MAX_CLIENTS
from remotemedia.monitor.server import Monitor
from remotemedia.testing import wait_until
from tests.monitor.test_monitor_stream import Stream, is_snapshot, read_until


def test_a_burst_of_200_attaches_all_get_their_hello(tmp_path):
    s = Stream(tmp_path)
    try:
        s.wait_for_line(r"monitor: ")
        n = 200
        barrier = threading.Barrier(n)
        results: list = [None] * n

        def attach(i):
            barrier.wait()
            try:
                client = MonitorClient.attach(str(s.socket))
                results[i] = client
            except Exception as exc:            # noqa: BLE001 - asserted below, by kind
                results[i] = exc
        threads = [threading.Thread(target=attach, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        failed = [r for r in results if not isinstance(r, MonitorClient)]
        assert not failed, failed[:3]
        assert all(r.hello["type"] == "hello" for r in results)
        for r in results:
            r.close()
        # beyond MAX_CLIENTS at once: the connection is taken, refused in words, and counted
        raws = []
        for _ in range(MAX_CLIENTS + 20):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.settimeout(30)
            raw.connect(str(s.socket))          # no retry: the listen backlog holds them
            raws.append(raw)
        firsts = [json.loads(raw.makefile("rb").readline()) for raw in raws]
        refused = [m for m in firsts if m["type"] == "error"]
        assert len(refused) >= 20 and all("clients are attached" in m["error"] for m in refused)
        assert all(m["type"] == "hello" for m in firsts if m["type"] != "error")
        for raw in raws:
            raw.close()
        with MonitorClient.attach(str(s.socket)) as client:
            snap = read_until(client, lambda m: is_snapshot(m)
                              and m["monitor"]["clients"] == 1, "the others to be gone")
            client.send("stop")
        rc, report, err = s.finish()
    finally:
        s.kill()
    assert rc == 0, err
    assert snap["monitor"]["clients_over_limit"] == len(refused)
    assert report["drops"] == 0


def test_connect_retries_a_socket_that_is_starting(tmp_path):
    path = tmp_path / "starting.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))                     # bound, not yet listening: ECONNREFUSED
    timer = threading.Timer(0.2, listener.listen, args=(4,))
    timer.start()
    try:
        s = protocol.connect(path, refused_retry_s=60)    # (however late the timer runs)
        s.close()
    finally:
        timer.join()
        listener.close()
    # and gives up within its bound on a socket that never listens
    path2 = tmp_path / "dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path2))
    try:
        t0 = time.monotonic()
        with pytest.raises(UsageError, match="nothing is listening"):
            protocol.connect(path2)
        assert time.monotonic() - t0 < 30
    finally:
        dead.close()


def _fill_backlog(path) -> list[socket.socket]:
    """Connections that fill a listener's backlog until the next one gets EAGAIN."""
    filled = []
    while True:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(str(path))
        except BlockingIOError:
            c.close()
            return filled
        filled.append(c)
        assert len(filled) < 1000


def test_connect_retries_a_full_backlog_and_gives_up_within_its_bound(tmp_path):
    path = tmp_path / "busy.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    filled = _fill_backlog(path)
    try:
        assert protocol.socket_listening(path)   # busy is not gone: ps keeps its socket
        with pytest.raises(UsageError, match="busy"):
            protocol.connect(path, retry_s=0.3)

        def drain():
            time.sleep(0.2)
            for _ in range(len(filled) + 1):
                conn, _ = listener.accept()
                conn.close()
        thread = threading.Thread(target=drain)
        thread.start()
        s = protocol.connect(path, retry_s=60)   # waits for the accepts, then gets in
        thread.join(30)
        s.close()
    finally:
        for c in filled:
            c.close()
        listener.close()


class _IdleRunner:
    state = "running"
    session = None


def _metrics_server(monkeypatch, deadline_s: float):
    monkeypatch.setattr(metrics_http, "REQUEST_DEADLINE_S", deadline_s)
    monitor = Monitor(runner=None)
    return monitor, MetricsServer(_IdleRunner(), monitor, 0)


@pytest.fixture
def metrics(monkeypatch):
    monitor, server = _metrics_server(monkeypatch, 60.0)
    yield server
    server.close()
    monitor.close()


@pytest.fixture
def quick_metrics(monkeypatch):
    """A metrics server that cuts a connection off after 1.5 s."""
    monitor, server = _metrics_server(monkeypatch, 1.5)
    yield server
    server.close()
    monitor.close()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


class _Slowloris:
    """`n` connections that send a request's first lines and then a byte every 0.3 s, never
    idle long enough for a read timeout, never finishing."""

    def __init__(self, port: int, n: int):
        self.conns = []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), timeout=30)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            self.conns.append(c)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self):
        while not self._stop.is_set():
            for c in self.conns:
                try:
                    c.send(b"X")
                except OSError:
                    pass
            self._stop.wait(0.3)

    def wait_closed_by_server(self) -> None:
        for c in self.conns:
            try:
                while c.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.conns:
            c.close()


def test_busy_handlers_bound_the_threads_and_refuse_more_at_once(metrics):
    threads_before = threading.active_count()
    assert _status(metrics.url) == 200
    slow = _Slowloris(metrics.port, metrics_http.MAX_CONNECTIONS)
    try:
        wait_until(lambda: len(metrics._server.active) == metrics_http.MAX_CONNECTIONS,
                   "every handler to be taken", timeout=60)
        # every handler is taken: the next connection is answered 503 at once, not queued
        assert _status(metrics.url) == 503
        assert metrics.counts()["refused_busy"] >= 1
        assert threading.active_count() <= threads_before + metrics_http.MAX_CONNECTIONS + 1
    finally:
        slow.close()


def test_slowloris_clients_are_cut_off_at_the_deadline(quick_metrics):
    slow = _Slowloris(quick_metrics.port, metrics_http.MAX_CONNECTIONS)
    try:
        slow.wait_closed_by_server()             # the deadline ends each of them
        wait_until(lambda: not quick_metrics._server.active, "the handlers to be free",
                   timeout=60)
    finally:
        slow.close()
    assert quick_metrics.counts()["timed_out"] == metrics_http.MAX_CONNECTIONS
    assert _status(quick_metrics.url) == 200


def test_a_request_is_read_up_to_its_bound_and_no_further(metrics):
    """Header lines of 60 KiB without end: the server parses MAX_REQUEST_BYTES, answers and
    closes; the client cannot make it read and parse megabytes (http.client alone would take
    100 such lines, 6 MB)."""
    c = socket.create_connection(("127.0.0.1", metrics.port), timeout=30)
    sent = 0
    cap = 4 * 1024 * 1024
    try:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        line = b"X-Padding: " + b"p" * 60_000 + b"\r\n"
        with pytest.raises(OSError):
            while sent < cap:
                c.sendall(line)
                sent += len(line)
    finally:
        c.close()
    assert sent < cap
    assert _status(metrics.url) == 200


def test_ipv6_loopback_url_has_brackets_and_no_warning():
    monitor = Monitor(runner=None)
    try:
        server = MetricsServer(_IdleRunner(), monitor, 0, host="::1")
    except UsageError as exc:
        monitor.close()
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        assert server.warning is None
        assert _status(server.url) == 200
    finally:
        server.close()
        monitor.close()


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.integers(1, 65535))
def test_any_address_gives_a_url_that_parses_back(address, port):
    url = urllib.parse.urlsplit(format_url(str(address), port))
    assert ipaddress.ip_address(url.hostname) == address and url.port == port


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_every_address_but_loopback_is_warned_about_in_one_line(address):
    warning = exposure_warning(str(address))
    if address.is_loopback:
        assert warning is None
    else:
        assert warning and "\n" not in warning and "without authentication" in warning


def test_the_stream_warns_on_stderr_for_a_non_loopback_host():
    for host in ("0.0.0.0", "::"):
        assert "every network interface" in exposure_warning(host)
    assert exposure_warning("localhost") is None
    assert exposure_warning("127.0.0.1") is None


def test_cli_prints_a_bracketed_ipv6_url(tmp_path):
    s = Stream(tmp_path, "--metrics-port", "0", "--metrics-host", "::1", monitor=None,
               duration="2")
    try:
        line = s.wait_for_line(r"metrics: (\S+)")
        url = line.group(1)
        rc, report, err = s.finish()
    finally:
        s.kill()
    if rc == 2 and "cannot listen" in err:
        pytest.skip("no IPv6 loopback here")
    assert rc == 0, err
    assert url.startswith("http://[::1]:") and url.endswith("/metrics")
    assert "warning" not in err


def test_start_observers_says_the_warning_in_one_line_on_stderr(monkeypatch, capsys, tmp_path):
    """The stream command's wiring: MetricsServer.warning reaches stderr, one line, after the
    URL (the warning itself is made to fire here: binding beyond loopback is not for tests)."""
    import argparse

    from remotemedia.cli.observe import start_observers
    from remotemedia.engine.session import Pipeline
    from remotemedia.io.synth import SineSource
    from remotemedia.io.virtual import NullSink
    from remotemedia.runner import StreamRunner
    from tests.conftest import MANIFESTS
    monkeypatch.setattr(metrics_http, "exposure_warning",
                        lambda host: f"warning: --metrics-host {host}: served to the network")
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    fmt = pipeline.manifest.audio
    runner = StreamRunner(pipeline, SineSource(fmt), NullSink(fmt))
    args = argparse.Namespace(monitor=None, metrics_port=0, metrics_host="127.0.0.1",
                              manifest=str(MANIFESTS / "passthrough.yaml"))
    observers = start_observers(args, runner, "sine", "null")
    try:
        err = capsys.readouterr().err.splitlines()
    finally:
        observers.close(None)
    assert err[0].startswith("remotemedia: metrics: http://127.0.0.1:")
    assert err[1] == "remotemedia: warning: --metrics-host 127.0.0.1: served to the network"
    assert len(err) == 2
