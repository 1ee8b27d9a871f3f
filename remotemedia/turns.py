"""Conversation turns measured from the audio: when the user stopped, when the bot answered.

A `TurnMeter` is told, in the run's time (seconds on the run's clock: simulated for a file or a
scripted conversation, the device's for a live run), what happened as it happened:

- `speech_end(t, media_s, node)`: the VAD decided the user's turn ended (the endpoint) at `t`;
  the user's speech ended at media time `media_s` (the VAD's speech_end `edge_pts`: one past
  the last speech sample, unpadded). This opens a measured turn.
- `transcript(t, text, node, media_s)`: a transcript of the audio from media time `media_s`
  on; it belongs to the utterance that audio is in (a piece of a long utterance comes before
  its endpoint, and waits for it), and the first one after that utterance's endpoint times it;
- `reply_text(t, text, node)`, `reply_audio(t, node)`: the first reply text and first
  synthesized block after the transcript;
- `played(t)`: a block of the bot's audio started at the output at `t` (DAC or media time);
- `reply(text)`: the whole reply, when the responder has finished;
- `speech_start(t, media_s)` and `interrupted(t)`, `stopped(t)`: a barge-in: the user began at
  `media_s` (the speech_start's unpadded `edge_pts`), the VAD said so at `t`, the bot's reply
  to the current turn was interrupted (that turn is `interrupted`; without a turn there is no
  reply to interrupt and nothing is counted), and its last sample left at `stopped`. The
  barge-in stop (`stopped` - `media_s`) belongs to the user turn that barged in: the turn the
  next endpoint opens.

Each measured turn gives voice-to-voice = first reply sample out - user speech end (ms), and a
breakdown that sums to it: `endpoint` (speech end -> endpoint decided), then one entry per node
by id (the transcriber: endpoint -> transcript; the responder: transcript -> first reply text;
the synthesizer: first text -> first audio), and `output` (first audio -> first sample out:
queueing and buffering at the output). `summary()` is the `turns` section of a stats report.

At each change of speaker (conversation analysis' terms; `played(t, length_s)` tells the meter
where the bot's audio ends): `gap_ms`, the silence from the end of the bot's audio to the
user's speech start, or `overlap_ms`, the time both spoke (the bot's audio past the user's
start, up to the user's end); `dead_air_ms`, the silence the user waited through after
speaking (voice-to-voice when the bot answered; to the user's next speech when it did not);
a `false_barge_in`, speech that interrupted the bot but held no words (a cough, a noise; in a
room run, the bot's own echo).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    #: the user's speech start (media time, unpadded), when the VAD's start was seen
    start_media_s: float | None = None
    #: the turn whose reply this turn's speech interrupted (its barge-in stop is this turn's)
    barged: "MeasuredTurn | None" = None
    #: the speech that interrupted this turn's reply was the bot's own echo (a room run knows
    #: the user's spans): an interruption, but no user's barge-in, so no barge-in stop time
    self_interrupted: bool = False
    #: where the bot's audio ended before this turn's speech began (run's clock), and how far
    #: it went on into it (None: the bot had not spoken)
    bot_end_s: float | None = None
    #: what ended the utterance when it was not the VAD's silence (its speech_end's
    #: `closed_by`: "end_of_stream", "flush", "discontinuity"): no endpoint, no voice-to-voice
    closed_by: str | None = None
    errors: list = field(default_factory=list)

    def gap_ms(self) -> float | None:
        """Silence from the end of the bot's audio to this turn's speech start (ms); None when
        they overlapped, the bot had not spoken or the start is unknown."""
        if self.bot_end_s is None or self.start_media_s is None \
                or self.bot_end_s > self.start_media_s:
            return None
        return round((self.start_media_s - self.bot_end_s) * 1e3, 3)

    def overlap_ms(self) -> float | None:
        """The time the bot's audio went on into this turn's speech (ms, up to its end); None
        when it did not."""
        if self.bot_end_s is None or self.start_media_s is None \
                or self.bot_end_s <= self.start_media_s:
            return None
        return round((min(self.bot_end_s, self.end_media_s) - self.start_media_s) * 1e3, 3)

    def false_barge_in(self) -> bool:
        """This turn's speech interrupted the bot and held no words (or was the bot's own
        echo, in a room)."""
        barged = self.barged
        return barged is not None and (barged.self_interrupted or not self.transcript.strip())

    def breakdown_ms(self) -> dict | None:
        """{"endpoint", STT_ID, LLM_ID, TTS_ID, "output"} in ms, summing to voice-to-voice;
        None when no reply sample reached the output, or no endpoint was decided (the stream
        ended the utterance: `closed_by`)."""
        if self.out_s is None or self.closed_by is not None:
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
        user's speech over the previous reply began, media time; None when this turn did not
        barge in), "heard", "reply", "interrupted" (the user spoke over this turn's reply and
        cut it; the section's `interruptions` counts these), "gap_ms", "overlap_ms",
        "false_barge_in"}."""
        return {"end_s": round(self.end_media_s, 4), "endpoint_s": round(self.endpoint_s, 4),
                "voice_to_voice_ms": self.voice_to_voice_ms(),
                "breakdown_ms": self.breakdown_ms(),
                "barge_in_stop_ms": None if self.barged is None else
                self.barged.barge_in_stop_ms(),
                "barge_in_s": None if self.barged is None or self.barged.barge_media_s is None
                else round(self.barged.barge_media_s, 4),
                "barge_in_decided_stop_ms": None if self.barged is None else
                self.barged.decided_stop_ms(),
                "heard": self.transcript, "reply": self.reply,
                "interrupted": self.interrupted_s is not None,
                "gap_ms": self.gap_ms(), "overlap_ms": self.overlap_ms(),
                "false_barge_in": self.false_barge_in(), "closed_by": self.closed_by}

    def barge_in_stop_ms(self) -> float | None:
        """Last sample of this turn's reply out - the barging user's speech start (media time,
        unpadded; the VAD's decision time when unknown), in ms; None when this turn's reply was
        not interrupted (or had not stopped), and when the bot's last sample had left before the
        user began: the interrupt dropped a reply that had not sounded yet, so nothing was
        stopped (it was -644 ms). The report lists it on the barging turn."""
        if self.interrupted_s is None or self.stopped_s is None or self.self_interrupted:
            return None
        start = self.barge_media_s if self.barge_media_s is not None else self.interrupted_s
        if self.stopped_s < start:
            return None
        return round((self.stopped_s - start) * 1e3, 3)

    def decided_stop_ms(self) -> float | None:
        """Last sample of this turn's reply out - the VAD's speech_start decision, in ms: how
        fast the loop acts once it knows (barge_in_stop_ms adds the time the VAD took to be
        sure, its min_speech_ms); None when the reply was not interrupted or had not stopped,
        or the bot had already gone silent before the decision (nothing was stopped)."""
        if self.interrupted_s is None or self.stopped_s is None or self.self_interrupted \
                or self.stopped_s < self.interrupted_s:
            return None
        return round((self.stopped_s - self.interrupted_s) * 1e3, 3)


class TurnMeter:
    """Collects the turns of one run (module docstring). Not thread-safe: one run's events,
    in time order."""

    def __init__(self) -> None:
        self.turns: list[MeasuredTurn] = []
        #: the last speech_start (t, media_s), and the turn its speech interrupted
        self._barge: tuple[float, float] | None = None
        self._barged: MeasuredTurn | None = None
        #: transcripts of audio after the current turn's end: (media_s, text) of the utterance
        #: not yet ended (a long one is transcribed in pieces)
        self._early: list[tuple[float, str]] = []
        #: where the bot's audio played so far ends (run's clock; None before it spoke)
        self._bot_until: float | None = None

    @property
    def interruptions(self) -> int:
        """Turns whose reply was interrupted (each turn's `interrupted`, counted)."""
        return sum(1 for t in list(self.turns) if t.interrupted_s is not None)

    @property
    def current(self) -> MeasuredTurn | None:
        """The latest measured turn (None before the first endpoint)."""
        return self.turns[-1] if self.turns else None

    def speech_start(self, t: float, media_s: float) -> None:
        """The VAD said the user started (at `t`; the speech began at `media_s`)."""
        self._barge = (t, media_s)
        self._barged = None

    def speech_end(self, t: float, media_s: float, node: str,
                   closed_by: str | None = None) -> None:
        """The endpoint: opens a turn (with the transcripts of its audio that came before).
        `closed_by`: what ended the utterance when no endpoint was decided (the end of the
        stream): the turn is then measured (heard, replied) but has no voice-to-voice."""
        turn = MeasuredTurn(end_media_s=media_s, endpoint_s=t, vad=node,
                            start_media_s=self._barge[1] if self._barge else None,
                            barged=self._barged, bot_end_s=self._bot_until,
                            closed_by=closed_by)
        turn.transcript = " ".join(text for m, text in self._early if m < media_s)
        self._early = [(m, text) for m, text in self._early if m >= media_s]
        self._barge, self._barged = None, None
        self.turns.append(turn)

    def transcript(self, t: float, text: str, node: str,
                   media_s: float | None = None) -> None:
        """A final transcript of the audio from `media_s` on (None: the current turn's): added
        to the turn whose speech that is; the first after that turn's endpoint times it."""
        turn = self._owner(media_s)
        if turn is None:
            if media_s is not None:
                self._early.append((media_s, text))
            return
        if turn.transcript_s is None and t >= turn.endpoint_s:
            turn.transcript_s, turn.stt = t, node
        turn.transcript = f"{turn.transcript} {text}".strip()

    def _owner(self, media_s: float | None) -> MeasuredTurn | None:
        """The turn whose speech holds media time `media_s`: the first ending after it (None:
        the utterance has not ended yet); the current turn when `media_s` is None."""
        if media_s is None:
            return self.current
        for turn in self.turns:
            if media_s < turn.end_media_s:
                return turn
        return None

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

    def played(self, t: float, length_s: float = 0.0) -> None:
        """A block of the bot's reply (`length_s` long) began to play at the output at `t`."""
        end = t + length_s
        if self._bot_until is None or end > self._bot_until:
            self._bot_until = end
        turn = self.current
        if turn is not None and turn.out_s is None and turn.reply_audio_s is not None:
            turn.out_s = t

    def interrupted(self, t: float) -> MeasuredTurn | None:
        """The bot was interrupted at `t` (the VAD's speech_start): set on the current turn,
        whose reply it cut, once. Returns that turn (None: no turn, so no reply to cut)."""
        turn = self.current
        if turn is not None and turn.interrupted_s is None:
            turn.interrupted_s = t
            turn.barge_media_s = self._barge[1] if self._barge else None
            self._barged = turn
        return turn

    def stopped(self, t: float, turn: MeasuredTurn | None = None) -> None:
        """The bot's last sample after an interrupt left the output at `t`; `turn`: the one
        interrupted (default: the current one; a later turn may have begun since)."""
        turn = turn if turn is not None else self.current
        if turn is not None and turn.interrupted_s is not None and turn.stopped_s is None:
            turn.stopped_s = t
            if self._bot_until is not None and t < self._bot_until:
                self._bot_until = t          # the audio queued after it was dropped

    def summary(self) -> dict:
        """The stats report's `turns` section: {"count", "replied", "interruptions",
        "voice_to_voice_ms": {"p50", "p90", "max"} (None without a reply),
        "barge_in_stop_ms", "barge_in_decided_stop_ms", "gap_ms", "overlap_ms": {"p50", "p90",
        "max"}, "dead_air_ms": {"total", "max"}, "false_barge_ins" (a count), "turns": [per turn:
        MeasuredTurn.row() and its "dead_air_ms"]} (module docstring for the definitions)."""
        turns = list(self.turns)   # a UI or a scrape may read while the run appends
        v2v = sorted(v for v in (t.voice_to_voice_ms() for t in turns) if v is not None)
        rows = [t.row() for t in turns]
        for i, (turn, row) in enumerate(zip(turns, rows)):
            row["dead_air_ms"] = _dead_air_ms(turn, turns[i + 1] if i + 1 < len(turns)
                                              else None)
        dead = [r["dead_air_ms"] for r in rows if r["dead_air_ms"] is not None]
        gaps = sorted(r["gap_ms"] for r in rows if r["gap_ms"] is not None)
        overlaps = sorted(r["overlap_ms"] for r in rows if r["overlap_ms"] is not None)
        stops = sorted(v for v in (t.barge_in_stop_ms() for t in turns) if v is not None)
        decided = sorted(v for v in (t.decided_stop_ms() for t in turns) if v is not None)
        return {
            "count": len(self.turns), "replied": len(v2v), "interruptions": self.interruptions,
            "voice_to_voice_ms": _quantiles(v2v), "barge_in_stop_ms": _quantiles(stops),
            "barge_in_decided_stop_ms": _quantiles(decided),
            "gap_ms": _quantiles(gaps), "overlap_ms": _quantiles(overlaps),
            "dead_air_ms": {"total": round(sum(dead), 3), "max": max(dead) if dead else None},
            "false_barge_ins": sum(r["false_barge_in"] for r in rows),
            "turns": rows}


def _dead_air_ms(turn: MeasuredTurn, following: MeasuredTurn | None) -> float | None:
    """The silence the user waited through after `turn`'s speech (ms): voice-to-voice when the
    bot answered; else up to the user's next speech start (None when there is none yet)."""
    v2v = turn.voice_to_voice_ms()
    if v2v is not None:
        return v2v
    if following is None or following.start_media_s is None:
        return None
    return round(max(0.0, following.start_media_s - turn.end_media_s) * 1e3, 3)


# -- turns measured from the audio alone (a scripted user knows its own voice) ----------------
#: a sample above this (60 dB below full scale) is sound: the user's voice, the bot's reply
SOUND = 1e-3
#: silence before a bot reply's first sample (so a reply still playing is not its answer), s
GAP_S = 0.2


def first_sound(voice: np.ndarray) -> int:
    """Index of the first sample of `voice` (float, (samples,)) above SOUND; 0 when none is."""
    hits = np.flatnonzero(np.abs(voice) > SOUND)
    return int(hits[0]) if hits.size else 0


def last_sound(voice: np.ndarray) -> int:
    """Index after the last sample of `voice` above SOUND: where the speech ends (the voice's
    length when none is)."""
    hits = np.flatnonzero(np.abs(voice) > SOUND)
    return int(hits[-1]) + 1 if hits.size else voice.shape[0]


def onset(loud: np.ndarray, start: int, stop: int, gap: int) -> int | None:
    """The first True of `loud` (bool, (samples,)) in [start, stop) that follows at least `gap`
    quiet samples (or starts the window quiet): the bot's answer, not the end of what it was
    saying. None when there is none."""
    hits = np.flatnonzero(loud[start:stop])
    if not hits.size:
        return None
    if hits[0] > 0:
        return start + int(hits[0])
    # still speaking at `start`: the next sound after a gap
    jumps = np.flatnonzero(np.diff(hits) > gap)
    return start + int(hits[jumps[0] + 1]) if jumps.size else None


def _quantiles(values: list[float]) -> dict:
    """{"p50", "p90", "max"} of `values` (ms; numpy's linear quantiles), None when empty."""
    if not values:
        return {"p50": None, "p90": None, "max": None}
    p50, p90 = np.quantile(np.asarray(values, dtype=np.float64), (0.5, 0.9))
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "max": float(max(values))}


__all__ = ["GAP_S", "MeasuredTurn", "SOUND", "TurnMeter", "first_sound", "last_sound", "onset"]
