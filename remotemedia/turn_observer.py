"""The turns of any run (`stream`, the TUI), measured from the audio as they happen.

`TurnObserver.attach(runner)` joins a StreamRunner before its run when its manifest has a VAD
(a node of type VAD, EnergyVAD or SileroVADNode), and does nothing otherwise (None: a run with
no VAD carries no tap and no observer). It feeds a `turns.TurnMeter` from:

- the VAD's `speech_start` / `speech_end` events (the user's speech start and end: the
  event's unpadded `edge_pts`, else its pts);
- the transcriber's final `transcript` events (a node that `emits_text`, as Transcribe), each
  credited to the utterance whose audio it covers (its `start_s`);
- the reply nodes' outputs (every node after a transcriber): the first reply Text (the
  responder), the first reply frame (the synthesizer), the responder's closing `reply` event;
- the output's audio blocks that are the bot's: those a reply node made. The user's own audio
  passed on to the output (a graph with no bot, or one that also plays the input) is not the
  bot speaking: it neither times a reply nor makes a speech_start a barge-in.

It sees the nodes' outputs through the session's taps (Session's `taps`: a node's output as
the node makes it, on the pushing thread), so no manifest changes and nothing on a node
without a role.

Clock: media time of the input, in seconds. What a node makes while block n is pushed happens
at the end of block n (`runner.frames_released` blocks of input), which is the run's time in
a live or paced run and the simulated time of a file run (a model's compute time then shows
as the input that went by meanwhile, as fast as the run reads it). The output plays its
blocks one after another from the time each came out of the graph (a block waits for the
ones before it to finish), as a device plays its queue; a block's play time on that timeline
is the first reply sample out (`"out_time": "timeline"`). With a device output the first
reply sample's DAC time replaces it once the device has played it (`"out_time": "dac"`):
PortAudio's outputBufferDacTime of that block (io/device_stream.py's per-frame table, found
by the frame's seq), brought onto the run's time by reading the stream's clock at a push
(DAC time - stream time now + media time now). The report says which (`"clock": "media"`).

Barge-in: a `speech_start` while the bot's audio is still playing on that timeline counts as
an interruption of the turn being answered; the bot stopped when the last block of that reply
(on the same timeline; a block belongs to the latest reply whose synthesis had begun when it
left the graph) ended: barge-in stop = that end - the user's speech start (the speech_start's
unpadded edge, media time), listed on the turn that barged in. Where the engine
interrupts the bot itself (a schedule with a `barge_in`), each of its interrupts is an
interruption of the turn being answered; when the output also drops its queued audio (a
device), the engine's decision is the only one (it sees the reply work in flight and the
device's queue, which this timeline may not have reached yet: the section's `interruptions`
then counts what the `barge_in` section's `interrupts` counts), and the reply ends with the
block playing: one block after the push that interrupted it.

Out of it: the `turns` section of the stats report (`extend_report`: TurnMeter.summary() plus
`"clock"`), and a Json event `{"type": "turn", "node": "turns", "turn": N, "end_s",
"endpoint_s", "voice_to_voice_ms", "breakdown_ms", "barge_in_stop_ms", "heard", "reply",
"interrupted"}` per finished turn (its reply played to the end, or the next turn began, or the
run ended) to the run's events (`runner.on_event`, and a sink that writes events). Threads:
taps run on the pushing thread (the audio callback in callback mode), block_out and the turn
events on the runner's; `rows()` and `extend_report` may be read from any thread (a copy).
"""

from __future__ import annotations

from .engine.data import JsonData, NumpyData, RuntimeData
from .observers import Observer
from .turns import TurnMeter

#: node types whose speech_start / speech_end events open and close a user's turn
VAD_TYPES = frozenset({"VAD", "EnergyVAD", "SileroVADNode"})
#: the `node` field of the turn events
EVENT_NODE = "turns"
#: times closer than this (s) are the same instant (the timeline adds block lengths)
_EPS = 1e-6


def turn_roles(manifest) -> tuple[list[str], list[str], list[str]] | None:
    """(VAD ids, transcriber ids, reply node ids) of a manifest, or None when it has no VAD.
    The reply nodes are every node downstream of a transcriber (a responder, a synthesizer,
    what follows them)."""
    types = {spec.id: spec.node_class for spec in manifest.nodes}
    vads = [i for i, cls in types.items() if getattr(cls, "node_type", None) in VAD_TYPES]
    if not vads:
        return None
    stts = [i for i, cls in types.items() if getattr(cls, "emits_text", False)]
    after: dict[str, list[str]] = {}
    for c in manifest.connections:
        after.setdefault(c.source, []).append(c.target)
    replies, todo = [], [t for s in stts for t in after.get(s, ())]
    while todo:
        node_id = todo.pop()
        if node_id in types and node_id not in replies and node_id not in stts:
            replies.append(node_id)
            todo += after.get(node_id, ())
    order = {node_id: k for k, node_id in enumerate(manifest.order)}
    return vads, stts, sorted(replies, key=order.get)


class TurnObserver(Observer):
    """Measures a run's turns (module docstring). Make it with `attach(runner)`."""

    def __init__(self, runner, roles: tuple[list[str], list[str], list[str]]):
        self.runner = runner
        self.vads, self.stts, self.replies = roles
        self.meter = TurnMeter()
        self.period_s = runner.period_s
        self.out_rate = self._out_rate(runner)
        #: the output timeline: when the last block handed to the output ends playing (s)
        self.playhead_s = 0.0
        self.emitted = 0          # turns whose `turn` event went out
        #: the interrupted turn whose bot audio has not ended yet
        self._stop_pending = None
        #: id(turn) -> when the last block of its reply ends on the output timeline (s)
        self._audio_end: dict[int, float] = {}
        #: (turn, frame seq) whose first reply block's DAC time is awaited (a device output)
        self._dac_pending: tuple | None = None
        self.out_time = "timeline"
        self._device = hasattr(runner.sink, "stream")   # a device sink (its stream opens later)
        #: the engine's own barge-in (a schedule's `barge_in`, where the engine has one) and
        #: whether the output drops its queued audio when it fires
        self._engine_barge = None
        self._cuts = 0
        #: the run's time of the last speech_start (the engine interrupts on it)
        self._start_t: float | None = None
        self._drops_queue = hasattr(runner.sink, "drop_queued")
        #: id() -> (block, push) of the audio blocks the reply nodes made (the bot's audio),
        #: until the output takes them (held, so an id is not reused meanwhile); what never
        #: reaches the output (a block a later reply node remade) is forgotten after a while
        self._bot_blocks: dict[int, tuple] = {}

    @classmethod
    def attach(cls, runner) -> "TurnObserver | None":
        """Tap the runner's VAD, transcriber and reply nodes and join its observers, before
        its run; None (and nothing done) when its manifest has no VAD."""
        roles = turn_roles(runner.pipeline.manifest)
        if roles is None:
            return None
        observer = cls(runner, roles)
        for node_id in roles[0]:
            runner.taps[node_id] = observer._vad_tap(node_id)
        for node_id in roles[1]:
            runner.taps[node_id] = observer._stt_tap(node_id)
        for node_id in roles[2]:
            runner.taps[node_id] = observer._reply_tap(node_id)
        runner.observers.join(observer)
        return observer

    @staticmethod
    def _out_rate(runner) -> int:
        fmt = runner.pipeline.manifest.output_format
        return (fmt.sample_rate if fmt is not None else None) or runner.sample_rate

    def now(self) -> float:
        """The run's media time now: the end of the input block being pushed (s)."""
        return self.runner.frames_released * self.period_s

    # -- taps (the pushing thread) ----------------------------------------------------------
    def _vad_tap(self, node_id: str):
        def tap(data: RuntimeData) -> None:
            if type(data) is NumpyData or data.kind != "json":
                return
            value = data.value
            kind = value.get("type") if isinstance(value, dict) else None
            if kind not in ("speech_start", "speech_end"):
                return
            t = self.now()
            media = value.get("edge_pts", value["pts"]) / value["sample_rate"]
            if kind == "speech_end":
                # a new turn (the one before is over: block_out sends its event, on the
                # runner's thread, never here on a pushing thread that may be the callback)
                self.meter.speech_end(t, media, node_id, value.get("closed_by"))
                return
            self.meter.speech_start(t, media)
            self._start_t = t
            # An engine barge-in is always an interruption (block_out's _cut). Where the
            # engine also sees the output's queue (a device), its decision is the whole rule:
            # it counts reply work in flight and audio made but not yet on this timeline
            # (Speak's blocks, taken as they play), which the timeline alone misses. A file
            # keeps what it was given: the bot speaks while the timeline plays.
            if not (self._engine_barge is not None and self._drops_queue) \
                    and self.playhead_s > t:
                self._stop_pending = self.meter.interrupted(t)
        return tap

    def _stt_tap(self, node_id: str):
        def tap(data: RuntimeData) -> None:
            if type(data) is NumpyData or data.kind != "json":
                return
            value = data.value
            if isinstance(value, dict) and value.get("type") == "transcript" \
                    and value.get("final"):
                self.meter.transcript(self.now(), value.get("text", ""), node_id,
                                      value.get("start_s"))
        return tap

    def _reply_tap(self, node_id: str):
        def tap(data: RuntimeData) -> None:
            if type(data) is NumpyData:
                self._bot_blocks[id(data)] = (data, self.runner.frames_released)
                self.meter.reply_audio(self.now(), node_id)
            elif data.kind == "text":
                self.meter.reply_text(self.now(), data.text, node_id)
            elif data.kind == "json" and isinstance(data.value, dict) \
                    and data.value.get("type") == "reply":
                self.meter.reply(data.value.get("reply") or "", data.value.get("error"))
        return tap

    # -- the output (the runner's thread) -----------------------------------------------------
    def run_started(self, event) -> None:
        """Finds the engine's barge-in, where the engine interrupts the bot itself."""
        schedule = getattr(self.runner.session, "schedule", None)
        self._engine_barge = getattr(schedule, "barge_in", None)

    def block_out(self, event) -> None:
        """Places each audio block of the push on the output timeline; emits finished turns."""
        barge = self._engine_barge
        if barge is not None and barge.interrupts != self._cuts:
            self._cut(barge.interrupts)
        now = None
        bot = self._bot_blocks
        for out in event.outputs:
            if type(out) is NumpyData and bot.pop(id(out), (None,))[0] is out:
                if now is None:
                    now = self.now()
                start = self.playhead_s if self.playhead_s > now else now
                turn = self.meter.current
                waiting = turn is not None and turn.out_s is None
                self.meter.played(start, out.array.shape[0] / self.out_rate)
                if waiting and turn.out_s is not None and self._device and out.seq is not None:
                    self._await_dac(turn, out.seq, now)
                self.playhead_s = start + out.array.shape[0] / self.out_rate
                owner = self._speaking()
                if owner is not None:
                    self._audio_end[id(owner)] = self.playhead_s
        if len(bot) > 64:
            # taps may add from the pushing thread meanwhile: a copy, then drop the stale
            cutoff = self.runner.frames_released - 64
            for key, (_, made) in list(bot.items()):
                if made < cutoff:
                    bot.pop(key, None)
        if self._dac_pending is not None:
            self._dac()
        if self._stop_pending is not None or self.emitted < len(self.meter.turns):
            self._settle(event.final)

    def _speaking(self):
        """The turn whose reply the output is playing: the latest with synthesized audio
        (what leaves the graph after a reply's first block is that reply's, until the next
        one begins)."""
        for turn in reversed(self.meter.turns):
            if turn.reply_audio_s is not None:
                return turn
        return None

    def _await_dac(self, turn, seq: int, now: float) -> None:
        """Note the stream's clock against the run's now, for frame `seq` (runner's thread,
        as the frame goes to the device)."""
        stream = self.runner.sink.stream
        if stream is None or not hasattr(stream, "play_dac"):
            return
        try:
            pa_now = float(stream._stream.time)   # PortAudio's stream time, the DAC's clock
        except Exception:                        # no stream (closing, lost): the timeline
            return
        self._dac_pending = (turn, seq, now, pa_now, stream)

    def _dac(self) -> None:
        """The awaited first reply block's DAC time, once the device has started it."""
        pending = self._dac_pending        # a scrape's extend_report may race the runner's
        if pending is None:
            return
        turn, seq, now, pa_now, stream = pending
        k = seq & (stream.play_tag.size - 1)
        if int(stream.play_tag[k]) != seq:
            return                               # not played yet: asked again next push
        turn.out_s = now + (float(stream.play_dac[k]) - pa_now)
        self.out_time = "dac"
        self._dac_pending = None

    def _cut(self, interrupts: int) -> None:
        """The engine interrupted the bot: the current turn's reply is interrupted (at the
        speech_start that did it), so `interruptions` counts what `barge_in.interrupts`
        counts; and an output that drops its queue plays only the block it is playing, so the
        reply's audio (and the timeline) ends one block from now."""
        self._cuts = interrupts
        turn = self.meter.interrupted(self._start_t if self._start_t is not None
                                      else self.now())
        if turn is not None and turn.stopped_s is None:
            self._stop_pending = turn
        if not self._drops_queue:
            return                  # a file keeps what was written: it plays on the timeline
        # A reply still going now ends one block from now, also one taken block by block as
        # it plays (its last block taken ends now on this timeline; the device plays it on).
        now = self.now()
        cut = now + self.period_s
        if self.playhead_s >= now - _EPS:
            self.playhead_s = cut
        for turn in (self._stop_pending, self._speaking()):
            if turn is not None and self._audio_end.get(id(turn), -1.0) >= now - _EPS:
                self._audio_end[id(turn)] = cut

    def _settle(self, final: bool) -> None:
        turn = self._stop_pending
        if turn is not None:
            end = self._audio_end.get(id(turn), self.playhead_s)
            # over once its reply's audio has played and no more of it will come (a later
            # turn's reply has begun, or its responder has finished, or the run ended)
            if final or (end <= self.now() and (self._speaking() is not turn
                                                or turn.reply is not None)):
                self.meter.stopped(end, turn)   # the bot's last sample of that reply
                self._stop_pending = None
        self._emit_finished(final)

    def _emit_finished(self, final: bool) -> None:
        """The `turn` event of each turn that is over, in order: every one at the end of the
        run; else each before the current one (once its barge-in stop is known), and the
        current one once its reply has played to the end."""
        turns = self.meter.turns
        now = self.now()
        while self.emitted < len(turns):
            turn = turns[self.emitted]
            if not final:
                if turn.interrupted_s is not None and turn.stopped_s is None:
                    return                       # its barge-in stop is not known yet
                if self.emitted == len(turns) - 1 and not (
                        turn.reply is not None and turn.out_s is not None
                        and self.playhead_s <= now):
                    return                       # the current turn, still going
            self.emitted += 1
            self._send({"type": "turn", "node": EVENT_NODE, "turn": self.emitted,
                        **turn.row(), "interrupted": turn.interrupted_s is not None})

    def _send(self, value: dict) -> None:
        event = JsonData(value)
        path = self.runner.path
        sink_events = path.sink_events if path is not None else None
        if sink_events is not None:
            sink_events(event)
        on_event = self.runner.on_event
        if on_event is not None:
            on_event(event)

    # -- reading ------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Each turn so far as the report lists it (TurnMeter.summary()'s rows), plus
        "turn" (1-based) and "interrupted"; a copy, safe from any thread."""
        return [{"turn": k, **t.row(), "interrupted": t.interrupted_s is not None}
                for k, t in enumerate(list(self.meter.turns), 1)]

    def extend_report(self, report: dict) -> None:
        """The report's `turns` section: TurnMeter.summary(), "clock": "media" and "out_time":
        "timeline" or "dac" (module docstring)."""
        if self._dac_pending is not None:
            self._dac()        # the device may have played it since the last push
        report["turns"] = {**self.meter.summary(), "clock": "media", "out_time": self.out_time}


def find(runner) -> TurnObserver | None:
    """The runner's turn observer, or None."""
    found = runner.observers.find(TurnObserver)
    return found[0] if found else None


__all__ = ["TurnObserver", "VAD_TYPES", "find", "turn_roles"]
