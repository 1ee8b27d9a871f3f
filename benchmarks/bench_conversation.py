"""The voice loop in simulated time: voice-to-voice, barge-in stop time, speed against real time.

One run of a scripted conversation (`--turns` user turns, default 10, every third one barging
in on the bot's reply) against manifests/assistant.yaml (VAD with a 300 ms endpoint, Whisper
tiny.en transcribing speculatively, Respond rules, Speak espeak-ng at 48 kHz), in simulated time with every node's cost
measured on this machine (remotemedia.conversation). Reports:

- voice-to-voice p50 and max (ms): first reply sample out - user speech end (the VAD's edge),
  and the p50 of each part of its breakdown (endpoint, stt, llm, tts, output); and its p50
  from the audio alone, as a live run measures it (the voice's last sample above -60 dBFS ->
  the bot's first sample above it);
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
REMOTEMEDIA_AUDIO_SERVER=jack) the same kind of script (`--live-turns`, default 6) also runs
live (remotemedia.converse_live: the user's side plays into the graph's input device and
records its output, turn times from the captured audio), then simulated like for like: the
simulated run is charged the live run's own Whisper runs (what each cost live, beside the
audio threads: Costs' model_runs) and hears the bot through the live device's path (its
reported input + output latency, which on the JACK server is also the user side's calibrated
round trip, plus queued mode's one block: ConversationRun's output_latency_ms), the rest
measured in the run. Both sides are measured from the audio the same way (the voice's last
sample above -60 dBFS -> the bot's first sample above it: ConversationRun.
audio_voice_to_voice on the simulated side). `live` has voice-to-voice p50 live and
simulated, their ratio (target within 10%) and what the simulated side was given
(`simulated_with`); the mean difference per turn split into parts that sum to it
(`live_minus_sim_mean_ms`: `input` the VAD's edge after the voice's last sound, the graph's
breakdown from that edge, `after_dac` what the audio holds past the graph's DAC time); per
turn both sides' parts; for reference the same script simulated with its own measured costs
and no device (`simulated_own_costs_p50_ms`: Whisper's cost then follows the load of that
minute, which is what made the comparison swing before); barge-in stop p50 and max live, the
graph's interruptions beside the barge-ins, xruns, wall time; and `targets`: whether each
target holds. Whisper is warmed up at load (one run on 1 s of silence, in
setup, live and simulated alike: `whisper_warmup_ms`), so no first turn pays for its first
run. Measured costs are this machine's at that moment: `load_average` (1 min, before and
after) says what else ran, and Whisper's cost follows it.

Measures and prints; asserts nothing about time. Targets (the issue): v2v p50 <= 800 ms,
barge-in stop <= 150 ms, speed >= 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least  # noqa: E402
from remotemedia.conversation import ConversationRun as Conversation  # noqa: E402
from remotemedia.nodes.whisper import WARMUP_S  # noqa: E402

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


def _warmups():
    """How long each Whisper warm-up of this process took (ms), in load order."""
    from remotemedia.nodes import whisper
    return list(whisper.warmups.values())


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
    load_before = os.getloadavg()[0]
    run = Conversation(str(ROOT / "manifests" / "assistant.yaml"), script(args.turns))
    report = run.run()
    audio = run.audio_voice_to_voice()
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
        "voice_to_voice_audio_p50_ms": _p50(audio),
        "breakdown_p50_ms": {k: _p50(v) for k, v in parts.items()},
        "whisper_warmup_ms": _warmups(),
        "whisper_run_p50_ms": _p50(run.sim.nodes["stt"].run_ms),
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
    # Measured costs are this machine's at this moment: the load says what else ran meanwhile
    out["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['turns']} turns ({out['replied']} replied, mean WER {out['wer_mean']}), "
          f"{out['interrupts']} barge-ins")
    print(f"voice-to-voice p50 {out['voice_to_voice_ms']['p50']} ms, max "
          f"{out['voice_to_voice_ms']['max']} ms (target p50 <= 800)")
    print(f"  from the audio (the user's last sample above -60 dBFS -> the bot's first, as a "
          f"live run measures it): p50 {out['voice_to_voice_audio_p50_ms']} ms; Whisper warmed "
          f"up at load (one run on {WARMUP_S:g} s of silence: {out['whisper_warmup_ms']} ms)")
    print(f"  Whisper per run p50 {out['whisper_run_p50_ms']} ms")
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
        _print_live(args.live, out["live"])
    print(f"load average (1 min) {out['load_average'][0]} before, {out['load_average'][1]} "
          f"after (2 cores)")
    return 0


def _print_live(device: str, lv: dict) -> None:
    w = lv["simulated_with"]
    print(f"live on {device} ({lv['turns']} turns, {lv['replied']} replied, "
          f"{lv['interrupts']} barge-ins, {lv['graph_interruptions']} interruptions in the "
          f"graph's turns): voice-to-voice p50 {lv['voice_to_voice_p50_ms']} ms live vs "
          f"{lv['simulated_p50_ms']} ms simulated: ratio {lv['live_over_simulated']} (target "
          f"0.9-1.1; per-turn ratios' p50 {lv['live_over_simulated_per_turn_p50']})")
    print(f"  the ratio includes: both sides from the audio (the voice's last sample above "
          f"-60 dBFS -> the bot's first); the simulated side charged the live run's own "
          f"{len(w['whisper_runs_ms'])} Whisper runs turn by turn (p50 "
          f"{lv['whisper_run_p50_ms']['live']} ms; {w['whisper_runs_past_the_live_ones']} more "
          f"charged their turn's median) and heard "
          f"through {w['output_latency_ms']} ms of device path (PortAudio's reported input + "
          f"output latency {w['device_reported_latency_ms']} ms + queued mode's "
          f"{w['queued_block_ms']} ms block); the rest measured in the run")
    print(f"  for reference, simulated with its own measured costs and no device: p50 "
          f"{lv['simulated_own_costs_p50_ms']} ms, ratio "
          f"{lv['live_over_simulated_own_costs']} (Whisper per run p50 "
          f"{lv['whisper_run_p50_ms']['simulated_own_costs']} ms there, "
          f"{lv['whisper_run_p50_ms']['live']} ms live); user side's round trip "
          f"{lv['round_trip_ms']} ms (the harness's own apparatus)")
    split = lv["live_minus_sim_mean_ms"]
    if split:
        print(f"  live - simulated, mean per turn {split['total']:+.0f} ms = " + ", ".join(
            f"{k} {split[k]:+.0f}" for k in (*PARTS, "unattributed")))
    for i, r in enumerate(lv["per_turn"], 1):
        lp, sp = r["live_parts_ms"], r["sim_parts_ms"]
        parts = "/".join(f"{_f(lp[k])}:{_f(sp[k])}" for k in PARTS)
        print(f"  turn {i}{' (barge-in)' if r['barge_in'] else ''}: live {r['live_ms']} sim "
              f"{r['sim_ms']} ratio {r['live_over_sim']}; live:sim {'/'.join(PARTS)} {parts}")
    decided = (lv["barge_in_decided_stop_ms"] or {}).get("p50")
    print(f"  live barge-in stop from the user's speech start p50 "
          f"{lv['barge_in_stop_ms']['p50']} ms, max {lv['barge_in_stop_ms']['max']} ms"
          + ("" if decided is None else f"; from the VAD's speech_start (the graph's "
             f"timeline) p50 {decided} ms (target <= 150)")
          + f"; {lv['wall_s']:.1f} s wall")
    wait = lv["callback_wait_ms"] or {}
    print(f"  xruns {lv['xruns']}, {lv['xruns_conversing']} flagged callbacks after the setup "
          f"(the models running); the JACK callbacks' wait for the GIL p99 {wait.get('p99')} "
          f"ms, max {wait.get('max')} ms (an xrun without a wait came from outside the "
          f"process)")
    t = lv["targets"]
    print(f"  targets: live p50 <= 800 {'holds' if t['live_p50_le_800'] else 'MISSED'}; "
          f"simulated p50 <= 800 {'holds' if t['simulated_p50_le_800'] else 'MISSED'}; "
          f"within 10% {'holds' if t['within_10_percent'] else 'MISSED'}")


def _f(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def _sim_turns(run) -> list[dict]:
    """Per turn of a finished simulated run: voice-to-voice from the audio (as a live run
    measures it), from the VAD's edge (the report's), its breakdown, and the two figures a
    live run's graph row has beside them: the VAD's edge after the voice's last sound
    (`vad_end_after_audio_ms`) and what the audio figure holds past the graph's (heard after
    the DAC time: `after_dac_ms`, 0 here but for the measurement's rounding)."""
    from remotemedia.turns import last_sound
    audio = run.audio_voice_to_voice()
    rate = run.pipeline.manifest.audio.sample_rate
    measured = run.sim.meter.turns
    out = []
    for i, (a, t) in enumerate(zip(audio, run.report["turns"])):
        start = run.spans[i][0] if i < len(run.spans) else None
        nxt = run.spans[i + 1][0] if i + 1 < len(run.spans) else float("inf")
        mine = [mt for mt in measured if start is not None and start <= mt.end_media_s < nxt
                and mt.out_s is not None]
        edge = None if not mine or start is None else round(
            (mine[-1].end_media_s - start - last_sound(run.voices[i]) / rate) * 1e3, 3)
        v2v = t["voice_to_voice_ms"]
        out.append({"audio_ms": a, "vad_ms": v2v, "breakdown_ms": t["breakdown_ms"],
                    "vad_end_after_audio_ms": edge,
                    "after_dac_ms": _after_dac(a, edge, v2v)})
    return out


def _after_dac(audio_ms, edge_ms, graph_ms):
    """What the audio's figure holds past the VAD's edge and the graph's own (to the DAC time
    of the first reply block): the way from the DAC to the user's recording."""
    if None in (audio_ms, edge_ms, graph_ms):
        return None
    return round(audio_ms - edge_ms - graph_ms, 3)


def _mean(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 3) if values else None


def _ratio(a, b):
    return None if a is None or not b else round(a / b, 3)


#: the parts the live - simulated difference is split into, in the order the audio goes
PARTS = ("input", "endpoint", "stt", "llm", "tts", "output", "after_dac")


def _parts(row: dict) -> dict:
    """One side's figures per PARTS (ms): `input` the VAD's edge after the voice's last sound
    (the device path in and the VAD's own lag), the graph's breakdown, `after_dac`."""
    b = row.get("breakdown_ms") or {}
    return {"input": row.get("vad_end_after_audio_ms"), **{k: b.get(k) for k in PARTS[1:-1]},
            "after_dac": row.get("after_dac_ms")}


def live(device: str, turns: int) -> dict:
    """The live run, then two simulated runs of the same script: one charged the live run's
    own Whisper costs (Costs' model_runs: what each run cost live, beside the audio threads)
    and heard through the live device's path (ConversationRun's output_latency_ms: PortAudio's
    reported input + output latency, on the JACK server the user side's calibrated round trip
    too, plus queued mode's one block: the output plays a block the period after the callback
    that captured the input it answers): the like-for-like comparison; and one
    with its own measured costs and no device (for reference: Whisper's cost then follows the
    machine's load of that minute, so the two sides differ by the load too). Both sides are
    measured from the audio the same way (the user's voice's last sample above -60 dBFS ->
    the bot's first sample above it); the difference is split per turn into PARTS, which sum
    to it (their means sum to the difference of the means)."""
    from remotemedia.converse import Costs
    from remotemedia.converse_live import LiveConversation
    manifest = str(ROOT / "manifests" / "assistant.yaml")
    conv = LiveConversation(manifest, script(turns), input_spec=device, output_spec=device)
    report = conv.run()
    lv = report["live"]
    whisper_live = (lv.get("model_run_ms") or {}).get("stt") or []
    # the live run's Whisper runs per user turn: the simulated turn i pays what live turn i paid
    whisper_turns = (lv.get("model_runs_by_turn") or {}).get("stt") or []
    own = Conversation(manifest, script(turns))
    audio = own.pipeline.manifest.audio
    period_ms = round(1e3 * audio.block_size / audio.sample_rate, 3)
    # the device path a simulated run has not (LiveConversation.device_path_ms)
    output_latency_ms = conv.device_path_ms()
    costs = Costs(model_runs={"stt": whisper_turns} if any(whisper_turns) else None)
    like = Conversation(manifest, script(turns), timing=costs,
                        output_latency_ms=output_latency_ms)
    like.run()
    own.run()
    sims, owns = _sim_turns(like), _sim_turns(own)
    rows = []
    for i, t in enumerate(report["turns"]):
        graph = t.get("graph") or {}
        live_row = {"breakdown_ms": graph.get("breakdown_ms"),
                    "vad_end_after_audio_ms": graph.get("vad_end_after_audio_ms"),
                    "after_dac_ms": _after_dac(t["voice_to_voice_ms"],
                                               graph.get("vad_end_after_audio_ms"),
                                               graph.get("voice_to_voice_ms"))}
        lp, sp = _parts(live_row), _parts(sims[i])
        rows.append({
            "user": t["user"], "barge_in": script(turns)["turns"][i].get("barge_in_after_ms")
            is not None,
            "live_ms": t["voice_to_voice_ms"], "sim_ms": sims[i]["audio_ms"],
            "sim_own_costs_ms": owns[i]["audio_ms"],
            "live_over_sim": _ratio(t["voice_to_voice_ms"], sims[i]["audio_ms"]),
            "live_graph_ms": graph.get("voice_to_voice_ms"), "sim_graph_ms": sims[i]["vad_ms"],
            "live_parts_ms": lp, "sim_parts_ms": sp,
            "live_minus_sim_ms": {k: None if lp[k] is None or sp[k] is None
                                  else round(lp[k] - sp[k], 3) for k in PARTS}})
    live_v = [r["live_ms"] for r in rows]
    sim_v = [r["sim_ms"] for r in rows]
    p50, sim_p50 = _p50(live_v), _p50(sim_v)
    own_p50 = _p50([r["sim_own_costs_ms"] for r in rows])
    stops = [t["barge_in_stop_ms"] for t in report["turns"]
             if t["barge_in_stop_ms"] is not None]
    ratio = _ratio(p50, sim_p50)
    both = [r for r in rows if r["live_ms"] is not None and r["sim_ms"] is not None]
    return {"turns": len(rows), "replied": sum(v is not None for v in live_v),
            "interrupts": report["stats"]["interrupts"],
            "graph_interruptions": (lv.get("graph_turns") or {}).get("interruptions"),
            "voice_to_voice_p50_ms": p50, "simulated_p50_ms": sim_p50,
            "live_over_simulated": ratio,
            "live_over_simulated_per_turn_p50": _p50([r["live_over_sim"] for r in rows]),
            # what the simulated side was given from the live run
            "simulated_with": {"whisper_runs_ms": whisper_live,
                               "output_latency_ms": output_latency_ms,
                               "device_reported_latency_ms": round(
                                   output_latency_ms - period_ms, 3),
                               "queued_block_ms": period_ms,
                               "whisper_runs_by_turn_ms": whisper_turns,
                               "whisper_runs_past_the_live_ones":
                                   costs.model_past_end.get("stt", 0)},
            # the same script simulated with its own measured costs and no device
            "simulated_own_costs_p50_ms": own_p50,
            "live_over_simulated_own_costs": _ratio(p50, own_p50),
            # the mean difference (live - simulated, turns both answered) and its parts: they
            # sum to it (a part missing on either side leaves `unattributed`)
            "live_minus_sim_mean_ms": _split([r for r in both]),
            "round_trip_ms": lv["round_trip_ms"],
            "graph_p50_ms": {"live": _p50([r["live_graph_ms"] for r in rows]),
                             "simulated": _p50([r["sim_graph_ms"] for r in rows])},
            "per_turn": rows,
            "targets": {"live_p50_le_800": p50 is not None and p50 <= 800,
                        "simulated_p50_le_800": sim_p50 is not None and sim_p50 <= 800,
                        "within_10_percent": ratio is not None and 0.9 <= ratio <= 1.1},
            "barge_in_stop_ms": {"p50": _p50(stops), "max": max(stops, default=None),
                                 "count": len(stops)},
            "barge_in_decided_stop_ms": ((lv.get("graph_turns") or {})
                                         .get("barge_in_decided_stop_ms")),
            "speculative": lv.get("speculative"),
            "whisper_run_p50_ms": {
                "live": _p50(whisper_live),
                "simulated_own_costs": _p50(list(own.sim.nodes["stt"].run_ms))},
            "whisper_runs_ms": {"live": whisper_live,
                                "simulated_own_costs": list(own.sim.nodes["stt"].run_ms)},
            "xruns": lv["xruns"], "xruns_conversing": lv["xruns_conversing"],
            "callback_wait_ms": lv["callback_wait_ms"], "wall_s": report["wall_s"]}


def _split(rows: list[dict]) -> dict:
    """{"total", PART..., "unattributed"}: the mean of live - simulated over `rows`, and the
    mean of each part's difference (where both sides have it); what the parts leave."""
    if not rows:
        return {}
    n = len(rows)
    total = sum(r["live_ms"] - r["sim_ms"] for r in rows) / n
    out = {"total": round(total, 3)}
    for k in PARTS:
        out[k] = round(sum(r["live_minus_sim_ms"][k] or 0.0 for r in rows) / n, 3)
    out["unattributed"] = round(total - sum(out[k] for k in PARTS), 3)
    return out


if __name__ == "__main__":
    sys.exit(main())
