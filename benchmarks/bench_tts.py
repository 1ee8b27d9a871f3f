"""Text to speech: Speak's model load, time to first audio, real-time factor and memory, per
engine (Piper when the tts extra is installed, and espeak-ng).

For each engine, in one run:
- load: Speak.setup() (the model read; espeak-ng has none), seconds;
- first audio: from handing a sentence to Speak.process() to its first block, per sentence
  (p50, max over the sentences), ms;
- real-time factor: synthesis time / audio time over a paragraph, through Speak (RTF < 1 is
  faster than real time; "x RT" is its inverse). The baseline measured in the same run is the
  engine alone on the same sentences (no sentence splitting, resampling or blocks): the ratio
  node/engine is what Speak adds;
- memory: resident set growth while loading (MiB), the most audio Speak held at once
  (peak_held_samples, as MiB of float32) and the resident set's growth over a long text after
  its first minute (flat streaming: ~0).

    .venv/bin/python benchmarks/bench_tts.py [--sentences N] [--long-seconds S] [--json]

Measures and prints; asserts nothing about time. The graph runs at 48 kHz in 960-sample blocks.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least, seconds as seconds_type  # noqa: E402
from remotemedia.engine.data import TextData  # noqa: E402
from remotemedia.engine.node import AudioFormat, NodeContext  # noqa: E402
from remotemedia.nodes.speak import Speak  # noqa: E402

RATE, BLOCK = 48000, 960
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "We will meet at the library tomorrow afternoon.",
    "Turn left at the next corner and then walk along the river.",
    "A journey of a thousand miles begins with a single step.",
    "The meeting has been moved to Thursday morning.",
    "Open the window and let the fresh air into the room.",
)


def rss_mib() -> float:
    """This process's resident set now, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure(engine: str, n_sentences: int, long_seconds: float) -> dict:
    gc.collect()
    before = rss_mib()
    node = Speak("speak", engine=engine)
    node.bind(NodeContext("speak", AudioFormat(RATE, 1, BLOCK)))
    t0 = time.perf_counter()
    node.setup()
    load_s = time.perf_counter() - t0
    load_mib = rss_mib() - before
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(n_sentences)]

    # first audio, per sentence; then the rest of it for the real-time factor
    firsts, synth_s, samples = [], 0.0, 0
    for text in sentences:
        t0 = time.perf_counter()
        blocks = node.process(TextData(text))
        first = next(blocks)
        firsts.append((time.perf_counter() - t0) * 1e3)
        samples += first.array.shape[0] + sum(b.array.shape[0] for b in blocks)
        synth_s += time.perf_counter() - t0
    audio_s = samples / RATE

    # baseline: the engine alone, same sentences
    eng = node._engine
    t0 = time.perf_counter()
    eng_samples = sum(eng.synthesize(text).shape[0] for text in sentences)
    eng_s = time.perf_counter() - t0
    eng_audio_s = eng_samples / eng.sample_rate

    # a long text: resident set after its first minute of audio vs at its end
    long_text = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(
        int(long_seconds / 3) + 1))
    said = 0
    after_first_minute = None
    for block in node.process(TextData(long_text)):
        said += block.array.shape[0]
        if after_first_minute is None and said >= 60 * RATE:
            gc.collect()
            after_first_minute = rss_mib()
        if said >= long_seconds * RATE:
            break
    gc.collect()
    growth = rss_mib() - after_first_minute if after_first_minute is not None else None
    result = {
        "engine": node.engine_name, "voice": getattr(eng, "voice", ""),
        "engine_rate": eng.sample_rate, "load_s": load_s, "load_rss_mib": load_mib,
        "first_audio_ms_p50": float(np.median(firsts)), "first_audio_ms_max": max(firsts),
        "rtf": synth_s / audio_s, "x_realtime": audio_s / synth_s, "audio_s": audio_s,
        "engine_rtf": eng_s / eng_audio_s, "node_over_engine": (synth_s / audio_s)
        / (eng_s / eng_audio_s),
        "peak_held_mib": node.peak_held_samples * 4 / 2 ** 20,
        "long_text_s": said / RATE, "rss_growth_after_first_minute_mib": growth,
    }
    node.teardown()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=at_least(1), default=8,
                        help="sentences timed per engine (default 8)")
    parser.add_argument("--long-seconds", type=seconds_type, default=150.0,
                        help="seconds of audio in the memory run (default 150)")
    parser.add_argument("--json", action="store_true", help="a JSON line at the end")
    args = parser.parse_args(argv)
    engines = (["piper"] if importlib.util.find_spec("piper") else []) + ["espeak"]
    rows = [measure(e, args.sentences, args.long_seconds) for e in engines]
    print(f"{'engine':8} {'load s':>7} {'load MiB':>8} {'first p50 ms':>12} "
          f"{'first max ms':>12} {'RTF':>6} {'x RT':>6} {'node/engine':>11} {'held MiB':>8} "
          f"{'RSS growth MiB':>14}")
    for r in rows:
        growth = r["rss_growth_after_first_minute_mib"]
        print(f"{r['engine']:8} {r['load_s']:7.2f} {r['load_rss_mib']:8.1f} "
              f"{r['first_audio_ms_p50']:12.1f} {r['first_audio_ms_max']:12.1f} "
              f"{r['rtf']:6.3f} {r['x_realtime']:6.1f} {r['node_over_engine']:11.2f} "
              f"{r['peak_held_mib']:8.2f} "
              f"{'-' if growth is None else format(growth, '.1f'):>14}")
    print(f"(first audio: text in -> first {BLOCK}-sample block out at {RATE} Hz; RTF = "
          f"synthesis / audio time; node/engine = Speak's RTF over its engine's alone; RSS "
          f"growth over a {args.long_seconds:g} s text after its first minute)")
    if args.json:
        print(json.dumps({"rows": rows, "rate": RATE, "block": BLOCK}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
