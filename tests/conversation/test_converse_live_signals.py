"""A live conversation (`converse --realtime`) stopped by SIGINT or SIGTERM: the turns the user
began are reported with `stop_reason`, both JACK streams are closed, exit 130 / 143, no
traceback; as the simulated conversation stops."""

from __future__ import annotations

import os
import signal

import pytest
import yaml

from remotemedia.converse_live import LiveConversation, _ports
from tests.signal_support import CliRun, each_signal, handler_installed
from tests.streaming.device_support import jack_connections_polled
from tests.streaming.device_support import jack_device  # noqa: F401 (fixture)

from .test_conversation import ASSISTANT, TWO_TURNS

pytestmark = [pytest.mark.slow, pytest.mark.device]

# One answered turn, then a user who waits a minute: a signal always lands mid-run.
HELLO_THEN_WAIT = TWO_TURNS.replace("after_ms: 400", "after_ms: 60000")
assert HELLO_THEN_WAIT != TWO_TURNS


def _talking(client: str) -> bool:
    """The conversation is under way: the user's ports and the graph's ports of JACK client
    `client` are connected to each other (done just before the first turn)."""
    conns = jack_connections_polled()
    return sum(1 for port, peers in conns.items() if port.startswith(f"{client}:")
               for peer in peers if peer.startswith(f"{client}:")) >= 2


@each_signal
def test_a_signal_stops_a_live_conversation_with_its_report(jack_device, tmp_path, sig, code,
                                                            reason):
    (tmp_path / "s.yaml").write_text(HELLO_THEN_WAIT)
    dev = f"device:{jack_device.index}"
    client = f"rm-signal-test-{os.getpid()}-{sig}"
    env = {**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack", "REMOTEMEDIA_JACK_CLIENT": client}
    with CliRun(["converse", "-m", ASSISTANT, "-s", "s.yaml", "--realtime", "-i", dev,
                 "-o", dev, "--loopback", "--json"], env=env, cwd=tmp_path) as run:
        run.wait_ready(lambda: _talking(client), "the user's and the graph's ports connected")
        done = run.stop(sig)
    done.assert_clean_stop(sig)     # not 134: JACK did not abort a client left open
    assert f"stopped ({reason})" in done.stderr, done.stderr
    report = done.report()
    assert report["stop_reason"] == reason and report["passed"] is False
    assert report["timing"] == "live" and len(report["turns"]) <= 1, report["turns"]
    assert report["live"]["loopback"] is True
    assert not any(p.startswith(f"{client}:") for p in _ports())


class _StopsBeforeTurn2(LiveConversation):
    """Stops as the signal handler would, once turn 1 is answered (when turn 2 would start),
    noting which JACK ports were open then."""

    def _start(self, user, i, at_sample):
        if i == 1:
            self.open_ports = _ports()
            self.stop("terminated")
            return
        LiveConversation._start(user, i, at_sample)


def test_a_stopped_live_conversation_reports_the_turn_it_finished_and_closes_its_streams(
        jack_device, monkeypatch):
    from remotemedia.io import portaudio
    monkeypatch.setenv("REMOTEMEDIA_AUDIO_SERVER", "jack")
    dev = f"device:{jack_device.index}"
    before = _ports()
    run = _StopsBeforeTurn2(ASSISTANT, yaml.safe_load(HELLO_THEN_WAIT), input_spec=dev,
                            output_spec=dev)
    report = run.run()
    assert report["stop_reason"] == "terminated" and report["passed"] is False
    assert [t["user"] for t in report["turns"]] == ["Hello there."], report["turns"]
    turn = report["turns"][0]
    assert "hello" in turn["heard"].lower() and turn["reply"], turn
    assert turn["voice_to_voice_ms"] is not None, turn
    # The run's four ports (the graph's and the user's) were open at the stop; none is now,
    # though this process goes on.
    client = portaudio._jack_client_name.decode()
    opened = {p for p in run.open_ports - before if p.startswith(client)}
    assert len(opened) >= 4, (client, sorted(run.open_ports - before))
    assert not opened & _ports()



def test_a_signal_before_the_graph_opens_stops_with_no_turn(jack_device, tmp_path):
    (tmp_path / "s.yaml").write_text(HELLO_THEN_WAIT)
    dev = f"device:{jack_device.index}"
    env = {**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"}
    with CliRun(["converse", "-m", ASSISTANT, "-s", "s.yaml", "--realtime", "-i", dev,
                 "-o", dev, "--json"], env=env, cwd=tmp_path) as run:
        # the handler is in place before the models load: the graph is not open yet
        run.wait_ready(lambda: handler_installed(run.proc.pid), "converse's stop handler")
        done = run.stop(signal.SIGTERM)
    done.assert_clean_stop(signal.SIGTERM)
    report = done.report()
    assert report["stop_reason"] == "terminated" and report["turns"] == []
    assert report["passed"] is False
