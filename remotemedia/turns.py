"""Conversation turns measured from the audio: when the user stopped, when the bot answered.

A `TurnMeter` is told, in the run's time (seconds on the run's clock: simulated for a file or a
scripted conversation, the device's for a live run), what happened as it happened:

- `speech_end(t, media_s, node)`: the VAD decided the user's turn ended (the endpoint) at `t`;
  the user's speech ended at media time `media_s` (the VAD's speech_end pts: the last speech
  block, padded by its pad_ms). This opens a measured turn.
- `transcript(t, text, node)`, `reply_text(t, text, node)`, `reply_audio(t, node)`: the first
  transcript, first reply text and first synthesized block after the endpoint;
- `played(t)`: a block of the bot's audio started at the output at `t` (DAC or media time);
- `reply(text)`: the whole reply, when the responder has finished;
- `speech_start(t, media_s)` and `interrupted(t)`, `stopped(t)`: a barge-in: the user began at
  `media_s`, the VAD said so at `t`, the bot was interrupted, and its last sample left at
  `stopped`.

Each measured turn gives voice-to-voice = first reply sample out - user speech end (ms), and a
breakdown that sums to it: `endpoint` (speech end -> endpoint decided), then one entry per node
by id (the transcriber: endpoint -> transcript; the responder: transcript -> first reply text;
the synthesizer: first text -> first audio), and `output` (first audio -> first sample out:
queueing and buffering at the output). `summary()` is the `turns` section of a stats report.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MeasuredTurn:
    """One user turn as the audio showed it; times in seconds on the run's clock (None: not
    reached). `end_media_s` is the user's speech end (media time)."""

    end_media_s: float
    endpoint_s: float
    vad: str
    transcript_s: float | None = None
    transcript: str = ""
    stt: str | None = None
    reply_text_s: float | None = None
    reply_text: str = ""
    llm: str | None = None
    reply_audio_s: float | None = None
    tts: str | None = None
    out_s: float | None = None
    reply: str | None = None
    #: barge-in into this turn's reply: the VAD's speech_start time, when the bot stopped
    interrupted_s: float | None = None
    stopped_s: float | None = None
    barge_media_s: float | None = None
    errors: list = field(default_factory=list)

    def breakdown_ms(self) -> dict | None:
        """{"endpoint", STT_ID, LLM_ID, TTS_ID, "output"} in ms, summing to voice-to-voice;
        None when no reply sample reached the output."""
        if self.out_s is None:
            return None
        marks = [("endpoint", self.endpoint_s), (self.stt, self.transcript_s),
                 (self.llm, self.reply_text_s), (self.tts, self.reply_audio_s),
                 ("output", self.out_s)]
        out, last = {}, self.end_media_s
        for name, t in marks:
            if t is None or name is None:
                continue
            out[name] = round((t - last) * 1e3, 3)
            last = t
        return out

    def voice_to_voice_ms(self) -> float | None:
        """First reply sample out - user speech end, in ms (the breakdown's sum); None when
        nothing was played."""
        parts = self.breakdown_ms()
        return None if parts is None else round(sum(parts.values()), 3)

    def row(self) -> dict:
        """This turn as the `turns` section lists it: {"end_s", "endpoint_s",
        "voice_to_voice_ms", "breakdown_ms", "barge_in_stop_ms", "barge_in_s" (when the
        user's speech over this turn's reply was heard, None without one), "heard",
        "reply"}."""
        return {"end_s": round(self.end_media_s, 4), "endpoint_s": round(self.endpoint_s, 4),
                "voice_to_voice_ms": self.voice_to_voice_ms(),
                "breakdown_ms": self.breakdown_ms(),
                "barge_in_stop_ms": self.barge_in_stop_ms(),
                "barge_in_s": None if self.interrupted_s is None else round(
                    self.interrupted_s, 4),
                "heard": self.transcript, "reply": self.reply}

    def barge_in_stop_ms(self) -> float | None:
        """Last bot sample out - the VAD's speech_start of the barge-in, in ms; None when the
        bot was not interrupted (or had not stopped)."""
        if self.interrupted_s is None or self.stopped_s is None:
            return None
        return round((self.stopped_s - self.interrupted_s) * 1e3, 3)


class TurnMeter:
    """Collects the turns of one run (module docstring). Not thread-safe: one run's events,
    in time order."""

    def __init__(self) -> None:
        self.turns: list[MeasuredTurn] = []
        #: barge-ins (the bot stopped for the user) and speech starts while it was silent
        self.interruptions = 0
        self._barge: tuple[float, float] | None = None

    @property
    def current(self) -> MeasuredTurn | None:
        """The latest measured turn (None before the first endpoint)."""
        return self.turns[-1] if self.turns else None

    def speech_start(self, t: float, media_s: float) -> None:
        """The VAD said the user started (at `t`; the speech began at `media_s`)."""
        self._barge = (t, media_s)

    def speech_end(self, t: float, media_s: float, node: str) -> None:
        """The endpoint: opens a turn."""
        self.turns.append(MeasuredTurn(end_media_s=media_s, endpoint_s=t, vad=node))

    def transcript(self, t: float, text: str, node: str) -> None:
        """A final transcript: the first after the endpoint times the turn; all are kept."""
        turn = self.current
        if turn is None:
            return
        if turn.transcript_s is None:
            turn.transcript_s, turn.stt = t, node
        turn.transcript = f"{turn.transcript} {text}".strip()

    def reply_text(self, t: float, text: str, node: str) -> None:
        """A piece of reply text."""
        turn = self.current
        if turn is not None and turn.reply_text_s is None and turn.transcript_s is not None:
            turn.reply_text_s, turn.reply_text, turn.llm = t, text, node

    def reply(self, text: str, error: str | None = None) -> None:
        """The whole reply (and the responder's error, if any)."""
        turn = self.current
        if turn is not None:
            turn.reply = text
            if error:
                turn.errors.append(error)

    def reply_audio(self, t: float, node: str) -> None:
        """A synthesized block of the reply."""
        turn = self.current
        if turn is not None and turn.reply_audio_s is None and turn.reply_text_s is not None:
            turn.reply_audio_s, turn.tts = t, node

    def played(self, t: float) -> None:
        """A block of the bot's reply began to play at the output at `t`."""
        turn = self.current
        if turn is not None and turn.out_s is None and turn.reply_audio_s is not None:
            turn.out_s = t

    def interrupted(self, t: float) -> MeasuredTurn | None:
        """The bot was interrupted at `t` (the VAD's speech_start): counted, and set on the
        turn whose reply it cut. Returns that turn."""
        self.interruptions += 1
        turn = self.current
        if turn is not None:
            turn.interrupted_s = t
            turn.barge_media_s = self._barge[1] if self._barge else None
        return turn

    def stopped(self, t: float, turn: MeasuredTurn | None = None) -> None:
        """The bot's last sample after an interrupt left the output at `t`; `turn`: the one
        interrupted (default: the current one; a later turn may have begun since)."""
        turn = turn if turn is not None else self.current
        if turn is not None and turn.interrupted_s is not None and turn.stopped_s is None:
            turn.stopped_s = t

    def summary(self) -> dict:
        """The stats report's `turns` section: {"count", "replied", "interruptions",
        "voice_to_voice_ms": {"p50", "p90", "max"} (None without a reply),
        "barge_in_stop_ms": {"p50", "max"}, "turns": [per turn: MeasuredTurn.row()]}."""
        turns = list(self.turns)   # a UI or a scrape may read while the run appends
        v2v = sorted(v for v in (t.voice_to_voice_ms() for t in turns) if v is not None)
        stops = sorted(v for v in (t.barge_in_stop_ms() for t in turns) if v is not None)
        return {
            "count": len(self.turns), "replied": len(v2v), "interruptions": self.interruptions,
            "voice_to_voice_ms": _quantiles(v2v), "barge_in_stop_ms": _quantiles(stops),
            "turns": [t.row() for t in turns]}


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p90": None, "max": None}
    return {"p50": values[len(values) // 2], "p90": values[min(len(values) - 1,
                                                               int(len(values) * 0.9))],
            "max": values[-1]}


__all__ = ["MeasuredTurn", "TurnMeter"]
