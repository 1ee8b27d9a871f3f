"""Scripted conversations in simulated time: a user who speaks, a voice loop that answers.

`Conversation(manifest, script).run()` plays a scripted user against a voice pipeline (input ->
VAD -> Transcribe -> Respond -> Speak -> output, as manifests/assistant.yaml) and measures
every turn from the audio (remotemedia.turns). The script (YAML):

    turns:
      - say: "Hello there"            # spoken by Speak (espeak-ng: deterministic) as the user
        after_ms: 500                 # silence before it (after the bot's last reply sample)
        expect: {heard: "hello", reply: "help", within_ms: 2000}
      - play: clip.wav                # or a recording (relative to the script's folder)
        barge_in_after_ms: 600        # start 600 ms after the bot's first reply sample
    room: {echo_delay_ms: 100, echo_gain_db: -6, rt60_ms: 300,   # optional: the bot hears
           noise: {kind: babble, snr_db: 20}, seed: 7}           # itself (conversation_room)

Simulated time, discrete events: the run's clock is simulated; the user's audio enters one
block per block period, and every node call is charged to the clock with its cost: as measured
on this machine (`timing="measured"`), or from a cost file an earlier run wrote (`Costs.load`),
with which a run is exactly repeatable whatever the machine's load. Each node is a server
with a queue (a node is busy until its call's cost has passed; what arrives meanwhile waits),
which is what `executor: thread` gives a live run: the block path goes on while Transcribe,
Respond and Speak work. The nodes themselves are called inline, one at a time, in event order
(no threads: a thread's timing would make the run differ from run to run), so the executors
a manifest names are not used here. An iterator a node returns (Speak's blocks, Respond's
sentences) is drawn item by item, each item charged with its own cost and leaving when it
is made (the thread executor today hands on a call's outputs together: a live run's first
sentence of a long reply comes later than simulated until it streams).

A feedback connection (the engine's Connection.feedback: an echo canceller's `reference`
from the node that feeds the output) is not delivered when its source makes a block: the
run feeds it what the output plays, each period, stamped with the time it plays
(`feed_played`); a fan-in node's forward input is handed to it as {input name: frame}.

The output plays one block per period from a queue (the output buffer). Barge-in: when the VAD
says speech started while the bot is speaking (audio queued or being made), every node that
takes text (Respond, Speak) gets a Control `interrupt`, what they had not yet delivered is
dropped, and the output queue is emptied; the block already playing finishes. A burst shorter
than the VAD's `min_speech_ms` never starts speech, so it never interrupts.

Errors: ScriptError (a UsageError, exit 2) for a bad script, file or cost file, naming it;
ManifestError for a bad manifest; NodeError from a node while running (exit 1).
"""

from __future__ import annotations

import heapq
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine.bargein import BargeIn, roles
from .engine.data import ControlData, JsonData, NumpyData, TextData
from .engine.errors import NodeError, UsageError
from .engine.node import NodeContext
from .engine.session import Pipeline
from .turns import TurnMeter
# the costs, their files and ScriptError live apart (converse_costs.py); named here too, where
# callers have always found them
from .converse_costs import COST_FILE_VERSION, MAX_COST_S, Costs, ScriptError, check_costs

#: how long the user waits for a reply before going on with the script (simulated s)
REPLY_TIMEOUT_S = 15.0
#: silence after the last turn, for the bot to answer it, at most (simulated s)
TAIL_S = 15.0
#: the user's noise floor (dBFS): a room is never digital silence
NOISE_DBFS = -70.0
#: the longest time a script may state (after_ms, barge_in_after_ms, within_ms), in ms: a
#: minute of simulated silence is already longer than any pause a conversation has
MAX_SCRIPT_MS = 60_000.0
#: the longest `play:` file (s): the run simulates every block of it
MAX_PLAY_S = 600.0
#: the longest `say:` text (characters): espeak-ng speaks about 15 a second, so 2,000 speak
#: in a few minutes, well under MAX_PLAY_S (the run simulates every block of it)
MAX_SAY_CHARS = 2_000
#: the heap's target for "a node made this" (seen by the turn meter in time order)
OBSERVE = "@observe"


# -- the script -------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserTurn:
    """One scripted user turn: `say` (text) or `play` (a WAV path); `after_ms` silence before;
    `barge_in_after_ms` (start that long after the bot's first reply sample, while it speaks);
    `expect` {heard, reply: regex; within_ms: number}."""

    say: str | None = None
    play: str | None = None
    after_ms: float = 500.0
    barge_in_after_ms: float | None = None
    expect: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the user said (the text, or the file played)."""
        return self.say if self.say is not None else f"<{os.path.basename(self.play)}>"


_TURN_KEYS = {"say", "play", "after_ms", "barge_in_after_ms", "expect"}
_EXPECT_KEYS = {"heard", "reply", "within_ms"}


def load_script(source: Any) -> list[UserTurn]:
    """The turns of a script: a path to YAML/JSON, or the parsed dict. ScriptError naming the
    file and the turn for anything malformed (unknown keys, both or neither of say/play, a
    say: longer than MAX_SAY_CHARS characters, a missing WAV or a directory, a regex that is
    not text or does not compile, a time outside 0 to
    MAX_SCRIPT_MS ms, barge_in_after_ms on the first turn or with after_ms, a duplicate
    key). `source` "-" reads the script from stdin."""
    return script_turns(*read_script(source))


def read_script(source: Any) -> tuple[dict, str, str]:
    """(the script's document, where it came from, the folder its files are relative to): a
    path is read as YAML (JSON is YAML); a dict is taken as it is. ScriptError if unreadable,
    not YAML, or not {turns: [...], room: {...}}."""
    where = "script"
    base = os.getcwd()
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        if where == "-":           # the project's habit: `-` is stdin (files relative to cwd)
            where = "<stdin>"
            import sys
            from .engine.loader import read_bounded
            data = read_bounded(sys.stdin.buffer)
        else:
            base = os.path.dirname(os.path.abspath(where))
            if os.path.isdir(where):
                raise ScriptError(f"{where}: is a directory, not a script file")
            try:
                from .engine.loader import read_bounded
                with open(where, "rb") as f:
                    data = read_bounded(f)
            except OSError as exc:
                raise ScriptError(f"{where}: cannot read the script: {exc.strerror}") from None
        # The manifest's strict parser: a duplicate key is an error (not the last one
        # silently winning), YAML 1.2, bounded size and aliases.
        from .engine.docparse import DocumentError, load_yaml
        try:
            source = load_yaml(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise ScriptError(f"{where}: not YAML: not UTF-8 text") from None
        except DocumentError as exc:
            raise ScriptError(f"{where}: {str(exc).splitlines()[0]}") from None
    if not isinstance(source, dict) or not isinstance(source.get("turns"), list) \
            or not source["turns"]:
        raise ScriptError(f"{where}: a script is {{turns: [...]}} with at least one turn")
    extra = set(source) - {"turns", "room"}
    if extra:
        raise ScriptError(f"{where}: unknown key(s) {', '.join(sorted(extra))} "
                          f"(known: room, turns)")
    return source, where, base


def script_turns(doc: dict, where: str, base: str, check_files: bool = True
                 ) -> list[UserTurn]:
    """The checked turns of a script document read by read_script (ScriptError naming the
    file and the turn). `check_files=False` leaves a play: file's existence unchecked (a
    recording's turns name files it does not need to replay)."""
    return [_turn(t, f"{where}: turns[{i}]", base, first=i == 0, check_files=check_files)
            for i, t in enumerate(doc["turns"])]


def _ms(value: Any, where: str) -> float:
    """A script time in ms: a finite number from 0 to MAX_SCRIPT_MS, else ScriptError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= MAX_SCRIPT_MS:   # NaN compares false; a huge int is no float
        raise ScriptError(f"{where} must be a number of ms from 0 to {MAX_SCRIPT_MS:.0f}, "
                          f"got {value!r:.60}")
    return float(value)


def _turn(raw: Any, where: str, base: str, first: bool = False,
          check_files: bool = True) -> UserTurn:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a turn is a mapping (say:, play:, ...), got {raw!r}")
    extra = set(raw) - _TURN_KEYS
    if extra:
        raise ScriptError(f"{where}: unknown key(s) {', '.join(sorted(extra))} "
                          f"(known: {', '.join(sorted(_TURN_KEYS))})")
    if ("say" in raw) == ("play" in raw):
        raise ScriptError(f"{where}: give one of say: TEXT or play: FILE.wav")
    say, play = raw.get("say"), raw.get("play")
    if say is not None and (not isinstance(say, str) or not say.strip()):
        raise ScriptError(f"{where}: say: must be non-empty text")
    if say is not None and len(say) > MAX_SAY_CHARS:
        raise ScriptError(f"{where}: say: is {len(say)} characters; at most {MAX_SAY_CHARS} "
                          f"(split it into turns, or play: a recording)")
    if play is not None:
        if not isinstance(play, str):
            raise ScriptError(f"{where}: play: must be a file name")
        play = os.path.join(base, play)
        if not check_files:
            pass
        elif os.path.isdir(play):
            raise ScriptError(f"{where}: play: is a directory, not a WAV file: {play}")
        if not os.path.isfile(play):
            raise ScriptError(f"{where}: play: no such file: {play}")
    nums = {}
    for key in ("after_ms", "barge_in_after_ms"):
        value = raw.get(key)
        if value is None:
            continue
        nums[key] = _ms(value, f"{where}: {key}")
    if "barge_in_after_ms" in nums:
        if first:
            raise ScriptError(f"{where}: barge_in_after_ms on the first turn: there is no "
                              f"bot speech to barge in on yet (use after_ms)")
        if "after_ms" in nums:
            raise ScriptError(f"{where}: give after_ms (silence after the bot's reply) or "
                              f"barge_in_after_ms (start during it), not both")
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict) or set(expect) - _EXPECT_KEYS:
        raise ScriptError(f"{where}: expect: takes {', '.join(sorted(_EXPECT_KEYS))}")
    for key in ("heard", "reply"):
        if key in expect:
            if not isinstance(expect[key], str):
                raise ScriptError(f"{where}: expect.{key} must be a regex (text), got "
                                  f"{expect[key]!r}")
            try:
                re.compile(str(expect[key]))
            except re.error as exc:
                raise ScriptError(f"{where}: expect.{key} is not a regex: {exc}") from None
    if "within_ms" in expect:
        _ms(expect["within_ms"], f"{where}: expect.within_ms")
    return UserTurn(say=say, play=play, expect=dict(expect), **nums)


# -- the manifest ----------------------------------------------------------------------------
def check_voice_graph(manifest, where: str = "the manifest") -> None:
    """Refuse (UsageError, exit 2) a manifest that cannot hold a conversation, before any
    node is set up: it needs a VAD (engine/bargein.py's VAD_CLASSES) to end the user's turns,
    a transcriber (a node type with `emits_text`) and, after it, a node that feeds the output
    (the reply's audio). `manifest` is a loaded Manifest."""
    vads, replies = roles(manifest)
    stts = [s.id for s in manifest.nodes if getattr(s.node_class, "emits_text", False)]
    # only a node whose output is audio speaks the reply (Respond feeding the output would
    # "pass" a reply: expectation while nothing is heard)
    feeds = {c.source for c in manifest.connections
             if c.target == "output" and not getattr(c, "feedback", False)
             and getattr(manifest.formats.get(c.source), "carries_audio", True)}
    missing = [what for what, found in (("a VAD (VAD, EnergyVAD) to end the user's turns",
                                         vads),
                                        ("a transcriber (Transcribe)", stts),
                                        ("a node after the transcriber that feeds the output "
                                         "the reply's audio (Speak)", replies & feeds))
               if not found]
    if missing:
        raise UsageError(f"{where} cannot hold a conversation: converse needs "
                         f"{'; '.join(missing)} (manifests/assistant.yaml has them)")


# -- the simulation ---------------------------------------------------------------------------
class _Sim:
    """The discrete-event run (module docstring). Times are simulated seconds."""

    def __init__(self, manifest, costs: Costs, meter: TurnMeter):
        m = manifest
        self.m = m
        self.costs = costs
        self.meter = meter
        self.rate = m.audio.sample_rate
        self.block = m.audio.block_size
        self.period = self.block / self.rate
        self.out_rate = (m.output_format.sample_rate if m.output_format else None) or self.rate
        self.now = 0.0
        self.heap: list = []
        self._seq = 0
        self.consumers: dict[str, list[str]] = {}
        forward = [c for c in m.connections if not getattr(c, "feedback", False)]
        for c in forward:
            self.consumers.setdefault(c.source, []).append(c.target)
        #: a fan-in node's one forward input name (its feedback inputs are fed apart)
        self.input_name = {c.target: c.input for c in forward}
        #: feedback connections (source, target, input): from a node that feeds the output,
        #: fed what the output played (feed_played); from any other, what it makes
        self.feedback = [(c.source, c.target, c.input) for c in m.connections
                         if getattr(c, "feedback", False)]
        feeds_output = {c.source for c in forward if c.target == "output"}
        self.played_feedback = [f for f in self.feedback if f[0] in feeds_output]
        self.made_feedback = [f for f in self.feedback if f[0] not in feeds_output]
        #: node id -> callable(t, output) seen in simulated-time order (the room's meter)
        self.watch: dict = {}
        #: (t, media_s) of every barge-in: the VAD's speech_start while the bot was busy
        self.barge_ins: list[tuple[float, float]] = []
        self.nodes: dict = {}
        self.free: dict[str, float] = {}
        for spec in m.nodes:
            if sum(c.target == spec.id for c in forward) > 1:
                raise UsageError(f"converse runs graphs where each node has one input; node "
                                 f"'{spec.id}' has several")
        for node_id in m.order:
            spec = next(s for s in m.nodes if s.id == node_id)
            node = spec.node_class(spec.id, **spec.params)
            node.bind(NodeContext(node_id, m.input_formats[node_id], None, self.clock))
            try:
                node.setup()
            except Exception as exc:
                raise NodeError(node_id, exc, during="setup") from exc
            self.nodes[node_id] = node
            self.free[node_id] = 0.0
        for node_id in costs.model_runs:
            if not hasattr(self.nodes.get(node_id), "run_ms"):
                raise ScriptError(f"{costs.source}: model_runs: node '{node_id}' is not one "
                                  f"of this manifest's nodes that time their model runs "
                                  f"(Transcribe)")
        #: the output device's latency (s): a block taken at a tick is heard this much later
        self.output_latency_s = 0.0
        #: the user turn being spoken or answered (0-based; the run sets it as turns begin)
        self.user_turn = 0
        # The barge-in rule is the live run's (engine/bargein.py): the detectors, and the nodes
        # that make the reply (interrupted on a barge-in; the bot is speaking while they have
        # work pending)
        vad_ids, reply_ids = roles(m)
        self.vad_ids, self.reply_ids = set(vad_ids), set(reply_ids)
        self.barge = BargeIn(self.bot_busy, self._interrupt_at_now)
        self.out_queue: list[tuple[float, np.ndarray]] = []
        #: id() -> block: the audio blocks the reply nodes made, not yet at the output (held,
        #: so an id is not reused meanwhile)
        self.bot_blocks: dict[int, NumpyData] = {}
        self.playing_until = 0.0         # end of the bot block playing now
        self.played = []                 # (start_s, block) of every bot block played
        self.events: list[dict] = []     # Json events that reached the output or were made
        self.pending_stop = False
        self.spoken = 0.0                # simulated s of bot audio played

    def clock(self) -> float:
        """The run's clock (simulated s), for nodes' executors and deadlines."""
        return self.now

    def _push(self, t: float, target: str, item, source: str) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, target, source, item))

    def deliver(self, t: float, source: str, items) -> None:
        """`items` (made by `source` at `t`) to every consumer of `source`."""
        for target in self.consumers.get(source, ()):
            for item in items:
                self._push(t, target, item, source)

    def bot_busy(self) -> bool:
        """The bot is speaking or about to: its audio queued or playing, or reply work pending
        (the user's own audio on its way to the output is not the bot)."""
        if self.out_queue or self.playing_until > self.now:
            return True
        bot = self.bot_blocks
        return any(target in self.reply_ids or source in self.reply_ids or (
                   target == "output" and bot.get(id(item)) is item)
                   for _, _, target, source, item in self.heap) or \
            any(self.free[i] > self.now for i in self.reply_ids)

    def run_until(self, t_end: float) -> None:
        """Every event due before `t_end`, in time order."""
        while self.heap and self.heap[0][0] < t_end:
            t, _, target, source, item = heapq.heappop(self.heap)
            self.now = max(self.now, t)
            if target == "output":
                self._output(t, item)
                continue
            if target == OBSERVE:
                # Seen in simulated-time order (nodes run ahead of the clock; the turn
                # meter and the barge-in decision must not).
                self._observe(source, t, item)
                continue
            self._call(t, target, item)

    def _call(self, t: float, node_id: str, item) -> None:
        node = self.nodes[node_id]
        if item.kind == "control":
            start = max(t, self.free[node_id])
            result = node.on_control(item)
            outs = list(result or ()) if not isinstance(result, (JsonData, NumpyData,
                                                                   TextData)) else [result]
            self.deliver(start, node_id, outs + [item])
            return
        if item.kind not in node.accepts:
            self.deliver(t, node_id, [item])     # flows past, as in the engine
            return
        start = max(t, self.free[node_id])
        if node.inputs == "many":
            item = {self.input_name[node_id]: item}
        runs0 = node.runs if node_id in self.costs.model_runs else None
        t0 = time.perf_counter()
        try:
            result = node.process(item)
        except Exception as exc:
            raise NodeError(node_id, exc) from exc
        spent = time.perf_counter() - t0
        runs_s = () if runs0 is None or node.runs == runs0 else \
            [ms / 1e3 for ms in list(node.run_ms)[runs0 - node.runs:]]
        at = start + self.costs.charge(node_id, spent, runs_s, self.user_turn)
        if result is None:
            outs = []
        elif isinstance(result, (list, tuple)):
            outs = list(result)
        elif hasattr(result, "kind"):
            outs = [result]
        else:
            # An iterator: each item costs what drawing it cost, and leaves when it is made.
            self.free[node_id] = at
            self._draw(node_id, result, at)
            return
        self.free[node_id] = at
        self._made(node_id, at, outs)

    def _draw(self, node_id: str, items, at: float) -> None:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                spent = time.perf_counter() - t0
                self.free[node_id] = at + self.costs.charge(node_id, spent)
                return
            except Exception as exc:
                raise NodeError(node_id, exc) from exc
            at += self.costs.charge(node_id, time.perf_counter() - t0)
            self.free[node_id] = at
            self._made(node_id, at, [item])

    def _made(self, node_id: str, at: float, outs) -> None:
        """`outs`, made by `node_id` at `at`: observed then delivered, at `at`."""
        for o in outs:
            self._push(at, OBSERVE, o, node_id)
            if node_id in self.reply_ids and o.kind == "numpy":
                self.bot_blocks[id(o)] = o
        for source, target, name in self.made_feedback:
            if source == node_id:
                for o in outs:
                    if o.kind == "numpy":
                        self.nodes[target].feedback(name, o)
        self.deliver(at, node_id, outs)

    def feed_played(self, frame: NumpyData) -> None:
        """What the output plays next (`frame`: pts in the input's samples, its DAC time) to
        every feedback input fed by the node that feeds the output."""
        for _, target, name in self.played_feedback:
            self.nodes[target].feedback(name, frame)

    def _observe(self, node_id: str, t: float, o) -> None:
        """What the turn meter and the barge-in logic need from a node's output `o`."""
        meter = self.meter
        kind = o.kind
        watch = self.watch.get(node_id)
        if watch is not None:
            watch(t, o)
        if kind == "json" and isinstance(o.value, dict):
            v = o.value
            typ = v.get("type")
            self.events.append({"t_s": round(t, 6), "node": node_id, **v})
            if node_id in self.vad_ids and typ in ("speech_start", "speech_end"):
                media = v.get("edge_pts", v["pts"]) / v["sample_rate"]
                if typ == "speech_end":
                    meter.speech_end(t, media, node_id, v.get("closed_by"))
                else:
                    meter.speech_start(t, media)
                    if self.barge.speech_started():
                        self.barge_ins.append((t, media))
            elif typ == "transcript" and v.get("final"):
                meter.transcript(t, v.get("text", ""), node_id, v.get("start_s"))
            elif typ == "reply":
                meter.reply(v.get("reply", ""), v.get("error"))
        elif kind == "text" and node_id in self.reply_ids:
            meter.reply_text(t, o.text, node_id)
        elif kind == "numpy" and node_id in self.reply_ids:
            meter.reply_audio(t, node_id)

    @property
    def interrupts(self) -> int:
        """Barge-ins so far."""
        return self.barge.interrupts

    def _interrupt_at_now(self) -> tuple[int, int]:
        return self.interrupt(self.now)

    def interrupt(self, t: float) -> tuple[int, int]:
        """Barge-in at `t`: Control interrupt to the reply nodes, their undelivered output
        and the output queue dropped; the block playing finishes. Returns the audio dropped:
        (blocks, samples)."""
        self.meter.interrupted(t)
        bot = self.bot_blocks

        def bots(e) -> bool:      # the bot's audio on its way to the output (not the user's)
            return e[2] == "output" and bot.get(id(e[4])) is e[4]

        gone = [e[4].array for e in self.heap if bots(e)] + \
            [block for _, block in self.out_queue]
        self.heap = [e for e in self.heap if not (e[3] in self.reply_ids or
                                                  e[2] in self.reply_ids or bots(e))]
        bot.clear()       # what the reply nodes made is dropped with them
        heapq.heapify(self.heap)
        self.out_queue.clear()
        for node_id in sorted(self.reply_ids):
            self.nodes[node_id].on_control(ControlData("interrupt"))
            self.free[node_id] = t
        self.pending_stop = True
        return len(gone), sum(g.shape[0] for g in gone)

    def _output(self, t: float, item) -> None:
        if item.kind == "numpy":
            # only the bot's audio (a reply node made it) is the bot speaking: the user's own
            # audio passed on to the output neither times a reply nor makes a barge-in
            if self.bot_blocks.pop(id(item), None) is item:
                self.out_queue.append((t, item.array))
        elif item.kind == "json" and isinstance(item.value, dict):
            self.events.append({"t_s": round(t, 6), "node": "output", **item.value})

    def tick(self, t: float) -> None:
        """The output device takes its next block at `t` (one period of sound), heard
        `output_latency_s` later (its start in `played`, and the turn meter's times)."""
        heard = t + self.output_latency_s
        if self.pending_stop and self.playing_until <= t + 1e-9:
            self.meter.stopped(self.playing_until + self.output_latency_s)
            self.pending_stop = False
        if self.out_queue and self.out_queue[0][0] <= t and self.playing_until <= t + 1e-9:
            _, block = self.out_queue.pop(0)
            self.played.append((heard, block))
            # a block of another size than the input's plays for its own length
            length = block.shape[0] / self.out_rate
            self.meter.played(heard, length)
            self.playing_until = t + length
            self.spoken += length

    def close(self) -> None:
        """Tear every node down (last first); the first failure is raised as a NodeError
        after all have run."""
        first = None
        for node_id in reversed(list(self.nodes)):
            try:
                self.nodes[node_id].teardown()
            except Exception as exc:
                first = first or NodeError(node_id, exc, during="teardown")
        if first is not None:
            raise first


__all__ = ["COST_FILE_VERSION", "Costs", "MAX_COST_S", "ScriptError", "UserTurn", "check_costs",
           "load_script", "REPLY_TIMEOUT_S"]
