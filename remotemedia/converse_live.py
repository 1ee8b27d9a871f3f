"""Scripted conversations live, on a JACK server: the graph on real devices, a user who speaks.

    report = LiveConversation("manifests/assistant.yaml", "hello.yaml",
                              input_spec="device:system", output_spec="device:system").run()

The graph runs as `remotemedia stream` runs it (StreamRunner, a device source and sink in
real time, nodes on their executors, barge-in as engine/bargein.py does it live). The user is
a second stream of this process (a sounddevice stream; the process's JACK client is named
remotemedia-converse-PID unless REMOTEMEDIA_JACK_CLIENT names it): its output port is connected to
the graph's input port and the graph's output port to its input port (the graph's own
connections to the server's system ports are cut first), so the user's voice is the graph's
input and the graph's output is recorded sample by sample, on the server's clock.

The script is the simulated run's (remotemedia.converse: say/play, after_ms,
barge_in_after_ms, expect), spoken by the same voice. The user speaks in real time: a turn
starts `after_ms` after the bot's last reply sample (once the bot has been silent for
IDLE_S), or `barge_in_after_ms` after the bot's first reply sample (a barge-in), or
REPLY_TIMEOUT_S after the user's last turn if the bot never answers.

Measured from the captured audio, in samples of the user's stream (its output and input run
in the same callbacks, one clock): user speech end = the last sample of the turn's voice above
SOUND (-60 dBFS) as it left the user's output; the bot's first reply sample = the first
recorded sample above SOUND after it (after a gap of at least GAP_S, so a reply still playing
is not taken for the answer). Voice-to-voice = the difference: it includes the device path
both ways (JACK's period and PortAudio's buffers), the error bar `round_trip_ms` in the report
gives (measured at the start: a click from the user's output straight to its input). Barge-in
stop time = the bot's last recorded sample after the graph decided to interrupt (the user's
sample clock read when the VAD's speech_start interrupted the bot) - the user's speech start
(the barging turn's first sample above the sound level: as the simulated run, from the speech,
not from the VAD's decision, which comes min_speech_ms later).

The report has the simulated run's shape (remotemedia.conversation), with `breakdown_ms` null
(the audio alone does not attribute latency to nodes), `simulated_s` null, and `live`:
{"round_trip_ms", "xruns", "barge_in", "device", "drops"} from the graph's stats report,
"xruns_conversing" and "callback_wait_ms" (_while_conversing: the xruns after the setup, and
whether this process kept its JACK callbacks waiting),
"speculative" (each speculative transcriber's runs, used, discarded, as simulated runs report),
"model_run_ms" (each transcriber's model runs, wall ms: what Whisper cost beside the audio
threads), "model_runs_by_turn" (the same, a list per user turn they ended in: what
`--save-timing` keeps for a like-for-like simulated run) and "graph_turns" (the graph's
`turns` section without its rows: p50s from the VAD's edges). Each turn also has `graph`: the graph's own measurement of it (turn_observer.py, as a
`stream` run makes it: from the VAD's speech_end edge, node by node, to the DAC time of the
first reply block) {"voice_to_voice_ms", "breakdown_ms", "vad_end_after_audio_ms" (that edge -
the voice's last sample above SOUND, on the user's clock: the device path in and the VAD's own
lag)}, null when the graph measured no turn there; the difference between the audio's figure
and the graph's is the device path both ways. The simulated run measures the same audio figure
(ConversationRun.audio_voice_to_voice), for a like-for-like comparison.

Errors: ScriptError (exit 2) for a bad script; UsageError (exit 2) for a device that is not on a
JACK server; DeviceError when the ports cannot be found or connected; NodeError while running.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any

import numpy as np

from .converse import NOISE_DBFS, REPLY_TIMEOUT_S, TAIL_S, check_voice_graph, load_script
from .conversation import ConversationRun, _expectations, _wer
from .conversation_room import live_echo_summary
from .engine.errors import DeviceError, UsageError
from .engine.session import Pipeline
from .turns import GAP_S, SOUND, first_sound as _first_sound, last_sound as _last_sound, \
    onset as _onset

#: the bot is done when it has been silent this long
IDLE_S = 0.6
#: the control thread's look at the recording
POLL_S = 0.01
#: the user's recording holds at most this much audio
MAX_S = 600.0


class _StoppedEarly(Exception):
    """stop() came before the graph's run opened: nothing to converse."""


class _User:
    """The user's side: one duplex stream; its callback plays the scheduled voice over a noise
    floor and records the graph's output, into buffers made before the stream starts."""

    def __init__(self, voices: list[np.ndarray], rate: int, block: int, frames: int, seed: int):
        self.voices = voices
        self.rate, self.block = rate, block
        self.rec = np.zeros(frames, np.float32)
        rng = np.random.default_rng(seed)
        self.noise = (rng.standard_normal(block * 50) * 10 ** (NOISE_DBFS / 20)).astype(
            np.float32)
        self.k = 0                     # callbacks so far (blocks)
        self.cur = -1                  # the voice playing, or -1
        self.pos = 0
        self.next_idx = -1             # the voice to start at block next_at
        self.next_at = -1
        self.starts = np.full(len(voices), -1, np.int64)   # sample its voice began
        self.ends = np.full(len(voices), -1, np.int64)     # sample after its last
        self.click_at = -1             # calibration: a click leaves at this block
        self.stream = None
        #: the graph's DeviceStream, and its callback count at this stream's first callback:
        #: both tick once per JACK period, so a graph block maps onto this stream's samples
        self.graph = None
        self.graph_tick0 = -1
        #: per callback (s): from the JACK cycle's start (PortAudio's currentTime, set before
        #: the Python callback waits for the GIL) to the callback running: what this
        #: process's other Python threads (the engine, Whisper's and Speak's workers) cost a
        #: JACK callback
        self.wait = np.zeros(frames // block + 1, np.float64)

    def callback(self, indata, outdata, frames, t, status):
        k = self.k
        if k == 0 and self.graph is not None:
            self.graph_tick0 = self.graph.ticks
        if k < self.wait.shape[0] and self.stream is not None:
            try:
                self.wait[k] = self.stream.time - t.currentTime
            except Exception:   # the stream closing (PortAudio's time is 0): not measured
                pass
        base = k * frames
        rec = self.rec
        if base + frames <= rec.shape[0]:
            rec[base:base + frames] = indata[:, 0]
        out = outdata[:, 0]
        nb = self.noise.shape[0] // frames
        j = (k % nb) * frames
        out[:] = self.noise[j:j + frames]
        if k == self.click_at:
            out[0] = 0.9
        if self.cur < 0 and self.next_at >= 0 and k >= self.next_at:
            self.cur, self.pos, self.next_at = self.next_idx, 0, -1
            self.starts[self.cur] = base
        if self.cur >= 0:
            voice = self.voices[self.cur]
            pos = self.pos
            n = min(frames, voice.shape[0] - pos)
            out[:n] += voice[pos:pos + n]
            self.pos = pos + n
            if self.pos >= voice.shape[0]:
                self.ends[self.cur] = base + n
                self.cur = -1
        self.k = k + 1

    @property
    def now(self) -> int:
        """Samples played so far."""
        return self.k * self.block


class LiveConversation:
    """A scripted user against a voice manifest, live on a JACK server (module docstring).

    `input_spec`, `output_spec`: the graph's device SPECs (`device:NAME_OR_INDEX`), both on
    the JACK host API. `seed`: the user's noise floor. `loopback`: the graph's output is also
    connected into its input (unity gain, mixed by JACK with the user's voice): a loudspeaker
    the microphone hears, the real room an echo canceller works against."""

    def __init__(self, manifest: Any, script: Any, *, input_spec: str, output_spec: str,
                 seed: int = 0, allow_import=(), loopback: bool = False):
        self.script_name = script if isinstance(script, str) else "<script>"
        self.turns = list(script) if isinstance(script, list) else load_script(script)
        self.manifest_name = manifest if isinstance(manifest, str) else "<manifest>"
        self.pipeline = Pipeline.from_manifest(manifest, allow_import=allow_import)
        check_voice_graph(self.pipeline.manifest, self.manifest_name)   # as simulated runs
        self.input_spec, self.output_spec = input_spec, output_spec
        self.seed = seed
        self.loopback = loopback
        self.report: dict | None = None
        #: why the run was asked to stop early (stop()), None while it runs to its end
        self.stop_reason: str | None = None
        for tool in ("jack_lsp", "jack_connect", "jack_disconnect"):
            if shutil.which(tool) is None:
                raise UsageError(f"converse --realtime needs JACK's {tool} (Debian: jackd2)")

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end within POLL_S (a signal handler may call this): the user falls
        silent, both streams close, and the report holds the turns the user began, `passed`
        false and `stop_reason` = `reason`."""
        self.stop_reason = reason

    def run(self) -> dict:
        """Run the conversation live; returns the report (module docstring)."""
        from .io.spec import make_sink, make_source
        from .runner import StreamRunner
        wall0 = time.perf_counter()
        m = self.pipeline.manifest
        rate, block = m.audio.sample_rate, m.audio.block_size
        # A JACK client name of this process's own, so its ports are told apart from those
        # of other programs opening streams at the same moment (set before PortAudio starts).
        os.environ.setdefault("REMOTEMEDIA_JACK_CLIENT", f"remotemedia-converse-{os.getpid()}")
        source = make_source(self.input_spec, m.audio)
        sink = make_sink(self.output_spec, m.output_format)
        devices = [end.device for end in (source, sink) if hasattr(end, "device")]
        if len(devices) != 2 or not all(d.host_api.startswith("JACK") for d in devices):
            raise UsageError(f"converse --realtime: --input {self.input_spec} and --output "
                             f"{self.output_spec} must both be devices on a JACK server (the "
                             f"user's side connects its ports to the graph's)")
        if (m.output_format.sample_rate or rate) != rate:
            raise UsageError(f"converse --realtime: the manifest's output rate "
                             f"({m.output_format.sample_rate} Hz) must be its input rate "
                             f"({rate} Hz): one JACK server clocks both")
        voices = ConversationRun._voices(self, rate, block)
        longest = sum(v.shape[0] for v in voices) / rate + len(voices) * (
            REPLY_TIMEOUT_S + 2) + TAIL_S + 5
        user = _User(voices, rate, block, int(min(longest, MAX_S) * rate), self.seed)
        replies: list[tuple[int, dict]] = []
        marks: list[int] = []

        watched = [False]

        def on_event(out) -> None:   # a responder inline: its events reach the output
            value = getattr(out, "value", None)
            if isinstance(value, dict) and value.get("type") == "reply" and not watched[0]:
                replies.append((user.now, value))

        runner = StreamRunner(self.pipeline, source, sink, realtime=True, on_event=on_event)
        # The graph's own view of each turn (VAD edge, node by node, the DAC time out), as a
        # `stream` run measures it: the breakdown the audio alone cannot give.
        from .turn_observer import TurnObserver
        TurnObserver.attach(runner)
        opened = threading.Event()

        transcribers: dict = {}
        tagged = _ModelRuns(transcribers)

        def on_open() -> None:
            schedule = runner.session.schedule
            transcribers.update(_transcribers(schedule))
            tagged.start()
            watched[0] = any([_watch_replies(step.node, replies, user)
                              for step in schedule.reply_steps])
            barge = schedule.barge_in
            if barge is not None:
                decide = barge.interrupt

                def interrupt():
                    marks.append(user.now)   # when the graph decided, on the user's clock
                    return decide()
                barge.interrupt = interrupt
            opened.set()

        runner.on_open = on_open
        before = _ports()
        runner.start()
        round_trip = None
        try:
            self._wait_open(opened, runner)
            from .io import portaudio
            client = portaudio._jack_client_name.decode() or None
            graph_in, graph_out = _new_ports(before, runner, client)
            import sounddevice as sd
            before = _ports()
            dev = devices[0].index
            user.graph = getattr(source, "stream", None)
            user.stream = sd.Stream(device=(dev, dev), channels=1, samplerate=rate,
                                    blocksize=block, dtype="float32", callback=user.callback,
                                    latency="low")
            user.stream.start()
            user_in, user_out = _new_ports(before, runner, client)
            _cut(user_in, user_out)
            round_trip = _calibrate(user, user_in, user_out)
            _cut(graph_in, graph_out)
            _connect(user_out, graph_in)
            _connect(graph_out, user_in)
            if self.loopback:   # the loudspeaker the microphone hears: JACK mixes it in
                _connect(graph_out, graph_in)
            if self.stop_reason is None:
                self._converse(user, runner, tagged)
        except _StoppedEarly:
            pass   # stopped before the graph opened: no turn to report
        finally:
            if user.stream is not None:
                user.stream.stop()
                user.stream.close()
            runner.stop()
            runner.join(30)
        if runner.error is not None:
            raise runner.error
        stats = runner.stats() if runner.session is not None else {}
        stats["speculative"] = _speculative(transcribers)
        stats["model_run_ms"] = {k: list(n.run_ms) for k, n in transcribers.items()}
        tagged.poll(user)
        stats["model_runs_by_turn"] = tagged.by_turn
        self.report = self._report(user, replies, marks, round_trip, stats,
                                   time.perf_counter() - wall0)
        if self.stop_reason is not None:
            # Stopped: the turns the user began are reported; the script did not pass.
            began = int(np.count_nonzero(user.starts >= 0))
            self.report["turns"] = self.report["turns"][:began]
            self.report["passed"] = False
            self.report["stop_reason"] = self.stop_reason
        return self.report

    def _wait_open(self, opened: threading.Event, runner, timeout_s: float = 60.0) -> None:
        """Until the graph's run has opened (on_open); _StoppedEarly when stop() came first,
        the run's error or DeviceError when it failed or took longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not opened.wait(POLL_S):
            if self.stop_reason is not None:
                raise _StoppedEarly
            if runner.error is not None or time.monotonic() > deadline:
                break
        if runner.error is not None or not opened.is_set():
            runner.join(5)
            raise runner.error or DeviceError(f"the graph's run did not start in "
                                              f"{timeout_s:g} s")

    # -- the user's turns, in real time -------------------------------------------------------
    def _converse(self, user: _User, runner, tagged: "_ModelRuns") -> None:
        rate, block = user.rate, user.block
        sound = _Sound(user.rec, block)
        i = 0
        while runner.error is None and self.stop_reason is None:
            time.sleep(POLL_S)
            tagged.poll(user)
            now = user.now
            sound.scan(min(now, user.rec.shape[0]))
            if now >= user.rec.shape[0] - rate:
                break
            if user.cur >= 0 or user.next_at >= 0:
                continue                          # the user is speaking, or about to
            if i == 0:
                self._start(user, 0, self.turns[0].after_ms / 1e3 * rate)
                i = 1
                continue
            prev_end = int(user.ends[i - 1])
            first = sound.first_after(prev_end)
            last = sound.last
            idle = first is not None and now - last >= IDLE_S * rate
            if i >= len(self.turns):
                if idle or now >= prev_end + TAIL_S * rate:
                    break
                continue
            turn = self.turns[i]
            if turn.barge_in_after_ms is not None and first is not None:
                self._start(user, i, first + turn.barge_in_after_ms / 1e3 * rate)
            elif idle:
                self._start(user, i, max(now, last + turn.after_ms / 1e3 * rate))
            elif now >= prev_end + REPLY_TIMEOUT_S * rate:
                self._start(user, i, now + turn.after_ms / 1e3 * rate)
            else:
                continue
            i += 1

    @staticmethod
    def _start(user: _User, i: int, at_sample: float) -> None:
        user.next_idx = i
        user.next_at = int(np.ceil(at_sample / user.block))

    # -- the report ---------------------------------------------------------------------------
    def _report(self, user: _User, replies, marks, round_trip, stats, wall_s) -> dict:
        rate = user.rate
        rec = user.rec[:min(user.now, user.rec.shape[0])]
        loud = np.abs(rec) > SOUND
        starts, ends = user.starts, user.ends
        rows = []
        graph_turns = _graph_turns(stats, user)
        for i, turn in enumerate(self.turns):
            s, e = int(starts[i]), int(ends[i])
            played = s >= 0 and e >= 0
            nxt = int(starts[i + 1]) if i + 1 < len(self.turns) and starts[i + 1] >= 0 \
                else rec.shape[0]
            end = s + _last_sound(user.voices[i]) if played else None
            onset = _onset(loud, end, nxt, int(GAP_S * rate)) if played else None
            mine = [v for at, v in replies if played and s <= at < nxt]
            heard = " ".join(str(v.get("heard") or "") for v in mine).strip()
            reply = mine[-1].get("reply") if mine else None
            stop = None
            interrupted_next = False
            if played and turn.barge_in_after_ms is not None:
                if any(k >= s for k in marks):       # the bot was interrupted
                    # the bot's last sample from the user's first on (None when it was
                    # already silent: the interrupt dropped a reply that had not sounded)
                    spoke = s + _first_sound(user.voices[i])
                    window = loud[spoke:max(spoke, min(end + int(0.25 * rate), rec.shape[0]))]
                    hits = np.flatnonzero(window)
                    stop = round((int(hits[-1]) + 1) / rate * 1e3, 3) if hits.size else None
            if i + 1 < len(self.turns) and self.turns[i + 1].barge_in_after_ms is not None \
                    and starts[i + 1] >= 0:
                interrupted_next = any(k >= starts[i + 1] for k in marks)
            v2v = None if onset is None else round((onset - end) / rate * 1e3, 3)
            row = {"user": turn.label, "heard": heard, "wer": _wer(turn.say, heard),
                   "reply": reply, "voice_to_voice_ms": v2v, "breakdown_ms": None,
                   "barge_in_stop_ms": stop, "interrupted": interrupted_next,
                   "start_s": round(s / rate, 4) if played else None,
                   "end_s": round(e / rate, 4) if played else None}
            row["graph"] = _graph_row(graph_turns, s, nxt, end, rate) if played else None
            row["expect"] = _expectations(turn.expect, row)
            rows.append(row)
        return {"manifest": self.manifest_name, "script": self.script_name,
                "timing": "live", "seed": self.seed, "turns": rows,
                "passed": all(x["passed"] for t in rows for x in t["expect"]),
                "simulated_s": None, "wall_s": round(wall_s, 3),
                "room": live_echo_summary(stats),
                "live": {"loopback": self.loopback, "round_trip_ms": round_trip,
                         "xruns": stats.get("xruns"), **_while_conversing(user, stats),
                         "barge_in": stats.get("barge_in"), "device": stats.get("device"),
                         "drops": stats.get("drops"),
                         "speculative": stats.get("speculative"),
                         "model_run_ms": stats.get("model_run_ms"),
                         "model_runs_by_turn": stats.get("model_runs_by_turn"),
                         "graph_turns": {k: v for k, v in (stats.get("turns") or {}).items()
                                         if k != "turns"} or None},
                "stats": {"interrupts": (stats.get("barge_in") or {}).get("interrupts", 0),
                          "nodes": stats.get("nodes")}}

    def failures(self) -> list[str]:
        """One line per expectation that failed: 'turn N (USER): WHY'."""
        return ConversationRun.failures(self)

    def device_path_ms(self) -> float:
        """The device path a simulated run does not have (ms), from the finished run:
        PortAudio's reported input + output latency of the graph's stream (on the JACK server
        also the user side's calibrated round trip) plus queued mode's one block (the answer
        plays a block after the callback that captured what it answers). RuntimeError before
        run()."""
        if self.report is None:
            raise RuntimeError("device_path_ms() needs a finished run()")
        lat = (self.report["live"].get("device") or {}).get("latency_s") or {}
        audio = self.pipeline.manifest.audio
        return round(((lat.get("input") or 0.0) + (lat.get("output") or 0.0)) * 1e3
                     + 1e3 * audio.block_size / audio.sample_rate, 3)

    def save_timing(self, path: str) -> None:
        """Write this finished run's cost file (Costs.save_live): each transcriber's model
        runs as they cost live, and device_path_ms(); `converse --timing FILE` then simulates
        the script paying what this run paid. RuntimeError before run()."""
        from .converse import Costs
        path_ms = self.device_path_ms()
        Costs.save_live(path, self.report["live"].get("model_runs_by_turn") or {}, path_ms)


def _while_conversing(user: _User, stats: dict) -> dict:
    """{"xruns_conversing": the graph stream's callbacks PortAudio flagged (an xrun) from the
    user's first voice sample on, when every port is connected and the models run (None when
    the streams' clocks are not tied); "callback_wait_ms": {"p50", "p99", "max"} of the user
    callback's wait for the GIL (_User.wait), over the whole conversation}. An xrun with no
    wait beside it came from outside this process (another JACK client, the server)."""
    first = int(user.starts[0]) if user.starts.size and user.starts[0] >= 0 else -1
    flagged = (stats.get("device") or {}).get("flagged_callbacks")
    conversing = None
    if first >= 0 and user.graph_tick0 >= 0 and flagged is not None:
        tick = user.graph_tick0 + first // user.block
        conversing = sum(1 for k in flagged if k >= tick)
    wait = user.wait[:min(user.k, user.wait.shape[0])] * 1e3
    if first >= 0:
        wait = wait[first // user.block:]
    figures = None if not wait.size else {
        "p50": round(float(np.median(wait)), 3),
        "p99": round(float(np.quantile(wait, 0.99)), 3), "max": round(float(wait.max()), 3)}
    return {"xruns_conversing": conversing, "callback_wait_ms": figures}


class _ModelRuns:
    """Each transcriber's model runs (its `run_ms`), grouped by the user turn they ended in,
    as the control loop sees them (`poll`, every POLL_S): the run that answers turn i ends
    before the bot answers it, so before turn i+1 begins. `by_turn` {NODE_ID: [[ms, ...] per
    user turn]}; runs past a transcriber's RUN_MS_KEPT are not seen."""

    def __init__(self, nodes: dict):
        self.nodes = nodes                # filled once the run stands (start)
        self.seen: dict = {}
        self.by_turn: dict = {}

    def start(self) -> None:
        """The runs so far (a warm-up, the setup) belong to no turn."""
        self.seen = {k: len(n.run_ms) for k, n in self.nodes.items()}
        self.by_turn = {k: [] for k in self.nodes}

    def poll(self, user: _User) -> None:
        turn = max(0, int(np.count_nonzero(user.starts >= 0)) - 1)
        for k, node in self.nodes.items():
            n = len(node.run_ms)
            if n > self.seen.get(k, 0):
                groups = self.by_turn.setdefault(k, [])
                while len(groups) <= turn:
                    groups.append([])
                groups[turn].extend(list(node.run_ms)[self.seen.get(k, 0):n])
                self.seen[k] = n


def _transcribers(schedule) -> dict:
    """{NODE_ID: node} of the run's transcribers (nodes that keep their model's run times,
    Transcribe's `run_ms`): the node itself, behind its executor when it runs on one (its
    worker's instance, kept: the executor lets go of it at teardown). Call once the run
    stands."""
    out = {}
    for step in schedule.steps:
        transport = getattr(step.node, "transport", None)
        node = getattr(transport, "instance", step.node)
        if hasattr(node, "run_ms"):
            out[step.node_id] = node
    return out


def _speculative(nodes: dict) -> dict:
    """{NODE_ID: {"runs", "used", "discarded"}} of the speculative ones of `nodes`
    (_transcribers), as a simulated run reports them under its node's stats."""
    return {k: {"runs": n.speculative_runs, "used": n.speculative_used,
                "discarded": n.speculative_discarded} for k, n in nodes.items()
            if getattr(n, "speculative", False)}


def _graph_turns(stats: dict, user: _User) -> list[tuple[int | None, dict]]:
    """The graph's measured turns (its stats report's `turns` rows: VAD edge, node by node,
    DAC time out, on the graph's media time), each with the sample of the user's stream its
    speech end maps to (None when the two streams' clocks cannot be tied: no graph stream, or
    the block no longer in its tables). A graph input block is captured in a JACK period the
    user's stream also ticks in: graph tick g is the user's tick g - graph_tick0 (one period
    either way, by the order JACK runs the two in)."""
    rows = ((stats.get("turns") or {}).get("turns")) or []
    graph, block = user.graph, user.block
    if graph is None or user.graph_tick0 < 0 or graph.last_read < 0:
        return [(None, r) for r in rows]
    tags, ticks = graph.seq_tag, graph.seq_capture_tick
    mask = tags.shape[0] - 1
    out = []
    for r in rows:
        sample = int(round(r["end_s"] * user.rate))
        seq = sample // block
        if int(tags[seq & mask]) != seq:
            out.append((None, r))
            continue
        tick = int(ticks[seq & mask]) - user.graph_tick0
        out.append((tick * block + sample % block, r))
    return out


def _graph_row(graph_turns, start: int, stop: int, end: int, rate: int) -> dict | None:
    """The graph's view of the user turn whose voice played from sample `start` (the next one
    from `stop`) and ended at `end`: the last of its measured turns that was answered (as the
    simulated report takes it), {"voice_to_voice_ms" (from the VAD's edge to the DAC time of
    the first reply block), "breakdown_ms", "vad_end_after_audio_ms" (the VAD's edge - the
    voice's last sample above SOUND, on the user's clock; None when the clocks are not
    tied)}; None when the graph measured none."""
    mine = [(u, r) for u, r in graph_turns if u is not None and start <= u < stop]
    if not mine:
        return None
    timed = [(u, r) for u, r in mine if r.get("voice_to_voice_ms") is not None]
    u, r = (timed or mine)[-1]
    return {"voice_to_voice_ms": r.get("voice_to_voice_ms"),
            "breakdown_ms": r.get("breakdown_ms"),
            "vad_end_after_audio_ms": round((u - end) / rate * 1e3, 3)}


def _watch_replies(node, replies: list, user: _User) -> bool:
    """A responder on an executor hands its `reply` events on as it collects them: they are
    noted there (before Speak, whose queue a barge-in drops, holds them up). False for a node
    inline (its events are seen at the output)."""
    collect = getattr(node, "_collect", None)
    if collect is None:
        return False

    def watched(out, counters, limit=None):
        n = len(out)
        collect(out, counters, limit)
        for o in out[n:]:
            value = getattr(o, "value", None)
            if isinstance(value, dict) and value.get("type") == "reply" and not any(
                    v.get("turn") == value.get("turn") for _, v in replies[-4:]):
                # (once: Speak hands the same event on after it)
                replies.append((user.now, value))
    node._collect = watched
    return True


class _Sound:
    """Where the recording is loud, block by block, scanned as it grows."""

    def __init__(self, rec: np.ndarray, block: int):
        self.rec, self.block = rec, block
        self.scanned = 0
        self.loud_blocks: list[int] = []
        self.last = -1                    # sample after the last loud one so far

    def scan(self, upto: int) -> None:
        b = self.block
        while self.scanned + b <= upto:
            part = self.rec[self.scanned:self.scanned + b]
            hits = np.flatnonzero(np.abs(part) > SOUND)
            if hits.size:
                self.loud_blocks.append(self.scanned)
                self.last = self.scanned + int(hits[-1]) + 1
            self.scanned += b

    def first_after(self, sample: int) -> int | None:
        """The first loud block's start at or after `sample` (None: none yet)."""
        found = None
        for start in reversed(self.loud_blocks):
            if start + self.block <= sample:
                break
            found = start
        return found


# -- JACK's ports -------------------------------------------------------------------------------
def _jack(*args: str) -> str:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"{args[0]}: {exc}") from None
    if done.returncode != 0:
        raise DeviceError(f"{' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _ports() -> set[str]:
    return {line.strip() for line in _jack("jack_lsp").splitlines() if line.strip()}


def _new_ports(before: set[str], runner, client: str | None,
               timeout_s: float = 10.0) -> tuple[str, str]:
    """(input, output): the ports of the stream this process (JACK client `client`, when
    known) opened since `before`."""
    deadline = time.monotonic() + timeout_s
    while True:
        added = _ports() - before
        ours = {p for p in added if client is not None and p.startswith(f"{client}:")}
        added = ours or added
        ins = sorted(p for p in added if re.search(r":in_\d+$", p))
        outs = sorted(p for p in added if re.search(r":out_\d+$", p))
        if len(ins) == 1 and len(outs) == 1:
            return ins[0], outs[0]
        if time.monotonic() > deadline or runner.error is not None:
            raise DeviceError(f"cannot tell this run's JACK ports (new: {sorted(added)})")
        time.sleep(0.05)


def jack_connections() -> dict[str, set[str]]:
    """The JACK server's ports and, for each, the ports it is connected to (`jack_lsp -c`).
    DeviceError when the tool fails."""
    conns: dict[str, set[str]] = {}
    port = None
    for line in _jack("jack_lsp", "-c").splitlines():
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            conns[port].add(line.strip())
        else:
            port = line.strip()
            conns[port] = set()
    return conns


def _cut(in_port: str, out_port: str) -> None:
    """Disconnect both ports from everything (the system ports PortAudio connected)."""
    conns = jack_connections()
    for other in conns.get(in_port, ()):
        _jack("jack_disconnect", other, in_port)
    for other in conns.get(out_port, ()):
        _jack("jack_disconnect", out_port, other)


def _connect(out_port: str, in_port: str) -> None:
    _jack("jack_connect", out_port, in_port)


def _calibrate(user: _User, user_in: str, user_out: str) -> float | None:
    """The user's own round trip (ms): a click from its output straight to its input."""
    _connect(user_out, user_in)
    try:
        at = user.k + 2
        user.click_at = at
        deadline = time.monotonic() + 2.0
        while user.k < at + 20 and time.monotonic() < deadline:
            time.sleep(POLL_S)
        seg = user.rec[at * user.block:min(user.now, user.rec.shape[0])]
        hits = np.flatnonzero(seg > 0.5)
        return round(int(hits[0]) / user.rate * 1e3, 3) if hits.size else None
    finally:
        _jack("jack_disconnect", user_out, user_in)
        user.rec[:] = 0.0


__all__ = ["LiveConversation"]
