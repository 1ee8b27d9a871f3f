"""`converse --record DIR` and its replay: a simulated-time conversation kept and re-run bit
for bit.

A conversation recording (a folder made new, every file created through io/safefile.py, never
through a link the run did not make) holds:

    input.wav          what the bot's microphone heard, block by block as the graph got it:
                       the user's voice and noise floor, plus the room's echo with `room:`
                       (32-bit float, the manifest's input rate, mono)
    output.wav         what the bot played, each block at the time it began to play, silence
                       between (32-bit float, the output's rate)
    events.jsonl       every event the run saw, one {"seq": block, "event": {...}} per line
                       (`seq`: the input block during which it was made)
    report.json        the conversation's report (conversation.py: turns, stats, room) with a
                       `recording` section
    manifest.json      the manifest as resolved (record_files.resolved_manifest)
    conversation.json  what the replay needs besides: the node costs charged to the clock
                       (seconds, exactly as charged: measured on this machine or from
                       --timing FILE), the blocks, the turn spans, the turns, whether the
                       output was fed back (played feedback), each block's metadata and
                       the stop_reason of a run SIGINT/SIGTERM stopped (null otherwise)
    versions.json      remotemedia and its libraries

`remotemedia replay DIR` sees conversation.json and re-runs the simulation (converse._Sim)
with the recorded microphone blocks and the recorded costs: each node call is charged what
it was charged, so the run's event order, its barge-ins, what the output plays and what a
feedback input (an echo canceller's reference) is fed are the same, and with deterministic
nodes (Whisper on the CPU, espeak-ng, the Silero VAD, Respond's rules) the output, the events
and the report's turns come out identical. The executors a manifest names are not used in
simulated time (nodes are called inline), so `executor: thread` does not stand in the way;
what cannot be replayed bit for bit is a node that is not deterministic (an http Respond whose
server answers differently): the replay then reports where it differs, it never pretends.
The room figures (ERLE, residual echo) need the echo apart from the voice, which is not kept:
the replay compares every other field of each turn and says so.

A stopped run's recording replays to where it stopped (the blocks it recorded, no tick after
the last, the turns the user began), so it too comes out identical.

Errors: UsageError (exit 2, one line) for a DIR that cannot take a recording (not empty, not
ours, a link) before anything runs, and for a folder that is not a conversation recording:
a file of it missing or unreadable, or a field of conversation.json that a live run's input
checks would refuse (check_document: named with the file).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .converse import Costs, ScriptError, UserTurn, _Sim, _ms, check_costs, script_turns
from .engine import strictjson
from .engine.data import NumpyData
from .engine.errors import RemoteMediaError, UsageError

MARKER = "conversation.json"
FILES = ("input.wav", "output.wav", "events.jsonl", "report.json", "manifest.json", MARKER,
         "versions.json")
VERSION = 1
#: event fields a node measures on the machine's own clock (wall time, not simulated): they
#: differ from run to run whatever the clock, so the replay compares events without them and
#: says how many it masked
WALL_CLOCK_FIELDS = {"reply": ("first_text_ms", "total_ms")}
#: the turn fields a replay cannot recompute (they need the echo apart: conversation_room)
#: the latest a recorded span may end (s): past any run the script's bounds allow
MAX_SPAN_S = 1e7
#: the fields of each recorded turn (UserTurn's)
_TURN_FIELDS = {"say", "play", "after_ms", "barge_in_after_ms", "expect"}
ROOM_FIELDS = ("erle_db", "residual_echo_dbfs", "self_interruptions", "double_talk_s")


def check_record_dir(directory) -> Path:
    """Refuse, creating nothing, a DIR that cannot take a conversation recording: one that
    exists and is not an empty folder of ours that others cannot write (io/safefile.py), or
    a link. UsageError (exit 2, one line)."""
    from .io.safefile import check_dir
    path = Path(directory)
    if os.path.islink(path):
        raise UsageError(f"--record: {path} is a symbolic link; give a new directory")
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"--record: {path} exists and is not a directory")
    check_dir(path, "--record")
    if path.is_dir() and any(True for _ in os.scandir(path)):
        raise UsageError(f"--record: {path} is not empty; give a new directory")
    return path


class RecordingSim(_Sim):
    """The simulation, keeping each microphone block it is given (`mic`: float32 arrays,
    `metadata`: their metadata) besides what it already keeps (`played`, `events`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mic: list[np.ndarray] = []
        self.metadata: list[dict] = []

    def deliver(self, t: float, source: str, items) -> None:
        """As _Sim.deliver; a block from `input` is kept first (the microphone)."""
        if source == "input":
            for item in items:
                self.mic.append(np.array(item.array, dtype=np.float32))
                self.metadata.append(dict(item.metadata or {}))
        super().deliver(t, source, items)


def recording_run(manifest, script, *, timing="measured", seed: int = 0, allow_import=()):
    """A ConversationRun whose simulation keeps what `write_recording` needs."""
    from .conversation import ConversationRun

    class _Run(ConversationRun):
        sim_class = RecordingSim

    return _Run(manifest, script, timing=timing, seed=seed, allow_import=allow_import)


# -- what the run made, rendered the same way by the recorder and the replay ---------------------
def played_audio(played, out_rate: int, rate: int, blocks: int, channels: int) -> np.ndarray:
    """What the bot played as one float32 (frames, channels) signal at `out_rate`: each block
    of `played` [(start_s, array)] at its start, silence between, at least `blocks` input
    periods long."""
    starts = [int(round(start * out_rate)) for start, _ in played]
    arrays = [np.asarray(a, dtype=np.float32).reshape(np.asarray(a).shape[0], -1)
              for _, a in played]
    length = -(-blocks * out_rate // rate)   # the input's duration at the output rate, up
    for s, a in zip(starts, arrays):
        length = max(length, s + a.shape[0])
    out = np.zeros((length, channels), dtype=np.float32)
    for s, a in zip(starts, arrays):
        out[s:s + a.shape[0], :a.shape[1]] += a
    return out


def event_records(events: list[dict], period: float) -> list[dict]:
    """The run's events as {"seq": block, "event"} records, through strict JSON (as stored)."""
    out = []
    for ev in events:
        seq = int(ev["t_s"] // period) if isinstance(ev.get("t_s"), (int, float)) else None
        out.append(json.loads(strictjson.dumps({"seq": seq, "event": ev}, default=str)))
    return out


# -- recording -----------------------------------------------------------------------------------
def write_recording(directory, conv, manifest_document: dict | None) -> dict:
    """Write the recording of the finished run `conv` (made by recording_run) into DIR: made
    new and checked on its descriptor (io/safefile.SafeDir), every file created O_EXCL |
    O_NOFOLLOW. Returns the `recording` section (also put in report.json). UsageError when
    DIR cannot take it (checked again here: it may have changed during the run),
    RemoteMediaError (exit 1) when a write fails."""
    from .io.safefile import SafeDir
    from .record_files import open_float_wav, resolved_manifest, versions
    sim, report = conv.sim, conv.report
    m = conv.pipeline.manifest
    rate, block = m.audio.sample_rate, m.audio.block_size
    out_rate = sim.out_rate
    out_channels = (m.output_format.channels if m.output_format else None) or 1
    mic = np.concatenate(sim.mic) if sim.mic else np.zeros(0, dtype=np.float32)
    played = played_audio(sim.played, out_rate, rate, len(sim.mic), out_channels)
    records = event_records(sim.events, sim.period)
    summary = {"directory": str(directory), "blocks_recorded": len(sim.mic),
               "output_frames": int(played.shape[0]), "events": len(records),
               "timing": conv.costs.source}
    doc = {"version": VERSION, "blocks": len(sim.mic), "block_size": block,
           "sample_rate": rate, "output_rate": out_rate, "output_channels": out_channels,
           "seed": conv.seed, "room": conv.room is not None,
           "played_feedback": bool(sim.played_feedback),
           "timing": conv.costs.source,
           # seconds, as charged: JSON keeps a float's every bit (repr round-trips)
           "costs_s": {k: list(v) for k, v in conv.costs.charged.items()},
           "spans": getattr(conv, "spans", None),
           "turns": [{"say": t.say, "play": t.play, "after_ms": t.after_ms,
                      "barge_in_after_ms": t.barge_in_after_ms, "expect": t.expect}
                     for t in conv.turns],
           "metadata": {str(k): md for k, md in enumerate(sim.metadata) if md},
           # what input.wav holds, so that a replay of an altered one is told apart even
           # where the change leaves the output and events as they were (a noise floor)
           "input_sha256": _samples_digest(mic),
           "manifest_name": conv.manifest_name, "script_name": conv.script_name,
           # a run SIGINT/SIGTERM stopped: the replay stops where it did
           "stop_reason": getattr(conv, "stop_reason", None)}
    full = dict(report)
    full["recording"] = summary
    folder = SafeDir.make(Path(directory), "--record")
    try:
        if any(True for _ in os.scandir(folder.fd)):
            raise UsageError(f"--record: {directory} is not empty; give a new directory")
        try:
            folder.write("manifest.json", strictjson.dumps(
                resolved_manifest(m, manifest_document), indent=2, default=str) + "\n",
                replace=False)
            folder.write("versions.json", json.dumps(versions(), indent=2) + "\n",
                         replace=False)
            folder.write(MARKER, strictjson.dumps(doc, default=str) + "\n", replace=False)
            for name, data, r, ch in (("input.wav", mic.reshape(-1, 1), rate, 1),
                                      ("output.wav", played, out_rate, out_channels)):
                f = open_float_wav(folder.create_fd(name), r, ch)
                try:
                    f.write(data)
                finally:
                    f.close()
            folder.write("events.jsonl", "".join(strictjson.dumps(r) + "\n"
                                                 for r in records), replace=False)
            folder.write("report.json", strictjson.dumps(full, indent=2) + "\n",
                         replace=False)
        except (OSError, RuntimeError) as exc:   # a full disk, a file-size limit: exit 1
            raise RemoteMediaError(f"--record: cannot write the recording in {directory}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
    finally:
        folder.close()
    return summary


def _samples_digest(samples: np.ndarray) -> str:
    """SHA-256 of the samples as float32 (hex): what input.wav holds, whatever its header."""
    import hashlib
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


def is_conversation_recording(directory) -> bool:
    """True when `replay DIR` is for replay_conversation: DIR holds conversation.json, or it
    exists and is not a stream recording either (no timeline.csv: replay_conversation then
    says in one line what it is not)."""
    path = os.fspath(directory)
    return os.path.isfile(os.path.join(path, MARKER)) or (
        os.path.lexists(path) and not os.path.isfile(os.path.join(path, "timeline.csv")))


# -- replaying -----------------------------------------------------------------------------------
def replay_conversation(directory, allow_import=(), stopped=None) -> dict:
    """Re-run the conversation recorded in DIR and compare it with the recording: returns
    {"blocks", "output": audio_difference, "events": event_differences, "turns": {"count",
    "first"} (turn fields that differ, room figures left out), "identical", "notes"}.
    `stopped()`, asked before each block, returns a stop reason (a signal's) to end the
    replay there: then {"blocks", "blocks_replayed", "stop_reason"}, nothing compared.
    UsageError (exit 2) for a folder that is not a readable conversation recording."""
    from .conversation_room import Playback
    from .engine.loader import read_document
    from .recording import check_recorded_file, read_recorded_text
    from .engine.session import Pipeline
    from .replay import audio_difference, event_differences
    from .turns import TurnMeter
    import soundfile as sf
    path = Path(directory)
    if not path.is_dir():
        raise UsageError(f"{path} is not a recording: not a directory (a recording is the "
                         f"folder `converse --record` or `stream --record` made)")
    missing = [name for name in FILES
               if name != "versions.json" and not (path / name).is_file()]
    if MARKER in missing:
        raise UsageError(f"{path} is not a recording: neither {MARKER} (converse --record) "
                         f"nor timeline.csv (stream --record) is in it")
    if missing:
        raise UsageError(f"{path} is not a readable conversation recording: "
                         f"{', '.join(missing)} missing")
    name = MARKER
    try:
        doc = json.loads(read_recorded_text(path / MARKER))
        name = "manifest.json"
        check_recorded_file(path / "manifest.json")
        manifest, _ = read_document(path / "manifest.json")
        name = "input.wav"
        mic, _ = sf.read(str(path / "input.wav"), dtype="float32", always_2d=True)
        name = "output.wav"
        out, out_rate = sf.read(str(path / "output.wav"), dtype="float32", always_2d=True)
        name = "events.jsonl"
        lines = read_recorded_text(path / "events.jsonl").splitlines()
        recorded_events = [json.loads(x) for x in lines if x.strip()]
        name = "report.json"
        report = json.loads(read_recorded_text(path / "report.json"))
    except (OSError, ValueError, RuntimeError) as exc:
        detail = str(getattr(exc, "strerror", None) or exc).splitlines()[0]
        raise UsageError(f"{path / name}: not readable as part of a conversation recording: "
                         f"{detail}") from None
    table = check_document(doc, path / MARKER)
    if not isinstance(report, dict) or not isinstance(report.get("turns", []), list) or \
            not isinstance(report.get("stats") or {}, dict):
        raise UsageError(f"{path / 'report.json'}: not a conversation report ({{turns: [...], "
                         f"stats: {{...}}}} expected)")
    # the stop of a recording made before conversation.json kept it is in its report
    stop_reason = doc["stop_reason"] if "stop_reason" in doc else report.get("stop_reason")
    if stop_reason is not None and not isinstance(stop_reason, str):
        raise UsageError(f"{path / 'report.json'}: stop_reason must be text, got "
                         f"{stop_reason!r:.60}")
    pipeline = Pipeline.from_manifest(manifest, allow_import=allow_import)
    m = pipeline.manifest
    rate, block = m.audio.sample_rate, m.audio.block_size
    blocks = doc["blocks"]
    for key, theirs in (("sample_rate", rate), ("block_size", block)):
        if doc[key] != theirs:
            raise UsageError(f"{path / MARKER}: {key} {doc[key]} is not the recorded "
                             f"manifest's ({theirs}, manifest.json)")
    if mic.shape[0] != blocks * block:
        raise UsageError(f"{path / 'input.wav'}: holds {mic.shape[0]} samples; "
                         f"conversation.json says {blocks} blocks of {block}")
    costs = Costs(table, source=doc["timing"])
    meter = TurnMeter()
    sim = _Sim(m, costs, meter)
    if doc["played_feedback"] != bool(sim.played_feedback):
        sim.close()
        raise UsageError(f"{path / MARKER}: played_feedback {doc['played_feedback']} does "
                         f"not match the recorded manifest (manifest.json)")
    period = block / rate
    playback = Playback(rate, block) if doc["room"] or sim.played_feedback else None
    far = np.zeros(block, dtype=np.float32)
    metadata = doc.get("metadata") or {}
    n_played = 0
    try:
        # The recorded run's loop (conversation.py ConversationRun.run), its microphone read
        # back instead of made: the same calls in the same order at the same times.
        # A run a signal stopped ended after its last block was delivered, without the
        # next period's tick (its loop's condition), as the replay does.
        for k in range(blocks + (stop_reason is None)):
            if stopped is not None and stopped():
                return {"blocks": blocks, "blocks_replayed": k, "stop_reason": stopped()}
            t = k * period
            sim.run_until(t)
            sim.now = t
            sim.tick(t)
            if k == blocks:
                break
            frame = np.ascontiguousarray(mic[k * block:(k + 1) * block, 0])
            if playback is not None:
                for start, played in sim.played[n_played:]:
                    playback.add(start, played, sim.out_rate)
                n_played = len(sim.played)
                playback.read(k, far)
                sim.feed_played(NumpyData(far.copy(), sample_rate=rate, pts=k * block, seq=k))
            sim.deliver(t + period, "input", [NumpyData(
                frame, sample_rate=rate, pts=k * block, seq=k,
                metadata=metadata.get(str(k)))])
        sim.run_until(sim.now + period)
    finally:
        sim.close()
    channels = int(doc.get("output_channels") or 1)
    replayed = played_audio(sim.played, sim.out_rate, rate, blocks, channels)
    result = {"blocks": blocks, "notes": []}
    digest = doc.get("input_sha256")
    if digest is None:
        result["notes"].append("the recording keeps no digest of input.wav (made before "
                               "there was one): its input is taken as recorded")
    else:
        result["input"] = {"identical": _samples_digest(mic[:, 0]) == digest}
    result["output"] = audio_difference(out, replayed) if out_rate == sim.out_rate else \
        {"sample_rates": [out_rate, sim.out_rate], "identical": False}
    masked_a, n_masked = _mask_wall_clock(recorded_events)
    masked_b, _ = _mask_wall_clock(event_records(sim.events, period))
    result["events"] = event_differences(masked_a, masked_b)
    if n_masked:
        fields = ", ".join(f"{t}.{f}" for t, fs in WALL_CLOCK_FIELDS.items() for f in fs)
        result["events"]["wall_clock_masked"] = n_masked
        result["notes"].append(f"{n_masked} event(s) carry wall-clock measurements ({fields}: "
                               f"measured by the node on this machine's clock), not compared")
    result["turns"] = _turn_differences(doc, report, sim, meter, costs, stop_reason)
    if stop_reason is not None:
        result["notes"].append(f"the recorded run was stopped ({stop_reason}) after "
                               f"{blocks} blocks: replayed to there")
    if doc["room"]:
        result["notes"].append("the room figures of each turn (ERLE, residual echo, "
                               "self-interruptions, double talk) are not recomputed: the echo "
                               "alone is not kept")
    result["identical"] = bool(result["output"].get("identical")) and \
        result["events"]["count"] == 0 and result["turns"]["count"] == 0 and \
        result.get("input", {}).get("identical", True)
    return result


def _count(value, where, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{where}: {key} must be a whole number >= {low}, got {value!r:.60}")
    return value


def check_document(doc, where) -> dict[str, list[float]]:
    """Check every field of a recording's conversation.json `doc` with the checks a live run's
    inputs get (the script's turns and times: converse.script_turns; the costs:
    converse.check_costs, in seconds); returns the cost table (s). UsageError (exit 2, one
    line naming `where` and the field) otherwise."""
    if not isinstance(doc, dict) or type(doc.get("version")) is not int or \
            doc["version"] != VERSION:   # not True, not 1.0
        raise UsageError(f"{where}: not a conversation recording (version {VERSION} expected)")
    for key, low in (("blocks", 0), ("block_size", 1), ("sample_rate", 1), ("output_rate", 1),
                     ("output_channels", 1), ("seed", 0)):
        _count(doc.get(key), where, key, low)
    for key in ("room", "played_feedback"):
        if not isinstance(doc.get(key), bool):
            raise UsageError(f"{where}: {key} must be true or false, got {doc.get(key)!r:.60}")
    for key, need in (("timing", True), ("manifest_name", False), ("script_name", False),
                      ("input_sha256", False), ("stop_reason", False)):
        value = doc.get(key)
        if not isinstance(value, str) and (need or value is not None):
            raise UsageError(f"{where}: {key} must be text, got {value!r:.60}")
    digest = doc.get("input_sha256")
    if digest is not None and not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise UsageError(f"{where}: input_sha256 must be 64 hex digits, got {digest!r:.60}")
    try:
        table = check_costs(doc.get("costs_s"), f"{where}: costs_s", "s")
        turns = doc.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ScriptError(f"{where}: turns must be a list of at least one turn, got "
                              f"{turns!r:.60}")
        for i, t in enumerate(turns):
            if not isinstance(t, dict) or set(t) != _TURN_FIELDS:
                fields = ", ".join(sorted(_TURN_FIELDS))
                raise ScriptError(f"{where}: turns[{i}] must be {{{fields}}}, got {t!r:.60}")
            _ms(t["after_ms"], f"{where}: turns[{i}].after_ms")
        # as a script states them (say or play, after_ms or barge_in_after_ms), files unread
        script_turns({"turns": [
            {k: v for k, v in t.items() if v is not None and not (
                k == "after_ms" and t["barge_in_after_ms"] is not None)} for t in turns]},
            str(where), "/", check_files=False)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    spans = doc.get("spans")
    if spans is not None:
        if not isinstance(spans, list) or len(spans) > len(turns) or not all(
                isinstance(s, list) and len(s) == 2 and all(
                    not isinstance(x, bool) and isinstance(x, (int, float)) and
                    0 <= x <= MAX_SPAN_S for x in s) and s[0] <= s[1]
                for s in spans):
            raise UsageError(f"{where}: spans must be [[start_s, end_s], ...], one per turn "
                             f"begun, got {spans!r:.60}")
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(v, dict) and k.isdigit() and int(k) < doc["blocks"]
            for k, v in metadata.items()):
        raise UsageError(f"{where}: metadata must be {{block: {{...}}}} for blocks recorded, "
                         f"got {metadata!r:.60}")
    return table


def _mask_wall_clock(records: list) -> tuple[list, int]:
    """`records` with the WALL_CLOCK_FIELDS of their events set to None, and how many events
    had such a field."""
    out, n = [], 0
    for r in records:
        ev = r.get("event") if isinstance(r, dict) else None
        fields = WALL_CLOCK_FIELDS.get(ev.get("type")) if isinstance(ev, dict) else None
        if fields and any(f in ev for f in fields):
            r = {**r, "event": {**ev, **{f: None for f in fields if f in ev}}}
            n += 1
        out.append(r)
    return out, n


def _turn_differences(doc: dict, report: dict, sim, meter, costs, stop_reason=None) -> dict:
    """The replayed report's turns (conversation.py's own _report on the replayed run) against
    the recorded ones, field by field, room figures left out."""
    from .conversation import ConversationRun
    spans = doc.get("spans") or []
    turns = [UserTurn(**t) for t in doc["turns"]]
    fake = SimpleNamespace(turns=turns, costs=costs, manifest_name=doc.get("manifest_name"),
                           script_name=doc.get("script_name"), seed=doc.get("seed"),
                           # _report asks only whether there was a room (not which)
                           room=True if doc["room"] else None)
    simulated = doc["blocks"] * sim.period
    again = ConversationRun._report(fake, sim, meter, [list(s) for s in spans], simulated, 0.0)
    again = json.loads(strictjson.dumps(again))
    if stop_reason is not None:   # as the stopped run reported: the turns the user began
        again["turns"] = again["turns"][:len(spans)]
    diffs = []
    recorded = report.get("turns") or []
    for i in range(max(len(recorded), len(again["turns"]))):
        a = recorded[i] if i < len(recorded) else {}
        b = again["turns"][i] if i < len(again["turns"]) else {}
        for key in dict.fromkeys([*a, *b]):
            if key in ROOM_FIELDS:
                continue
            if a.get(key) != b.get(key):
                diffs.append({"turn": i + 1, "field": key, "recorded": a.get(key),
                              "replayed": b.get(key)})
    for key in ("interrupts", "bot_speech_s"):
        x, y = (report.get("stats") or {}).get(key), again["stats"].get(key)
        if x != y:
            diffs.append({"turn": None, "field": f"stats.{key}", "recorded": x,
                          "replayed": y})
    return {"count": len(diffs), "turns": len(again["turns"]), "first": diffs[:10]}


def format_replay(path, result: dict) -> str:
    """The replay's verdict for people, one line per part."""
    from .replay import describe_output
    if "stop_reason" in result:
        return (f"replay of the conversation recorded in {path} stopped "
                f"({result['stop_reason']}) after {result['blocks_replayed']} of "
                f"{result['blocks']} blocks: not compared with the recording")
    o, e, t = result["output"], result["events"], result["turns"]
    lines = [f"replayed the conversation recorded in {path}: {result['blocks']} blocks, in "
             f"simulated time with the recorded node costs"]
    if "input" in result:
        lines.append("  input: input.wav holds the samples recorded" if result["input"][
            "identical"] else "  input: input.wav is not what was recorded (its samples' "
                              "SHA-256 differs from conversation.json's)")
    lines.append(describe_output(o))
    lines.append("  events: identical to the recorded events" if e["count"] == 0 else
                 f"  events: {e['count']} differ from the recorded events "
                 f"({e['events'][0]} recorded, {e['events'][1]} replayed)")
    lines.append(f"  turns: identical to the recorded report's {t['turns']} turns"
                 if t["count"] == 0 else
                 f"  turns: {t['count']} field(s) differ from the recorded report, first: "
                 + "; ".join(f"turn {d['turn']} {d['field']} {d['recorded']!r} -> "
                             f"{d['replayed']!r}" for d in t["first"][:3]))
    for note in result["notes"]:
        lines.append(f"  note: {note}")
    lines.append("  identical: yes" if result["identical"] else "  identical: NO")
    return "\n".join(lines)


__all__ = ["FILES", "MARKER", "RecordingSim", "check_record_dir", "format_replay",
           "is_conversation_recording", "played_audio", "recording_run",
           "replay_conversation", "write_recording"]
