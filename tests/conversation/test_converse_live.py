"""The voice loop live on the JACK server: `converse --realtime` plays a scripted user into the
graph's input device and records its output device; the bot answers every turn and stops when
the user barges in, measured from the captured audio."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.streaming.device_support import jack_device, load_allowance  # noqa: F401

from .test_conversation import ASSISTANT, THREE_TURNS

pytestmark = [pytest.mark.slow, pytest.mark.device]


def test_three_turns_with_a_barge_in_pass_live_on_jack(jack_device, tmp_path):
    (tmp_path / "s.yaml").write_text(THREE_TURNS)
    dev = f"device:{jack_device.index}"
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        "-s", "s.yaml", "--realtime", "-i", dev, "-o", dev, "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"})
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["passed"] and report["timing"] == "live", report["turns"]
    turns = report["turns"]
    # Every turn was answered, and heard (the expectations above checked what).
    assert all(t["voice_to_voice_ms"] is not None for t in turns), turns
    # Generous: a voice loop that answers at all answers within 5 s on a loaded machine.
    assert all(0 < t["voice_to_voice_ms"] < 5000 for t in turns), turns
    # The third turn barged in on the second reply: it was cut, and the bot fell silent
    # soon after the VAD's speech_start (the audio queued for the output was dropped).
    assert turns[1]["interrupted"] and not turns[0]["interrupted"]
    assert turns[2]["barge_in_stop_ms"] is not None and turns[0]["barge_in_stop_ms"] is None
    # from the user's speech start (as the simulated run): the VAD heard min_speech_ms (250)
    # of it before it could say so
    assert 250 <= turns[2]["barge_in_stop_ms"] < 1000, turns[2]
    live = report["live"]
    assert live["barge_in"]["interrupts"] == 1 == report["stats"]["interrupts"]
    # the graph's turns section counts the same interruption (the reply taken block by block
    # as it plays: the observer's timeline ends where the push that barged in begins)
    assert live["graph_turns"]["interruptions"] == 1, live["graph_turns"]
    # and the bot's last block after it: the one the device was playing (a block, not 0: the
    # reply taken as it plays had more to come, which the interrupt dropped)
    decided = live["graph_turns"]["barge_in_decided_stop_ms"]["max"]
    assert decided is not None and 0 < decided <= 150, live["graph_turns"]
    assert live["barge_in"]["dropped_blocks"] > 0, live["barge_in"]
    assert live["barge_in"]["dropped_samples"] >= live["barge_in"]["dropped_blocks"]
    # xruns after the setup (every port connected, the models running) are among all of
    # them; the user's JACK callback's GIL wait was measured over the conversation
    flagged = live["device"]["flagged_callbacks"]
    assert live["xruns_conversing"] is not None and 0 <= live["xruns_conversing"] <= len(
        flagged), live
    wait = live["callback_wait_ms"]
    assert wait is not None and 0 <= wait["p50"] <= wait["p99"] <= wait["max"], wait
    # The user's own device round trip, the error bar of the figures (a period or two).
    assert live["round_trip_ms"] is not None and 0 <= live["round_trip_ms"] < 500
    # The gaps between replies are silence, not underflows; the user's audio is heard block
    # by block: a busy machine may skip a few to catch up or refuse them to a full ring, each
    # counted among the drops, never lost silently.
    device = live["device"]
    assert device["silent_callbacks"] > 0
    lost = device["skipped_to_catch_up"] + device["refused"]
    assert lost <= live["drops"] and lost <= load_allowance(device["captured"]), device
    # Whisper ran speculatively at the pauses, as in simulated time, and its result was used
    spec = live["speculative"]["stt"]
    assert spec["runs"] >= 1 and spec["used"] >= 1, spec
    assert spec["used"] + spec["discarded"] <= spec["runs"], spec
    # and each of its model runs was timed (beside the audio threads)
    runs = live["model_run_ms"]["stt"]
    assert len(runs) >= spec["runs"] and all(ms > 0 for ms in runs), runs
    # The graph's own view of each turn, tied to the user's clock: from the VAD's edge, which
    # comes after the voice's last loud sample (the device path in and the VAD's own lag:
    # never before the voice by more than a VAD window), node by node, summing to its figure
    for t in turns:
        graph = t["graph"]
        assert graph is not None and graph["voice_to_voice_ms"] is not None, t
        assert sum(graph["breakdown_ms"].values()) == pytest.approx(
            graph["voice_to_voice_ms"], abs=0.01), graph
        assert {"endpoint", "stt", "llm", "tts", "output"} <= set(graph["breakdown_ms"]), graph
        assert -40 < graph["vad_end_after_audio_ms"] < 1000, graph


def test_a_live_runs_cost_file_simulates_it_like_for_like(jack_device, tmp_path):
    # --realtime --save-timing keeps the live run's Whisper runs and device path; --timing
    # with that file simulates the script paying them
    (tmp_path / "s.yaml").write_text("turns: [{say: 'Hello there.', after_ms: 300}]\n")
    dev = f"device:{jack_device.index}"
    env = {**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"}
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        "-s", "s.yaml", "--realtime", "-i", dev, "-o", dev, "--json",
                        "--save-timing", "live.json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    live = json.loads(r.stdout.strip().splitlines()[-1])["live"]
    saved = json.loads((tmp_path / "live.json").read_text())
    # its Whisper runs, per user turn (one turn here), as the report lists them
    assert saved["model_runs"]["stt"] == live["model_runs_by_turn"]["stt"]
    assert sum(saved["model_runs"]["stt"], []) == live["model_run_ms"]["stt"] != []
    # PortAudio's reported latency both ways and queued mode's 20 ms block
    lat = live["device"]["latency_s"]
    assert saved["device_latency_ms"] == pytest.approx(
        (lat["input"] + lat["output"]) * 1e3 + 20.0, abs=0.01)
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        "-s", "s.yaml", "--timing", "live.json", "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    sim = json.loads(r.stdout.strip().splitlines()[-1])
    assert sim["timing"] == "live.json"
    assert sim["output_latency_ms"] == saved["device_latency_ms"]
    assert sim["turns"][0]["voice_to_voice_ms"] is not None


def test_realtime_needs_devices_on_jack(tmp_path):
    (tmp_path / "s.yaml").write_text(THREE_TURNS)
    base = [sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT, "-s", "s.yaml"]
    for extra, words in ((["--realtime"], "needs --input DEV and --output DEV"),
                         (["-i", "device:0"], "go with --realtime"),
                         (["--realtime", "-i", "sine:440", "-o", "null"],
                          "--input sine:440 must be a device (device:NAME_OR_INDEX) on a JACK "
                          "server")):
        r = subprocess.run(base + extra, capture_output=True, text=True, cwd=tmp_path,
                           timeout=120)
        assert r.returncode == 2, (extra, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
