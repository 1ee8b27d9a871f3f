"""EchoCancel live on the JACK dummy server: the graph's own output looped back into its input
(jack_connect, the real device path: PortAudio, the duplex stream, the output queue), so the
microphone hears exactly what the graph played, one device round trip plus the output queue
later. The canceller's reference is what the graph plays (a feedback connection from the node
that feeds the output); the device's DAC and ADC times place it where it sounded
(engine/playclock.py, DeviceSink.play_clock), and the canceller converges. By its pts alone,
the same reference reaches the canceller after the near block it belongs to and never meets
its echo: in the comparison run the reference is missing for every near block."""

from __future__ import annotations

import time

import numpy as np
import pytest

from remotemedia.engine.node import Node
from remotemedia.engine.session import Pipeline
from remotemedia.runner import StreamRunner
from remotemedia.testing.registry import isolated_registry
from tests.echo.room_audio import BLOCK, RATE, bot_speech, needs_echo
from tests.streaming.device_support import jack_device, jack_ports, loop_back  # noqa: F401

pytestmark = [pytest.mark.device, needs_echo]

SECONDS = 10.0
#: after this (media time, s) the canceller has had the bot's speech long enough to converge
SETTLED_S = 4.0


class Bot(Node):
    """The bot's voice, whatever it hears: block k of a spoken text (looped), carrying the
    timing of the block it answers (so the output's seq is the input's)."""

    node_type = "Bot"
    accepts = frozenset({"numpy", "json"})

    def setup(self):
        self.voice = bot_speech()
        self.at = 0

    def process(self, frame):
        if frame.kind != "numpy":
            return frame                   # the canceller's events go on to the run
        n = frame.array.shape[0]
        if self.at + n > self.voice.shape[0]:
            self.at = 0
        out = frame.with_array(self.voice[self.at:self.at + n])
        self.at += n
        return out


def manifest(align: str) -> dict:
    return {
        "version": "v1", "metadata": {"name": "aec-loopback"},
        "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
        "nodes": [{"id": "aec", "node_type": "EchoCancel",
                   "params": {"report_blocks": 25, "align": align}},
                  {"id": "bot", "node_type": "Bot"}],
        "connections": [{"from": "input", "to": "aec", "input": "mic"},
                        {"from": "aec", "to": "bot"},
                        {"from": "bot", "to": "output"},
                        {"from": "bot", "to": "aec", "input": "reference"}],
    }


def run_looped(device, align: str, mode: str = "queued") -> tuple[list[dict], dict]:
    from remotemedia.io.devices import DeviceSink, DeviceSource
    reg = isolated_registry()
    reg.register(Bot, "Bot")
    pipeline = Pipeline.from_manifest(manifest(align), registry=reg)
    m = pipeline.manifest
    events: list[dict] = []
    runner = StreamRunner(pipeline, DeviceSource(m.audio, device.index, mode=mode),
                          DeviceSink(m.output_format, device.index), duration=SECONDS,
                          measure_levels=True,
                          on_event=lambda e: events.append(e.value)
                          if e.kind == "json" and e.value.get("type") == "echo" else None)
    before = jack_ports()
    wired = []

    def connect():                      # the stream is open: its ports exist
        wired.extend(own_ports(before))
        loop_back(*wired)
    runner.on_open = connect
    stats = runner.run()
    # the loop carried the output back (not another client's ports on the shared server)
    assert runner.levels.input_peak_max_dbfs > -30.0, (wired, runner.levels)
    return events, stats


def own_ports(before: set[str], timeout: float = 5.0) -> tuple[str, str]:
    """Our stream's input and output port: of the JACK clients with both an input and an
    output port that appeared since `before`, the one (the server is shared: another test
    process may open a stream meanwhile); when there are several, the one with our PortAudio
    client's name."""
    from remotemedia.io import portaudio
    ours = portaudio._jack_client_name.decode()
    deadline = time.monotonic() + timeout
    while True:
        clients: dict[str, dict[str, list]] = {}
        for port in jack_ports() - before:
            client, name = port.rsplit(":", 1)
            kind = "in" if name.startswith("in_") else "out" if name.startswith("out_") else ""
            if kind:
                clients.setdefault(client, {"in": [], "out": []})[kind].append(port)
        full = {c: v for c, v in clients.items() if v["in"] and v["out"]}
        pick = next(iter(full)) if len(full) == 1 else ours if ours in full else None
        if pick is not None:
            return sorted(full[pick]["in"])[0], sorted(full[pick]["out"])[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"cannot tell our stream's ports among {sorted(clients)}")
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_live_the_reference_is_placed_by_the_device_clocks_and_the_canceller_converges(
        jack_device, mode):  # noqa: F811
    events, stats = run_looped(jack_device, "auto", mode)
    assert events and all(e["delay_source"] == "device clocks" for e in events), events[:2]
    delays = [e["delay_ms"] for e in events if e["delay_ms"] is not None]
    # arrival -> played: at least the block the output queue holds, at most the 32-block queue
    assert delays and all(10.0 <= d <= 32 * 20.0 + 100.0 for d in delays), delays
    erle = [e["erle_db"] for e in events if e["time_s"] > SETTLED_S and e["erle_db"] is not None]
    assert len(erle) >= 5, events
    # digital loopback: AEC3 takes the echo far down (50+ dB measured on a quiet machine);
    # generous for a loaded 2-core box, where dropped blocks cost it windows
    assert np.median(erle) >= 20.0, erle
    assert any(e["converged_at_s"] is not None for e in events), events[-1]
    assert stats["device"]["host_api"].startswith("JACK") and stats["device"]["mode"] == mode
    # the run's report says the delay it used too
    echo = stats["nodes"]["aec"]["echo"]
    assert echo["delay_source"] == "device clocks" and echo["delay_ms"] == delays[-1], echo
    if mode == "callback":
        return      # the comparison below once is enough

    # The same run with the reference by its pts only: each reference block comes after the
    # near block it belongs to (a feedback connection), so every near block is cancelled
    # against silence: the reference is missing for all of it, and there is nothing to
    # measure ERLE against.
    events_pts, _ = run_looped(jack_device, "pts")
    assert all(e["delay_source"] == "estimated" for e in events_pts)
    full = [e for e in events_pts if e["time_s"] > 1.0 and e["time_s"] * RATE % (25 * BLOCK) == 0]
    assert len(full) >= 5, events_pts
    assert all(e["reference_missing"] == 25 * BLOCK and e["far_active_blocks"] == 0
               and e["erle_db"] is None for e in full), full
