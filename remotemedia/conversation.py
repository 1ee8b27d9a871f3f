"""Run a scripted conversation (remotemedia.converse) and report it turn by turn.

    report = ConversationRun("manifests/assistant.yaml", "hello.yaml", timing="measured").run()

The report (a dict ready for strict JSON):

    {"manifest", "script", "timing": "measured" | COST_FILE, "seed",
     "turns": [{"user", "heard", "wer", "reply", "voice_to_voice_ms",
                "breakdown_ms": {"endpoint", NODE_ID..., "output"}, "barge_in_stop_ms",
                "interrupted", "start_s", "end_s",
                "expect": [{"what", "passed", "why"}]}],
     "passed", "simulated_s", "wall_s",
     "stats": {"nodes": {NODE_ID: {"calls", "cost_ms", "cost_max_ms",
                                   "speculative": {"runs", "used", "discarded"} (Transcribe
                                   with speculative: true)}}, "turns": {...},
               "interrupts", "bot_speech_s"},
     "room": {...} (a script with room: only; remotemedia.conversation_room),
     "output_latency_ms" (only when the run was given one: ConversationRun)}

With a `room:` in the script, each turn also has "erle_db", "residual_echo_dbfs",
"self_interruptions" and "double_talk_s", and the bot's output reaches the graph's input
through the room (conversation_room.py).

Times are simulated seconds (media time of the input); latencies in ms. `null` where a figure
does not apply: no reply sample played (voice_to_voice_ms), no barge-in in this user turn
(barge_in_stop_ms: it belongs to the turn that barged in), no text to score (wer). With a cost
file (`timing=PATH`) two runs give the same report but for `wall_s`.
"""

from __future__ import annotations

import re
import string
import time
from typing import Any

import numpy as np

from .converse import (MAX_SCRIPT_MS, REPLY_TIMEOUT_S, TAIL_S, NOISE_DBFS, Costs, ScriptError,
                       UserTurn, _Sim, check_voice_graph, load_script, read_script, script_turns)
from .engine.data import NumpyData
from .engine.node import AudioFormat, NodeContext
from .engine.session import Pipeline
from .conversation_room import Playback, RoomMeter, SimRoom, load_room
from .turns import GAP_S, SOUND, TurnMeter, last_sound, onset

#: the user's voice: espeak-ng, whose output is the same on every run
USER_ENGINE = "espeak"


def _users(turn, spans) -> bool:
    """Whether the speech that interrupted the reply of `turn` (a MeasuredTurn) was the
    user's: it began while the user's audio played (conversation_room.user_at), not over the
    bot's echo alone."""
    from .conversation_room import user_at
    start = turn.barge_media_s if turn.barge_media_s is not None else turn.interrupted_s
    return user_at(start, spans)


class ConversationRun:
    """A scripted user against a voice manifest, in simulated time.

    `manifest`: a path, dict or text; `script`: a path, a parsed dict, or a list of UserTurn;
    `timing`: "measured", a cost-file path, or a Costs; `seed`: the user's noise floor;
    `output_latency_ms`: the output device's latency (default 0: the simulated output is
    heard as it takes a block), which a live device adds after the block it takes (PortAudio's
    buffering and the server's period: a comparison with a live run adds what that run's
    device reported; a live run's cost file, Costs.save_live, gives it when this is 0); the
    bot's audio is heard that much later (`played`, the turn times, the user's barge-in
    timing) and the report has `output_latency_ms`. ScriptError (exit 2) for
    a bad script or cost file, ValueError for a latency that is not a number of ms from 0 to
    MAX_SCRIPT_MS, ManifestError for a bad manifest, NodeError while running."""

    #: the simulation's class (conversation_record.py's keeps what the bot heard and played)
    sim_class = _Sim

    def __init__(self, manifest: Any, script: Any, *, timing: Any = "measured", seed: int = 0,
                 allow_import=(), output_latency_ms: float = 0.0):
        if isinstance(output_latency_ms, bool) or not isinstance(output_latency_ms, (int, float)) \
                or not 0 <= output_latency_ms <= MAX_SCRIPT_MS:
            raise ValueError(f"output_latency_ms must be a number of ms from 0 to "
                             f"{MAX_SCRIPT_MS:g}, got {output_latency_ms!r:.40}")
        self.output_latency_ms = float(output_latency_ms)
        self.script_name = script if isinstance(script, str) else "<script>"
        self.room = None
        if isinstance(script, list):
            self.turns = list(script)
        else:
            doc, where, base = read_script(script)
            self.turns = script_turns(doc, where, base)
            self.room = load_room(doc.get("room"), where)
        self.pipeline = Pipeline.from_manifest(manifest, allow_import=allow_import)
        self.manifest_name = manifest if isinstance(manifest, str) else "<manifest>"
        check_voice_graph(self.pipeline.manifest, self.manifest_name)
        if isinstance(timing, Costs):
            self.costs = timing
        elif timing == "measured":
            self.costs = Costs()
        else:
            self.costs = Costs.load(timing)
        if self.costs.device_latency_ms is not None and not output_latency_ms:
            # a live run's cost file: its device path too (the output heard that much later)
            self.output_latency_ms = self.costs.device_latency_ms
        self.seed = seed
        self.report: dict | None = None
        #: why the run was asked to stop early (stop()), None while it runs to its end
        self.stop_reason: str | None = None
        self.costs.expect_nodes([s.id for s in self.pipeline.manifest.nodes])

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end at the next block period (a signal handler may call this): the
        report then holds the turns so far, `passed` false and `stop_reason` = `reason`."""
        self.stop_reason = reason

    # -- the user's audio ---------------------------------------------------------------------
    def _voices(self, rate: int, block: int) -> list[np.ndarray]:
        from .nodes.speak import Speak
        speak = None
        out = []
        for turn in self.turns:
            if turn.say is not None:
                if speak is None:
                    params = Speak.check_params({"engine": USER_ENGINE})
                    speak = Speak("user", **params)
                    speak.bind(NodeContext("user", AudioFormat(rate, 1, block)))
                    speak.setup()
                out.append(np.concatenate([b.array for b in speak.speak(turn.say)]))
            else:
                out.append(_read_wav(turn.play, rate))
        if speak is not None:
            speak.teardown()
        return out

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run the conversation; returns the report (module docstring) and keeps it as
        `self.report`."""
        wall0 = time.perf_counter()
        m = self.pipeline.manifest
        rate, block = m.audio.sample_rate, m.audio.block_size
        voices = self.voices = self._voices(rate, block)
        meter = TurnMeter()
        sim = self.sim = self.sim_class(m, self.costs, meter)
        sim.output_latency_s = self.output_latency_ms / 1e3
        rng = np.random.default_rng(self.seed)
        noise = 10 ** (NOISE_DBFS / 20)
        period = block / rate
        room = meter_room = None
        if self.room is not None:
            room = SimRoom(self.room, rate, block)
            cancellers = [i for i in m.order if type(sim.nodes[i]).__name__ == "EchoCancel"]
            meter_room = RoomMeter(rate, block, bool(cancellers))
            if cancellers:
                sim.watch[cancellers[0]] = meter_room.canceller
        playback = Playback(rate, block) if room is not None or sim.played_feedback else None
        far = np.zeros(block, dtype=np.float32)
        n_played = 0
        spans: list[list[float]] = []
        i, pos, speaking = 0, 0, False
        idle_since = None
        k = 0
        try:
            while self.stop_reason is None:
                t = k * period
                sim.run_until(t)
                sim.now = t
                sim.tick(t)
                busy = sim.bot_busy()
                idle_since = None if busy else (t if idle_since is None else idle_since)
                if not speaking:
                    if i >= len(voices):
                        prev_end = spans[-1][1]
                        if (self._answered(sim, prev_end) and idle_since is not None) or \
                                t >= prev_end + TAIL_S:
                            break
                    elif self._starts(i, t, spans, sim, idle_since):
                        speaking, pos = True, 0
                        spans.append([t, None])
                        sim.user_turn = len(spans) - 1
                frame = (rng.standard_normal(block) * noise).astype(np.float32)
                voiced = speaking
                if speaking:
                    voice = voices[i]
                    n = min(block, voice.shape[0] - pos)
                    frame[:n] += voice[pos:pos + n]
                    pos += n
                    if pos >= voice.shape[0]:
                        speaking = False
                        spans[-1][1] = t + n / rate
                        i += 1
                mic = NumpyData(frame, sample_rate=rate, pts=k * block, seq=k)
                if playback is not None:
                    # What the output plays over this block: heard by the room, and the
                    # canceller's reference (stamped with the time it played).
                    for start, played in sim.played[n_played:]:
                        playback.add(start, played, sim.out_rate)
                    n_played = len(sim.played)
                    playback.read(k, far)
                    sim.feed_played(NumpyData(far.copy(), sample_rate=rate, pts=k * block,
                                              seq=k))
                if room is not None:
                    mic, echo = room.hear(k, far, frame)
                    meter_room.heard(k, echo, mic.array, voiced, bool(far.any()))
                sim.deliver(t + period, "input", [mic])
                k += 1
            sim.run_until(sim.now + period)
            cut = bool(spans) and spans[-1][1] is None
            if cut:                                # stopped while the user spoke
                spans[-1][1] = k * period
        finally:
            sim.close()
            if room is not None:
                room.close()
        self.spans = [list(s) for s in spans]     # the user's turns, (start_s, end_s)
        self.report = self._report(sim, meter, spans, k * period, time.perf_counter() - wall0)
        if self.output_latency_ms:
            self.report["output_latency_ms"] = self.output_latency_ms
        if meter_room is not None:
            spans_now = [tuple(s) for s in spans]
            for i, row in enumerate(self.report["turns"]):
                start = spans[i][0] if i < len(spans) else None
                nxt = spans[i + 1][0] if i + 1 < len(spans) else None
                row.update(meter_room.turn_figures(start, nxt, sim.barge_ins, spans_now))
            self.report["room"] = meter_room.summary(self.room, sim.barge_ins, spans_now)
        if self.stop_reason is not None:
            # Stopped: the turns the user began are reported; the script did not pass.
            self.report["turns"] = self.report["turns"][:len(spans)]
            if cut and self.report["turns"]:
                # the user had not finished saying it: nothing to score (it read WER 1.0)
                self.report["turns"][-1]["wer"] = None
                self.report["turns"][-1]["cut"] = True
            self.report["passed"] = False
            self.report["stop_reason"] = self.stop_reason
        return self.report

    def audio_voice_to_voice(self) -> list[float | None]:
        """Per user turn of the finished run, voice-to-voice (ms) measured from the audio
        alone, as `converse --realtime` measures it (converse_live.py): the user's speech end
        is the last sample of its voice above turns.SOUND (-60 dBFS) as it entered, the bot's
        answer the first sample above it the output played after that (past a gap of
        turns.GAP_S if the bot was still speaking), before the next user turn began. The
        report's `voice_to_voice_ms` starts at the VAD's speech_end edge instead, which lags
        or leads the audio by a window or more; this is the figure a live run is compared
        with. None for a turn with no such sample. RuntimeError before run()."""
        if self.report is None:
            raise RuntimeError("audio_voice_to_voice() needs a finished run()")
        rate = self.pipeline.manifest.audio.sample_rate
        out_rate = self.sim.out_rate
        spans = self.spans
        total = self.report["simulated_s"]
        last = max((start + b.shape[0] / out_rate for start, b in self.sim.played),
                   default=0.0)
        loud = np.zeros(int(np.ceil(max(total, last) * out_rate)) + 1, dtype=bool)
        for start, b in self.sim.played:
            at = int(round(start * out_rate))
            level = np.abs(b) if b.ndim == 1 else np.abs(b).max(axis=1)
            loud[at:at + level.shape[0]] |= level > SOUND
        out = []
        for i, (start, _end) in enumerate(spans):
            end_s = start + last_sound(self.voices[i]) / rate
            nxt = spans[i + 1][0] if i + 1 < len(spans) else loud.shape[0] / out_rate
            first = onset(loud, int(round(end_s * out_rate)), int(round(nxt * out_rate)),
                          int(GAP_S * out_rate))
            out.append(None if first is None else round((first / out_rate - end_s) * 1e3, 3))
        return out + [None] * (len(self.turns) - len(spans))

    def _starts(self, i: int, t: float, spans, sim: _Sim, idle_since) -> bool:
        turn: UserTurn = self.turns[i]
        after = turn.after_ms / 1e3
        if i == 0:
            return t >= after
        prev_end = spans[-1][1]
        first = self._answered(sim, prev_end)
        if turn.barge_in_after_ms is not None and first is not None:
            return t >= first + turn.barge_in_after_ms / 1e3
        if first is not None and idle_since is not None:
            return t >= max(idle_since, first) + after
        return t >= prev_end + REPLY_TIMEOUT_S + after

    @staticmethod
    def _answered(sim: _Sim, since: float) -> float | None:
        """When the bot's first block after `since` began to play (None: not yet)."""
        first = None
        for start, _ in reversed(sim.played):
            if start < since:
                break
            first = start
        return first

    # -- the report ---------------------------------------------------------------------------
    def _report(self, sim: _Sim, meter: TurnMeter, spans, simulated_s: float,
                wall_s: float) -> dict:
        turns = []
        measured = meter.turns
        if self.room is not None:
            # the bot's own voice can barge in too: a self-interruption is the room's figure,
            # not a user's barge-in, in the turns and in stats.turns alike
            for mt in measured:
                if mt.interrupted_s is not None and not _users(mt, spans):
                    mt.self_interrupted = True
        for i, turn in enumerate(self.turns):
            start, end = spans[i] if i < len(spans) else (None, None)
            nxt = spans[i + 1][0] if i + 1 < len(spans) else float("inf")
            mine = [mt for mt in measured if start is not None
                    and start <= mt.end_media_s < nxt]
            heard = " ".join(mt.transcript for mt in mine if mt.transcript).strip()
            replies = [mt.reply for mt in mine if mt.reply]
            reply = replies[-1] if replies else None
            timed = [mt for mt in mine if mt.out_s is not None]
            v2v = timed[-1].voice_to_voice_ms() if timed else None
            parts = timed[-1].breakdown_ms() if timed else None
            # A barge-in belongs to the user turn that barged in: the measured turn its speech
            # opened carries it (TurnMeter), as stats.turns lists it. In a room the bot's own
            # voice can barge in too: a self-interruption is the room's figure, not the user's.
            stops = [mt.barged.barge_in_stop_ms() for mt in mine if mt.barged is not None]
            stop = next((v for v in stops if v is not None), None)
            opening = mine[0] if mine else None
            dead = v2v if v2v is not None or end is None or nxt == float("inf") \
                else round((nxt - end) * 1e3, 3)
            row = {"user": turn.label, "heard": heard, "wer": _wer(turn.say, heard),
                   "reply": reply, "voice_to_voice_ms": v2v, "breakdown_ms": parts,
                   "barge_in_stop_ms": stop,
                   "gap_ms": None if opening is None else opening.gap_ms(),
                   "overlap_ms": None if opening is None else opening.overlap_ms(),
                   "dead_air_ms": dead,
                   "false_barge_ins": sum(mt.false_barge_in() for mt in mine),
                   "interrupted": any(mt.interrupted_s is not None for mt in mine),
                   "start_s": None if start is None else round(start, 4),
                   "end_s": None if end is None else round(end, 4)}
            row["expect"] = _expectations(turn.expect, row)
            turns.append(row)
        nodes = {k: {"calls": len(v), "cost_ms": round(sum(v) * 1e3, 3),
                     "cost_max_ms": round(max(v) * 1e3, 3) if v else 0.0}
                 for k, v in sorted(self.costs.charged.items())}
        for node_id, node in sim.nodes.items():
            if getattr(node, "speculative", False):
                nodes.setdefault(node_id, {})["speculative"] = {
                    "runs": node.speculative_runs, "used": node.speculative_used,
                    "discarded": node.speculative_discarded}
        return {"manifest": self.manifest_name, "script": self.script_name,
                "timing": self.costs.source, "seed": self.seed, "turns": turns,
                "passed": all(e["passed"] for t in turns for e in t["expect"]),
                "simulated_s": round(simulated_s, 4), "wall_s": round(wall_s, 3),
                "stats": {"nodes": nodes, "turns": meter.summary(),
                          "interrupts": sim.interrupts, "bot_speech_s": round(sim.spoken, 4)}}

    def failures(self) -> list[str]:
        """One line per expectation that failed: 'turn N (USER): WHY'."""
        if self.report is None:
            return []
        return [f"turn {i + 1} ({t['user']}): {e['why']}"
                for i, t in enumerate(self.report["turns"]) for e in t["expect"]
                if not e["passed"]]


def _expectations(expect: dict, row: dict) -> list[dict]:
    out = []
    for key in ("heard", "reply"):
        if key not in expect:
            continue
        pattern = str(expect[key])
        got = row[key]
        ok = got is not None and re.search(pattern, got, re.IGNORECASE) is not None
        why = None if ok else (f"{key} {got!r} does not match /{pattern}/" if got is not None
                               else f"no {key}: nothing matches /{pattern}/")
        out.append({"what": f"{key} ~ /{pattern}/", "passed": ok, "why": why})
    if "within_ms" in expect:
        limit = float(expect["within_ms"])
        v = row["voice_to_voice_ms"]
        ok = v is not None and v <= limit
        why = None if ok else (f"voice-to-voice {v:g} ms > {limit:g} ms" if v is not None
                               else "no reply sample reached the output")
        out.append({"what": f"voice_to_voice_ms <= {limit:g}", "passed": ok, "why": why})
    return out


_PUNCT = str.maketrans("", "", string.punctuation.replace("'", ""))


def _norm(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).replace("-", " ").split())


def _wer(said: str | None, heard: str) -> float | None:
    """Word error rate (jiwer) of what was heard against what was said; None without text."""
    if said is None or not _norm(said):
        return None
    if not _norm(heard):
        return 1.0
    import jiwer
    return round(float(jiwer.wer(_norm(said), _norm(heard))), 4)


def _read_wav(path: str, rate: int) -> np.ndarray:
    """A WAV as float32 mono at `rate` (soxr). ScriptError naming the file if unreadable,
    empty, longer than MAX_PLAY_S, with NaN/Inf samples, or of a channel count with no
    declared mix to mono (io/convert.py's rule, as `stream` has it: 1, or 2 as the mean)."""
    import soundfile
    from .converse import MAX_PLAY_S
    from .engine.errors import UnsupportedMix
    from .io.convert import channel_mix
    try:
        info = soundfile.info(path)
        if info.frames > MAX_PLAY_S * info.samplerate:
            raise ScriptError(f"{path}: {info.frames / info.samplerate:.0f} s of audio; a "
                              f"play: file is at most {MAX_PLAY_S:.0f} s")
        audio, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except ScriptError:
        raise
    except Exception as exc:       # soundfile's LibsndfileError and kin
        raise ScriptError(f"{path}: cannot read it as audio: {exc}") from None
    try:
        mix = channel_mix(audio.shape[1], 1)
    except UnsupportedMix as exc:
        raise ScriptError(f"{path}: {exc}") from None
    if audio.shape[0] == 0:
        raise ScriptError(f"{path}: the file has no samples (a silent pause is after_ms:)")
    if not np.isfinite(audio).all():
        raise ScriptError(f"{path}: {int(np.count_nonzero(~np.isfinite(audio)))} NaN or "
                          f"infinite sample(s); the user's audio must be finite")
    mono = audio[:, 0] if mix is None else audio.mean(axis=1, dtype=np.float32)
    if file_rate != rate:
        import soxr
        mono = soxr.resample(mono, file_rate, rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono)


__all__ = ["ConversationRun", "USER_ENGINE"]
