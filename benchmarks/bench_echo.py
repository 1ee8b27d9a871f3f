"""Echo cancellation and noise suppression: what each node costs, how ERLE evolves, and what
Denoise does to the word error rate in noise.

- cost per 960-sample block at 48 kHz (p50, p99 in us) of EchoCancel, Denoise (webrtc and
  rnnoise) and EchoPath, each called directly on speech, against the block period (20 ms): the
  ratio is the share of one core a stream takes. Baseline in the same run: the libraries
  called bare on the same blocks (AEC3's EchoCanceller.process, WebRTC's NoiseSuppressor,
  librnnoise on two frames), so node/bare is what the node adds;
- ERLE over time in the issue's room (manifests/echo-room.yaml: 100 ms delay, -6 dB echo,
  RT60 300 ms) without noise, with babble and white noise at 20 dB SNR, with the delay jumping
  by 40 ms at 10 s, with the reference silent from 8 to 12 s and with one reference block
  dropped: the node's own echo events (time, ERLE, converged, lost/recovered), in simulated
  time, erle_db (near/out, the noise counted) and echo_erle_db (the node's own echo in /
  residual echo out, from its linear canceller's estimate of the echo); and the ERLE of the
  echo alone (remotemedia.echo_measure: the residual the echo explains, the noise the
  canceller passes left out; ground truth), after 3 s;
- word error rate (Transcribe, Whisper tiny.en; jiwer) of six espeak-ng sentences in white
  noise and in babble at 5 dB SNR, without Denoise and with each engine;
- double talk (tests/echo/double_talk.py): the user's sentence alone and spoken over the bot
  after 3, 5 and 12 s of its speech (the bot talking on, or stopping 0.35 s after the user
  starts, as a barge-in stops it), in the issue's room with babble,
  Whisper tiny.en's WER on EchoCancel's output with `double_talk: off` (AEC3 alone) and
  `linear` (the linear canceller's output while the user talks), and the blocks taken for
  double talk.

Measures and prints; asserts nothing about time. Times drift on shared machines: read ratios.

    .venv/bin/python benchmarks/bench_echo.py [--blocks 500] [--no-wer] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least  # noqa: E402

RATE = 48000
BLOCK = 960
PERIOD_US = BLOCK / RATE * 1e6


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"p50": round(statistics.median(s), 1), "p99": round(s[int(0.99 * (len(s) - 1))], 1)}


def timed(fn, blocks: int) -> dict:
    """Per-call time of fn(k) for k in range(blocks), in us (after 20 warm-up calls)."""
    for k in range(20):
        fn(k)
    out = []
    now = time.perf_counter
    for k in range(blocks):
        t0 = now()
        fn(k)
        out.append((now() - t0) * 1e6)
    return percentiles(out)


def costs(blocks: int) -> dict:
    from remotemedia.engine.data import NumpyData
    from remotemedia.engine.node import AudioFormat, NodeContext
    from remotemedia.nodes.denoise import Denoise, rnnoise_library
    from remotemedia.nodes.echo import EchoCancel
    from remotemedia.nodes.room import EchoPath
    from tests.echo.room_audio import bot_speech
    import pywebrtc_audio

    far = bot_speech()
    count = far.shape[0] // BLOCK
    chunks = [np.ascontiguousarray(far[(k % count) * BLOCK:(k % count + 1) * BLOCK])
              for k in range(count)]

    def bind(node):
        node.bind(NodeContext(node.node_id, AudioFormat(RATE, 1, BLOCK)))
        node.setup()
        return node

    rows = {}
    aec = bind(EchoCancel("aec", delay_ms=100.0, report_blocks=25))
    rows["EchoCancel"] = timed(lambda k: aec.process(
        {"mic": NumpyData(chunks[k % count], pts=k * BLOCK),
         "reference": NumpyData(chunks[k % count], pts=k * BLOCK)}), blocks)
    bare = pywebrtc_audio.EchoCanceller(RATE, 1, 100)
    rows["AEC3 bare"] = timed(lambda k: bare.process(chunks[k % count], chunks[k % count]),
                              blocks)
    for engine in ("webrtc", "rnnoise"):
        dn = bind(Denoise("dn", engine=engine))
        rows[f"Denoise {engine}"] = timed(lambda k: dn.process(
            NumpyData(chunks[k % count].copy(), pts=k * BLOCK)), blocks)
    ns = pywebrtc_audio.NoiseSuppressor(RATE, 1, 2)
    rows["WebRTC NS bare"] = timed(lambda k: ns.process(chunks[k % count]), blocks)
    lib = rnnoise_library()
    state = lib.rnnoise_create(None)
    buf_in = np.zeros(480, np.float32)
    buf_out = np.zeros(480, np.float32)

    def rn(k):
        for i in (0, 480):
            np.multiply(chunks[k % count][i:i + 480], 32768.0, out=buf_in)   # 16-bit units
            lib.rnnoise_process_frame(state, buf_out.ctypes.data, buf_in.ctypes.data)
    rows["RNNoise bare"] = timed(rn, blocks)
    lib.rnnoise_destroy(state)
    room = bind(EchoPath("room", noise="white"))
    rows["EchoPath"] = timed(lambda k: room.process(
        {"far": NumpyData(chunks[k % count], pts=k * BLOCK),
         "near": NumpyData(chunks[k % count], pts=k * BLOCK)}), blocks)
    for row in rows.values():
        row["of_period"] = round(row["p50"] / PERIOD_US, 4)
    for node, base in (("EchoCancel", "AEC3 bare"), ("Denoise webrtc", "WebRTC NS bare"),
                       ("Denoise rnnoise", "RNNoise bare")):
        rows[node]["vs_bare"] = round(rows[node]["p50"] / rows[base]["p50"], 2)
    return rows


def echo_alone(far: np.ndarray, **room) -> np.ndarray:
    """The echo EchoPath puts at the microphone for `far`, without noise or near end (the
    tail depends on the seed only, so it is the echo inside the noisy runs' microphone)."""
    from remotemedia.engine.data import NumpyData
    from remotemedia.engine.node import AudioFormat, NodeContext
    from remotemedia.nodes.room import EchoPath
    params = {"delay_ms": 100.0, "gain_db": -6.0, "rt60_ms": 300.0, "seed": 7, **room,
              "noise": "none"}
    node = EchoPath("echo", **EchoPath.check_params(params))
    node.bind(NodeContext("echo", AudioFormat(RATE, 1, BLOCK)))
    node.setup()
    return np.concatenate([node.process({"far": NumpyData(far[k:k + BLOCK], pts=k)}).array
                           for k in range(0, far.shape[0] - BLOCK + 1, BLOCK)])


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 1) if values else None


def erle_runs(repeat: int) -> dict:
    from remotemedia.echo_measure import echo_erle_db
    from tests.echo.room_audio import (bot_speech, room_manifest, run_room, stereo,
                                       with_tamper)
    far = bot_speech(repeat=repeat)
    x = stereo(far)
    cases = {"quiet": ({"noise": "none"}, {}),
             "babble 20 dB": ({"noise": "babble", "snr_db": 20.0}, {}),
             "white 20 dB": ({"noise": "white", "snr_db": 20.0}, {}),
             "jump +40 ms at 10 s": ({"noise": "none", "jump_at_s": 10.0, "jump_ms": 40.0},
                                     {}),
             "reference silent 8-12 s": ({"noise": "none"}, {"silent_from": 400,
                                                             "silent_to": 600}),
             "reference block 500 dropped": ({"noise": "none"}, {"drop": 500})}
    out = {}
    for name, (room, tamper) in cases.items():
        m = room_manifest(**room)
        if tamper:
            m = with_tamper(m, **tamper)
        events, res = run_room(m, x)
        erle = [e["erle_db"] for e in events if e["erle_db"] is not None and e["time_s"] > 3]
        last = events[-1]
        alone = echo_alone(far, **{k: v for k, v in room.items() if k != "snr_db"})
        audio = res.audio if res.audio.ndim == 1 else res.audio[:, 0]
        out[name] = {
            "series": [[e["time_s"], e["erle_db"]] for e in events],
            "median_erle_db_after_3s": round(float(np.median(erle)), 1) if erle else None,
            # the node's echo_erle_db: echo in / residual echo out, the noise left out
            "median_echo_erle_db_after_3s": _median([e.get("echo_erle_db") for e in events
                                                     if e["time_s"] > 3]),
            "min_erle_db_after_3s": min(erle) if erle else None,
            # the echo alone against the output's part the echo explains (echo_measure.py)
            "echo_erle_after_3s": echo_erle_db(alone[:audio.shape[0]], audio,
                                               start=3 * RATE),
            "convergence_s": last["convergence_s"],
            # every (lost_at_s, recovered_at_s) the events reported
            "episodes": sorted({(e["lost_at_s"], e["recovered_at_s"]) for e in events
                                if e["lost_at_s"] is not None and e["recovered_at_s"]}),
            # lost and not back by the end of the run
            "lost_not_recovered": (last["lost_at_s"] if last["recovered_at_s"] is None
                                   else None),
            "reference_missing": sum(e["reference_missing"] for e in events),
            "serialization_events": res.stats["serialization_events"],
            "engine_copies": res.stats["copies"]["engine"]}
    return out


def wer_runs() -> dict:
    from remotemedia.testing import run_blocks
    from tests.echo.speech_in_noise import noisy_graph, sentences_signal, word_error_rate
    x = sentences_signal()
    out = {}
    for noise in ("white", "babble"):
        for engine in (None, "webrtc", "rnnoise"):
            rate, _ = word_error_rate(run_blocks(noisy_graph(noise, 5.0, engine), x))
            out[f"{noise} 5 dB, {engine or 'no Denoise'}"] = round(rate, 3)
    return out


def double_talk_runs() -> dict:
    from tests.echo.double_talk import heard
    out = {}
    for mode in ("off", "linear"):
        for bot_s, stop in ((None, None), (3.0, None), (5.0, None), (12.0, None),
                            (3.0, 0.35), (5.0, 0.35), (12.0, 0.35)):
            rate, text = heard(bot_s, {"double_talk": mode}, stop)
            when = "alone" if bot_s is None else f"over {bot_s:g} s of the bot"
            if stop is not None:
                when += f", bot stops {stop:g} s in"
            out[f"{mode}, {when}"] = {"wer": round(rate, 3), "text": text}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=at_least(10), default=500, help="blocks timed per node")
    ap.add_argument("--repeat", type=at_least(1), default=2,
                    help="times the bot's three sentences repeat in the ERLE runs")
    ap.add_argument("--no-wer", action="store_true", help="skip the word error rates")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    report = {"block": BLOCK, "rate": RATE, "period_us": PERIOD_US,
              "cost_us": costs(args.blocks), "erle": erle_runs(args.repeat)}
    if not args.no_wer:
        report["wer"] = wer_runs()
        report["double_talk"] = double_talk_runs()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"cost per {BLOCK}-sample block at {RATE} Hz (period {PERIOD_US:.0f} us)")
    for name, row in report["cost_us"].items():
        extra = f"  node/bare {row['vs_bare']}" if "vs_bare" in row else ""
        print(f"  {name:18s} p50 {row['p50']:8.1f} us  p99 {row['p99']:8.1f} us  "
              f"of period {row['of_period']:.4f}{extra}")
    print("ERLE over time (echo events, simulated time)")
    for name, row in report["erle"].items():
        alone = row["echo_erle_after_3s"]
        print(f"  {name}: median {row['median_erle_db_after_3s']} dB after 3 s (echo_erle_db "
              f"{row['median_echo_erle_db_after_3s']}), min "
              f"{row['min_erle_db_after_3s']}; echo alone {alone['erle_db']} dB (residual "
              f"echo {alone['residual_echo_dbfs']} dBFS, output {alone['output_dbfs']} dBFS); "
              f"convergence {row['convergence_s']} s, lost and recovered at {row['episodes']}"
              f", lost at the end {row['lost_not_recovered']}, reference missing "
              f"{row['reference_missing']} samples")
        print("    " + " ".join(f"{t:g}:{'-' if e is None else round(e)}"
                                for t, e in row["series"]))
    if "wer" in report:
        print("word error rate, six sentences at 5 dB SNR")
        for name, rate in report["wer"].items():
            print(f"  {name:28s} {rate:.3f}")
        print("double talk: WER of the user's sentence (double_talk mode, when)")
        for name, row in report["double_talk"].items():
            print(f"  {name:56s} {row['wer']:.3f}  {row['text']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
