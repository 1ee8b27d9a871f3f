"""`remotemedia tui`: a live Textual session over one pipeline.

    ┌ title: manifest name, description, file ─────────────────────────────────────────┐
    │ state: RUNNING / STOPPED / FINISHED / FAILED and why · audio time · speed · BYPASS  │
    │ io: input → output, sample rate, block size, channels, mode                        │
    │ [frames in] [frames out] [serialization]  [latency: engine, end-to-end sparklines] │
    │ copies engine/cow/io · drops · xruns · errors · events                             │
    │ [levels: IN / OUT meters in dBFS, peak hold, clip]                                 │
    │ [pipeline: one row per node, topological order]  [graph: edges]                    │
    └ keys ──────────────────────────────────────────────────────────────────────────────┘

Threads: the StreamRunner moves audio on its own thread and never waits for the UI. The app polls
it POLL_HZ times a second from Textual's event loop (`capture()` reads plain attributes and the
session's report); nothing the UI does can hold up a frame except the GIL, which `run_app` asks
Python to hand over every millisecond instead of every five, and a full garbage collection,
which `run_app` keeps short by freezing the app's startup objects out of collection
(`freeze_gc`) before audio starts. Every stop path (space, switching
manifest or devices, q, an exception in the app) stops the runner and joins its thread, so the
stream's files are finalized and no thread outlives the app.

The TUI is a live session, so it paces in real time by default even when neither end is a device
(a generator into `null` plays at the rate you would hear it); tests inject a faster clock.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import time
from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Digits, Footer, Input, Static

from ..engine.manifest import DEFAULT_AUDIO
from ..engine.errors import ManifestError, RemoteMediaError, UsageError, one_line
from ..engine.node import AudioFormat
from ..engine.session import Pipeline
from ..io.base import Sink, Source
from ..io.clock import Clock
from ..io.devices import DEFAULT_MODE   # sounddevice itself loads only when a device is used
from ..io.samefile import check_paths, manifest_reads
from ..io.spec import file_input
from ..runner import FAILED, FINISHED, IDLE, RUNNING, Levels, StreamRunner
from ..turn_observer import TurnObserver
from .choices import io_choices
from .eventlog import EventFeed, EventLog
from .keys import key_bindings
from .meters import LevelMeters
from .saving import SavingActions
from .screens import HelpScreen, IoPicker, ManifestPicker
from .snapshot import Snapshot, capture, device_problem
from .turns import TurnsPane
from .widgets import MUTED, CounterPanel, LatencyView, PipelineView, StateLine

POLL_HZ = 12.0
NARROW = 100
SHORT = 30
STOP_TIMEOUT_S = 3.0
#: while the TUI runs, the audio thread waits at most this long for the GIL (Python's default: 5 ms)
SWITCH_INTERVAL_S = 0.001

SourceFactory = Callable[..., Source]     # (spec, fmt, *, mode=None) -> Source
SinkFactory = Callable[[str, AudioFormat], Sink]
ClockFactory = Callable[[float], Clock]

# Actions that change what runs; they wait while a picker or the help is open.
_MAIN_SCREEN_ACTIONS = {"toggle_run", "reset", "pick_manifest", "pick_devices", "toggle_bypass",
                        "save_stats", "help"}


def default_manifests_dir() -> Path:
    """./manifests when there is one, else the manifests that ship beside the package."""
    here = Path.cwd() / "manifests"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "manifests"


def _spec_factories() -> tuple[SourceFactory, SinkFactory]:
    from ..io.spec import make_sink, make_source
    return make_source, make_sink


class RemoteMediaApp(SavingActions, App[None]):
    """The live session. `manifest` None opens the manifest picker first.

    For tests and embedding: `make_source`/`make_sink` build the ends from SPEC strings (default:
    remotemedia.io.spec), `clock_factory(period_s)` gives each run its clock, `stats_dir` is
    where `s` writes, and `autostart=False` leaves the pipeline stopped until space."""

    # absolute, so that subclasses defined in other folders (tests) find it too
    CSS_PATH = Path(__file__).resolve().parent / "app.tcss"
    TITLE = "remotemedia"
    # Every key the app answers, with what it does (`tooltip`): the footer shows the short
    # descriptions and the help screen (?) lists them all, from one table (tui/keys.yaml) that
    # the attached TUI words its keys from too.
    BINDINGS = key_bindings()

    bypass: reactive[bool] = reactive(False)

    def __init__(self, manifest: str | Path | None = None, input_spec: str | None = "default",
                 output_spec: str | None = "default", *, manifests_dir: str | Path | None = None,
                 stats_dir: str | Path | None = None, make_source: SourceFactory | None = None,
                 make_sink: SinkFactory | None = None, clock_factory: ClockFactory | None = None,
                 realtime: bool = True, autostart: bool = True, poll_hz: float = POLL_HZ,
                 freeze_gc: bool = False, mode: str | None = None, reconnect: bool = True):
        super().__init__()
        self.manifest_path = Path(manifest) if manifest is not None else None
        self.input_spec = input_spec or "default"
        self.output_spec = output_spec or "default"
        self.manifests_dir = Path(manifests_dir) if manifests_dir else default_manifests_dir()
        self.stats_dir = Path(stats_dir) if stats_dir else Path.cwd()
        self._make_source = make_source
        self._make_sink = make_sink
        self.clock_factory = clock_factory
        self.realtime = realtime
        self.autostart = autostart
        self.poll_hz = poll_hz
        self.freeze_gc = freeze_gc
        #: device mode for a sound-device input ("queued" or "callback"); None: io's default
        self.mode = mode
        #: a lost sound device is awaited and re-opened (the run goes on) instead of failing
        self.reconnect = reconnect
        self._device_problem: str | None = None   # the device loss last announced
        self.pipeline: Pipeline | None = None
        self.runner: StreamRunner | None = None
        #: why the last start attempt failed before a runner existed (a bad SPEC, ...)
        self.failure: str | None = None
        #: where `s` last wrote the stats report
        self.last_saved: Path | None = None
        self.snapshot = Snapshot()
        self._stats_override: dict | None = None   # the report after `r` on a stopped run
        self._announced: StreamRunner | None = None  # the runner whose ending was announced
        self._io_line = ""
        #: the recording `R` started (None when not recording), and where the last one went
        self.recorder = None
        self.last_recording: Path | None = None
        #: events from the runner's thread to the event log (bounded; drops counted)
        self.event_feed = EventFeed()

    # -- layout ------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Build the screen: title, state line, io line, the frames in/out and serialization
        digits, the counter panel (and its one-line form for narrow terminals), engine and
        end-to-end latency, level meters, the pipeline table, the turns pane (a run with a
        VAD), the event log and the key footer."""
        yield Static(id="title")
        yield StateLine(id="state")
        yield Static(id="io-line")
        with Horizontal(id="top"):
            for widget_id, title in (("frames-in", "frames in"), ("frames-out", "frames out"),
                                     ("serialization", "serialization")):
                digits = Digits("0", id=widget_id, classes="big")
                digits.border_title = title
                yield digits
            counters = CounterPanel(id="counters")
            counters.border_title = "copies · xruns · faults"
            yield counters
        yield CounterPanel(compact=True, id="counters-line")
        with Vertical(id="latency") as latency:
            latency.border_title = "latency"
            yield LatencyView("engine", id="engine-latency", show_load=True)
            yield LatencyView("end-to-end", id="e2e-latency")
        meters = LevelMeters(id="levels")
        meters.border_title = "levels"
        yield meters
        yield PipelineView(id="pipeline")
        yield TurnsPane(id="turns")          # shown for a run with a VAD (tui/turns.py)
        yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        """Textual mount event (event loop): fit the layout to the terminal, start polling
        POLL_HZ times a second, load the manifest given (if any) and show the first state;
        the run starts, or the manifest picker opens, after the first paint."""
        self._fit(self.size.width, self.size.height)
        self.set_interval(1.0 / self.poll_hz, self.poll)
        loaded = self.manifest_path is not None and self.load_manifest(self.manifest_path)
        self._show_title()
        self.poll()
        # Audio starts once the first screen is drawn: the startup work (styles, first render)
        # is done by then and, with freeze_gc, out of the collector's way.
        self.call_after_refresh(self._first_paint_done, loaded)

    def _first_paint_done(self, loaded: bool) -> None:
        if self.freeze_gc:
            # A full collection walks every object and holds the GIL while it does (tens of ms
            # for a Textual app): the audio thread would wait. Everything made so far lives as
            # long as the app, so take it out of collection; later passes walk only new objects.
            gc.collect()
            gc.freeze()
        if loaded and self.autostart:
            self.start_run()
        elif not loaded:                 # none given, or it did not load: offer the folder
            self.action_pick_manifest()

    async def on_unmount(self) -> None:
        """Textual unmount event (the app is closing): stop the runner and join its thread, so
        its files are finalized and no thread outlives the app."""
        self.shutdown()

    def on_resize(self, event: events.Resize) -> None:
        """Textual resize event: refit the layout; below NARROW columns the counters fold into
        one line and the node table drops columns, below SHORT rows the spacing goes."""
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        """Below NARROW columns the small counters fold into one line and the node table drops
        two columns; below SHORT rows the spacing goes."""
        narrow = width < NARROW
        self.set_class(narrow, "-narrow")
        self.set_class(height < SHORT, "-short")
        self.query_one(PipelineView).compact = narrow
        footer = self.query_one(Footer)
        footer.compact = narrow
        footer.show_command_palette = not narrow

    # -- the run -----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """A runner is starting or running (its thread is, or is about to be, alive)."""
        return self.runner is not None and self.runner.state in (IDLE, RUNNING)

    def load_manifest(self, path: str | Path) -> bool:
        """Validate and show a manifest; on a problem, say so and keep what was loaded."""
        try:
            pipeline = Pipeline.from_manifest(path)
        except ManifestError as exc:
            self.notify(str(exc), title="manifest", severity="error", timeout=10, markup=False)
            return False
        self.pipeline = pipeline
        self.manifest_path = Path(path)
        manifest = pipeline.manifest
        self.query_one(PipelineView).set_pipeline(
            [(node_id, manifest.node(node_id).node_type) for node_id in pipeline.order],
            pipeline.edges())
        self._show_title()
        return True

    def start_run(self) -> bool:
        """Start the loaded pipeline with fresh ends. A failure to build them is shown, not
        raised: the app stays up so the user can pick something else."""
        if self.pipeline is None:
            self.notify("no manifest loaded: press m to pick one", severity="warning")
            return False
        if self.active or not self._retire_runner():
            return False
        manifest = self.pipeline.manifest
        make_source, make_sink = self._factories()
        self.failure = None
        try:
            # a file at another rate or channel count is converted at the boundary, as
            # `stream` converts it (io/convert.py)
            source = file_input(self.input_spec)
            if source is not None:
                try:
                    source.conform(manifest.audio, exact=False)
                except BaseException:
                    source.close()
                    raise
                if source.conversion:
                    self.notify(f"{source.path}: converted {source.conversion} to the "
                                f"manifest's format", title="input", markup=False)
            else:
                source = make_source(self.input_spec, manifest.audio, mode=self.mode)
            try:
                if self.mode == "callback" and not source.runs_schedule:
                    raise UsageError(f"callback mode runs the graph in the input device's audio "
                                     f"callback; '{self.input_spec}' is not a device input "
                                     f"(pick queued mode, or a device)")
                sink = make_sink(self.output_spec, manifest.output_format)
            except BaseException:
                source.close()
                raise
            try:   # never over what the run reads (`-i take.wav -o take.wav`), as stream
                check_paths(reads=manifest_reads(self.manifest_path) + source.reads(),
                            writes=sink.writes())
            except BaseException:
                source.close()
                sink.close()
                raise
        except RemoteMediaError as exc:
            self.failure = one_line(exc)
            self.notify(self.failure, title="cannot start", severity="error", timeout=10,
                        markup=False)
            self.poll()
            return False
        period_s = manifest.audio.block_size / manifest.audio.sample_rate
        clock = self.clock_factory(period_s) if self.clock_factory is not None else None
        for end in (source, sink):
            if end.supports_reconnect:
                end.reconnect = self.reconnect
        runner = StreamRunner(self.pipeline, source, sink, realtime=self.realtime, clock=clock,
                              measure_levels=True, on_event=self.event_feed.post)
        TurnObserver.attach(runner)   # a manifest with a VAD: its turns, for the turns pane
        self.runner = runner
        self._stats_override = None
        self.query_one(LevelMeters).reset(new_run=True)
        runner.start()
        self.poll()
        return True

    def stop_run(self) -> None:
        """Ask the runner to stop after the current frame; the next poll shows it stopped."""
        if self.runner is not None:
            self.runner.stop("stopped")

    def _retire_runner(self) -> bool:
        """Stop the current runner and wait for its thread; False if it would not stop."""
        runner = self.runner
        if runner is None:
            return True
        runner.stop("stopped")
        if not runner.join(STOP_TIMEOUT_S):
            self.notify(f"the running pipeline did not stop within {STOP_TIMEOUT_S:g} s",
                        severity="error", timeout=10)
            return False
        self._stop_recording()
        return True

    def shutdown(self) -> bool:
        """Stop and join the runner (safe to call twice). True when no runner thread is left."""
        return self._retire_runner()

    def _factories(self) -> tuple[SourceFactory, SinkFactory]:
        if self._make_source is None or self._make_sink is None:
            make_source, make_sink = _spec_factories()
            self._make_source = self._make_source or make_source
            self._make_sink = self._make_sink or make_sink
        return self._make_source, self._make_sink

    # -- polling -----------------------------------------------------------------------------------
    def take_snapshot(self) -> Snapshot:
        """Everything the screen shows, read from the runner without waiting for it."""
        t = time.monotonic()
        runner = self.runner
        if runner is None:
            state = FAILED if self.failure else IDLE
            reason = self.failure or (None if self.pipeline else "no manifest: press m")
            return Snapshot(state=state, reason=reason, stats=self._stats_override, t=t)
        snap = capture(runner, t=t, stats_override=self._stats_override)
        if self.failure:
            snap = dataclasses.replace(snap, state=FAILED, reason=self.failure)
        return snap

    def poll(self) -> None:
        """Timer tick on the event loop (POLL_HZ times a second, and after each action): push
        the bypass flag to the session, take a snapshot of the runner without waiting for its
        thread, redraw every widget from it, move queued events into the event log, notify
        once when a run fails, ends or loses/regains its device, and finish a recording whose
        run has ended. A tick while the app shuts down (its screens going away) draws
        nothing."""
        if not self.is_running:
            return
        runner = self.runner
        if runner is not None and runner.session is not None \
                and runner.session.bypass != self.bypass:
            runner.session.bypass = self.bypass
        snap = self.take_snapshot()
        self.snapshot = snap
        self.show(snap)
        self.show_events(self.event_feed.drain())
        self._announce()
        if self.recorder is not None and not self.active:
            self._stop_recording()   # the run ended while recording: finish the recording

    def show(self, snap: Snapshot) -> None:
        """Redraw the screen from a Snapshot: frame and serialization counters, counter panels,
        engine and end-to-end latency (microseconds, against the block period as budget),
        level meters in dBFS (silent when not running), per-node table, state line and io
        line. Widgets whose text has not changed are left alone."""
        stats = snap.stats
        period_s = self._period_s()
        self._set_digits("#frames-in", stats["frames_in"] if stats else 0)
        self._set_digits("#frames-out", stats["frames_out"] if stats else 0)
        events = stats["serialization_events"] if stats else 0
        serialization = self._set_digits("#serialization", events)
        serialization.set_class(events == 0, "ok")
        serialization.set_class(events > 0, "alarm")
        for panel in self.query(CounterPanel):
            panel.show(stats)
        events_out = stats.get("events_out", 0) if stats else 0
        subtitle = f"+{events_out:,} events" if events_out else ""
        frames_out = self.query_one("#frames-out")
        if frames_out.border_subtitle != subtitle:
            frames_out.border_subtitle = subtitle
        latency = stats.get("latency_us") if stats else None
        budget_us = period_s * 1e6 if period_s else None
        self.query_one("#engine-latency", LatencyView).show(
            snap.engine_us, latency["engine"] if latency and snap.engine_us else None, budget_us)
        self.query_one("#e2e-latency", LatencyView).show(
            snap.end_to_end_us, latency.get("end_to_end") if latency else None, budget_us,
            missing="— (measured between live devices)")
        self.query_one(LevelMeters).show(snap.levels if snap.running else Levels(), snap.t)
        self.query_one(PipelineView).show(stats.get("nodes") if stats else None)
        self.query_one(TurnsPane).show(stats.get("turns") if stats else None)
        self.query_one(StateLine).show(snap.state, snap.reason, stats, period_s, self.bypass)
        self._show_io_line(snap)

    def show_events(self, entries: list[dict]) -> None:
        """Append `entries` (event records drained from the EventFeed) to the event log; nothing
        when there are none."""
        if entries:
            self.query_one(EventLog).add(entries)

    def _announce(self) -> None:
        """One notification when a run fails or ends by itself, or loses its device or gets it
        back."""
        runner = self.runner
        problem = device_problem(runner) if runner is not None and self.active else None
        if problem != self._device_problem:
            if problem is not None:
                self.notify(problem, title="device lost", severity="error", timeout=10,
                            markup=False)
            elif self._device_problem is not None and self.active:
                gaps = [g for end in (runner.source, runner.sink)
                        for g in end.discontinuities]
                gap = (f" after a gap of {gaps[-1]['duration_s']:.2f} s "
                       f"({gaps[-1]['blocks_lost']} blocks lost)") if gaps else ""
                self.notify(f"the device is back: the run goes on{gap}", title="device",
                            markup=False)
            self._device_problem = problem
        if runner is None or runner.state not in (FAILED, FINISHED) or self._announced is runner:
            return
        self._announced = runner
        if runner.state == FAILED:
            self.notify(self.snapshot.reason or "the pipeline failed", title="pipeline failed",
                        severity="error", timeout=10, markup=False)
        else:
            self.notify(f"finished: {self.snapshot.reason}", title="pipeline", markup=False)

    def _set_digits(self, selector: str, value: int) -> Digits:
        digits = self.query_one(selector, Digits)
        text = str(value)
        if digits.value != text:
            digits.update(text)
        return digits

    def _period_s(self) -> float | None:
        if self.pipeline is None:
            return None
        audio = self.pipeline.manifest.audio
        return audio.block_size / audio.sample_rate

    def _show_title(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("remotemedia", style="bold #8ab4f8")
        if self.pipeline is not None:
            manifest = self.pipeline.manifest
            title.append("  │  ", style="#3a3f4b")
            title.append(manifest.name, style="bold")
            description = manifest.metadata.get("description")
            if description:
                title.append(f"  {description}", style=MUTED)
            title.append("  │  ", style="#3a3f4b")
            title.append(str(self.manifest_path), style=MUTED)
        self.query_one("#title", Static).update(title)

    def _show_io_line(self, snap: Snapshot) -> None:
        runner = self.runner
        parts: list[tuple[str, str]] = [("in ", MUTED), (self.input_spec, "bold #8ab4f8")]
        if runner is not None:
            parts.append((f" ({runner.source.description})", MUTED))
        parts += [("  →  out ", MUTED), (self.output_spec, "bold #8ab4f8")]
        if runner is not None:
            parts.append((f" ({runner.sink.description})", MUTED))
        if self.pipeline is not None:
            audio = self.pipeline.manifest.audio
            parts += [("  │  ", "#3a3f4b"), (f"{audio.sample_rate} Hz", "bold"), (" · ", MUTED),
                      (f"{audio.block_size} smp", "bold"),
                      (f" ({1000 * audio.block_size / audio.sample_rate:.1f} ms)", MUTED),
                      (" · ", MUTED), (f"{audio.channels} ch", "bold")]
        parts += [("  │  mode ", MUTED), (self._mode(snap.stats), "bold")]
        key = "".join(text for text, _ in parts)
        if key != self._io_line:
            self._io_line = key
            self.query_one("#io-line", Static).update(
                Text.assemble(*parts, no_wrap=True, overflow="ellipsis"), layout=False)

    def _mode(self, stats: dict | None = None) -> str:
        device = (stats or {}).get("device")
        if device:                              # a sound device at one end or both
            return f"{device.get('mode')} · {device.get('host_api')}"
        runner = self.runner
        if runner is None:
            return self.mode or ("real time" if self.realtime else "as fast as possible")
        if runner.source.clocked:
            return "clocked by the input device"
        if runner.realtime:
            return "real time"
        return "as fast as possible"

    # -- actions -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Textual's gate for actions: the ones that change what runs (space, r, m, d, b, s, ?)
        are disabled while a picker or the help is open; everything else is allowed."""
        if action in _MAIN_SCREEN_ACTIONS and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_toggle_run(self) -> None:
        """Space: stop the running pipeline (after its current block), or start the loaded one
        with fresh ends; the state line shows RUNNING or STOPPED at once. A failure to start
        is shown as a notification."""
        if self.active:
            self.stop_run()
        else:
            self.start_run()
        self.poll()

    def action_reset(self) -> None:
        """`r`: reset the session's counters and latency histograms (a stopped run's report
        shows the reset too) and the meters' peak holds and clip lights; a notification
        confirms it."""
        runner = self.runner
        if runner is not None and runner.session is not None:
            runner.session.reset_stats()
            if not self.active:
                report = runner.session.stats()
                report["stop_reason"] = runner.stop_reason
                self._stats_override = report
        self.query_one(LevelMeters).reset()
        self.notify("counters, latency, peak holds and clip lights reset", timeout=3)
        self.poll()

    def watch_bypass(self, bypass: bool) -> None:
        """Textual watcher of `bypass`: set the running session's bypass flag, so the input goes
        straight to the output while it is on."""
        runner = self.runner
        if runner is not None and runner.session is not None:
            runner.session.bypass = bypass

    def action_toggle_bypass(self) -> None:
        """`b`: toggle bypass (the nodes are skipped and the input passes straight through); the
        state line shows BYPASS while on."""
        self.bypass = not self.bypass
        self.poll()

    def action_help(self) -> None:
        """`?`: open the help screen: every key this app binds (key_help) and what the
        counters mean (Escape, ? or Enter closes it)."""
        self.push_screen(HelpScreen(self.key_help()))

    @classmethod
    def key_help(cls) -> list[tuple[str, str]]:
        """(key as shown, what it does) for every key this app class answers, as Textual
        merges its bindings (inherited ones unless a class stops inheriting them, Textual's
        own ctrl+q too): the help screen's key table."""
        names = {"question_mark": "?", "slash": "/"}
        rows = []
        for key, bindings in cls._merge_bindings().key_to_bindings.items():
            binding = bindings[-1]
            rows.append((binding.key_display or names.get(key, key),
                         binding.tooltip or binding.description or binding.action))
        # the app's own keys first, in the order it binds them; the ctrl+ reflexes last
        rows.sort(key=lambda row: row[0].startswith("ctrl+"))
        return rows

    def action_filter_events(self) -> None:
        """`/`: show the event log (even while it is empty) and focus its filter field, so
        what is typed next filters the log instead of pressing keys."""
        log = self.query_one(EventLog)
        log.set_class(False, "-empty")
        self.set_focus(log.query_one("#event-filter", Input))

    def action_pick_manifest(self) -> None:
        """`m`: open the manifest picker over manifests_dir; choosing one stops and joins the
        current run, loads it and (with autostart) starts it. Escape keeps what runs."""
        self.push_screen(ManifestPicker(self.manifests_dir, self.manifest_path),
                         self._manifest_picked)

    def _manifest_picked(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            Pipeline.from_manifest(path)
        except ManifestError as exc:
            self.notify(str(exc), title="manifest", severity="error", timeout=10, markup=False)
            return
        if not self._retire_runner():
            return
        self.runner = None
        self._stats_override = None
        self.load_manifest(path)
        if self.autostart:
            self.start_run()
        self.poll()

    def action_pick_devices(self) -> None:
        """`d`: open the input/output picker (devices, generators, files, and the device mode);
        choosing stops and joins the current run and restarts it with the new ends. Escape
        keeps what runs."""
        inputs, outputs, device_problem = io_choices()
        current = (self.input_spec, self.output_spec, self.mode or DEFAULT_MODE)
        self.push_screen(IoPicker(inputs, outputs, current, device_problem),
                         self._devices_picked)

    def _devices_picked(self, choice: tuple[str, str, str] | None) -> None:
        if choice is None:
            return
        self.input_spec, self.output_spec, mode = choice
        self.mode = mode
        if not self._retire_runner():
            return
        if self.pipeline is not None and self.autostart:
            self.start_run()
        self.poll()

    async def action_quit(self) -> None:
        """`q` or Ctrl-C: stop the runner and join its thread (finishing any recording), then
        leave the app with exit code 0, or 1 when the runner did not stop within
        STOP_TIMEOUT_S."""
        stopped = self.shutdown()
        self.exit(return_code=0 if stopped else 1)


def run_app(manifest: str | Path | None = None, input_spec: str | None = "default",
            output_spec: str | None = "default", mode: str | None = None,
            reconnect: bool = True, on_app=None) -> int:
    """Run the TUI in this terminal; return the exit code. `on_app(app)` is called with the
    app before it runs (to quit it from a signal handler).

    A bad manifest or SPEC raises its RemoteMediaError (exit code 2) before the screen changes,
    so the command line reports it in one line like every other command."""
    input_spec = input_spec or "default"
    output_spec = output_spec or "default"
    fmt = DEFAULT_AUDIO
    out_fmt = fmt
    if manifest is not None:
        pipeline = Pipeline.from_manifest(manifest)
        fmt, out_fmt = pipeline.manifest.audio, pipeline.manifest.output_format
    # Load PortAudio (if there is one) before the screen is taken: its import silences fd 2
    # for a moment to hide libjack's probing, and fd 2 is where Textual draws.
    from ..io.devices import portaudio_available
    portaudio_available()
    make_source, make_sink = _spec_factories()
    source = make_source(input_spec, fmt, mode=mode)   # construct only: opened by a run
    sink = make_sink(output_spec, out_fmt)
    source.close()
    sink.close()
    # `tui -i take.wav -o take.wav` would truncate its input: refused here, in one line
    check_paths(reads=manifest_reads(manifest) + source.reads(), writes=sink.writes())
    app = RemoteMediaApp(manifest, input_spec, output_spec, freeze_gc=True, mode=mode,
                         reconnect=reconnect)
    if on_app is not None:
        on_app(app)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        app.run()
    finally:
        sys.setswitchinterval(previous)
    return app.return_code or 0
