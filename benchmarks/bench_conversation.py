"""The voice loop in simulated time: voice-to-voice, barge-in stop time, speed against real time.

One run of a scripted conversation (`--turns` user turns, default 10, every third one barging
in on the bot's reply) against manifests/assistant.yaml (VAD with a 300 ms endpoint, Whisper
tiny.en transcribing speculatively, Respond rules, Speak espeak-ng at 48 kHz), in simulated time with every node's cost
measured on this machine (remotemedia.conversation). Reports:

- voice-to-voice p50 and max (ms): first reply sample out - user speech end, from the audio,
  and the p50 of each part of its breakdown (endpoint, stt, llm, tts, output);
- barge-in stop time (ms): the user's speech start -> the bot's last sample out, p50 and max,
  and from the VAD's speech_start decision (the issue's <= 150 ms target: how fast the loop acts
  once the VAD is sure; the first figure adds the VAD's min_speech_ms);
- speculative transcription: what it saves (the same script without it, same run: p50 of
  voice-to-voice without - with), and its runs / used / discarded;
- speed: simulated seconds / wall seconds (the baseline is real time, measured in the same run:
  a ratio > 1 runs faster than the conversation itself would).

    .venv/bin/python benchmarks/bench_conversation.py [--turns N] [--json]
        [--live DEV [--live-turns N]]

With `--live DEV` (a device on the JACK server, e.g. device:system; run with
REMOTEMEDIA_AUDIO_SERVER=jack) the same kind of script also runs live
(remotemedia.converse_live: the user's side plays into the graph's input device and records
its output, turn times from the captured audio), right after the simulated run, and the
report adds `live`: voice-to-voice p50 live and simulated (the simulated run of the same
live-sized script, measured in this run), their ratio (target within 10%), barge-in stop p50
and max live (target <= 150 ms after the VAD's speech_start), xruns, the user side's device
round trip (the error bar), and wall time.

Measures and prints; asserts nothing about time. Targets (the issue): v2v p50 <= 800 ms,
barge-in stop <= 150 ms, speed >= 3x.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least  # noqa: E402
from remotemedia.conversation import ConversationRun as Conversation  # noqa: E402

SAYINGS = ["Hello there.", "What is the weather like today?", "What time is it?",
           "Tell me about the weather.", "Thank you, goodbye."]


def script(turns: int) -> dict:
    """`turns` user turns; every third barges in 200 ms after the bot's first reply sample."""
    out = []
    for i in range(turns):
        turn = {"say": SAYINGS[i % len(SAYINGS)]}
        if i % 3 == 2:
            turn["barge_in_after_ms"] = 200    # (after_ms does not apply to a barge-in)
        else:
            turn["after_ms"] = 400
        out.append(turn)
    return {"turns": out}


def without_speculation() -> dict:
    """assistant.yaml with speculative transcription off (the baseline for what it saves)."""
    import yaml
    with open(ROOT / "manifests" / "assistant.yaml") as f:
        doc = yaml.safe_load(f)
    for node in doc["nodes"]:
        if node["id"] == "vad":
            node["params"]["pause_events"] = False
        if node["id"] == "stt":
            node["params"]["speculative"] = False
    return doc


def _p50(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=at_least(1), default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--live", metavar="DEV", help="also run live on this JACK device")
    parser.add_argument("--live-turns", type=at_least(1), default=6,
                        help="turns of the live run (default 6: it takes real time)")
    args = parser.parse_args(argv)
    report = Conversation(str(ROOT / "manifests" / "assistant.yaml"), script(args.turns)).run()
    plain = Conversation(without_speculation(), script(args.turns)).run()
    plain_p50 = _p50([t["voice_to_voice_ms"] for t in plain["turns"]])
    turns = report["turns"]
    v2v = [t["voice_to_voice_ms"] for t in turns]
    parts = {}
    for t in turns:
        for k, v in (t["breakdown_ms"] or {}).items():
            parts.setdefault(k, []).append(v)
    stops = [t["barge_in_stop_ms"] for t in turns if t["barge_in_stop_ms"] is not None]
    out = {
        "turns": len(turns), "replied": sum(v is not None for v in v2v),
        "wer_mean": round(sum(t["wer"] or 0 for t in turns) / len(turns), 4),
        "voice_to_voice_ms": {"p50": _p50(v2v), "max": max((v for v in v2v if v is not None),
                                                          default=None)},
        "breakdown_p50_ms": {k: _p50(v) for k, v in parts.items()},
        "barge_in_stop_ms": {"p50": _p50(stops), "max": max(stops, default=None),
                             "count": len(stops)},
        "barge_in_decided_stop_ms": report["stats"]["turns"]["barge_in_decided_stop_ms"],
        "interrupts": report["stats"]["interrupts"],
        "speculative": report["stats"]["nodes"]["stt"].get("speculative"),
        "voice_to_voice_p50_without_speculation_ms": plain_p50,
        "speculation_saves_p50_ms": (None if plain_p50 is None or _p50(v2v) is None
                                     else round(plain_p50 - _p50(v2v), 3)),
        "simulated_s": report["simulated_s"], "wall_s": report["wall_s"],
        "speed_vs_real_time": round(report["simulated_s"] / report["wall_s"], 2),
    }
    if args.live:
        out["live"] = live(args.live, args.live_turns)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['turns']} turns ({out['replied']} replied, mean WER {out['wer_mean']}), "
          f"{out['interrupts']} barge-ins")
    print(f"voice-to-voice p50 {out['voice_to_voice_ms']['p50']} ms, max "
          f"{out['voice_to_voice_ms']['max']} ms (target p50 <= 800)")
    print("  breakdown p50: " + ", ".join(f"{k} {v:.1f} ms" for k, v in
                                          out["breakdown_p50_ms"].items()))
    print(f"speculative transcription: {out['speculative']}; without it voice-to-voice p50 "
          f"{out['voice_to_voice_p50_without_speculation_ms']} ms (saves "
          f"{out['speculation_saves_p50_ms']} ms)")
    decided = out["barge_in_decided_stop_ms"] or {}
    print(f"barge-in stop from the user's speech start p50 {out['barge_in_stop_ms']['p50']} ms, "
          f"max {out['barge_in_stop_ms']['max']} ms; from the VAD's speech_start p50 "
          f"{decided.get('p50')} ms, max {decided.get('max')} ms (target <= 150)")
    print(f"speed: {out['simulated_s']:.1f} s simulated in {out['wall_s']:.1f} s wall = "
          f"{out['speed_vs_real_time']}x real time (target >= 3x)")
    if args.live:
        lv = out["live"]
        print(f"live on {args.live} ({lv['turns']} turns, {lv['replied']} replied, "
              f"{lv['interrupts']} barge-ins): voice-to-voice p50 {lv['voice_to_voice_p50_ms']}"
              f" ms live vs {lv['simulated_p50_ms']} ms simulated (same script, this run): "
              f"ratio {lv['live_over_simulated']} (target 0.9-1.1); device round trip "
              f"{lv['round_trip_ms']} ms (error bar)")
        print(f"  live barge-in stop p50 {lv['barge_in_stop_ms']['p50']} ms, max "
              f"{lv['barge_in_stop_ms']['max']} ms (target <= 150); xruns {lv['xruns']}; "
              f"{lv['wall_s']:.1f} s wall")
    return 0


def live(device: str, turns: int) -> dict:
    """The live run between two simulated runs of the same script (the machine's load drifts
    from minute to minute: the simulated figure is the mean of the p50 before and after)."""
    from remotemedia.converse_live import LiveConversation
    manifest = str(ROOT / "manifests" / "assistant.yaml")
    before = Conversation(manifest, script(turns)).run()
    report = LiveConversation(manifest, script(turns), input_spec=device,
                              output_spec=device).run()
    after = Conversation(manifest, script(turns)).run()
    v2v = [t["voice_to_voice_ms"] for t in report["turns"]]
    sims = [_p50([t["voice_to_voice_ms"] for t in r["turns"]]) for r in (before, after)]
    sim_p50 = None if None in sims else round(sum(sims) / 2, 3)
    stops = [t["barge_in_stop_ms"] for t in report["turns"]
             if t["barge_in_stop_ms"] is not None]
    p50 = _p50(v2v)
    return {"turns": len(v2v), "replied": sum(v is not None for v in v2v),
            "interrupts": report["stats"]["interrupts"],
            "voice_to_voice_p50_ms": p50, "voice_to_voice_ms": v2v,
            "simulated_p50_ms": sim_p50, "simulated_p50_before_after_ms": sims,
            "live_over_simulated": (None if p50 is None or not sim_p50
                                    else round(p50 / sim_p50, 3)),
            "barge_in_stop_ms": {"p50": _p50(stops), "max": max(stops, default=None),
                                 "count": len(stops)},
            "round_trip_ms": report["live"]["round_trip_ms"],
            "xruns": report["live"]["xruns"], "wall_s": report["wall_s"]}


if __name__ == "__main__":
    sys.exit(main())
