"""`remotemedia report DIR` (a recording) or `remotemedia report REPORT.json` (a saved --json
report): one self-contained HTML page (report_html.py, a Jinja2 template with autoescape)
and the PNG figures it shows, drawn with matplotlib (the `report` extra: `pip install
remotemedia[report]`).

From a recording (record.py), every x axis is media time in seconds from the start of the
run (media_time.py): a recording started mid-run (TUI R, the monitor's `record`) starts where
it joined, its output where its first output frame's pts says, each event at the time it
names (time_s, timestamp_us, pts at its sample_rate; else its block; one sent at end of stream
at the end):

    levels.png      input and output RMS and peak in dBFS per block over time, with xruns,
                    drops and errors marked on the time axis (one vertical line per block
                    where a counter went up)
    latency.png     the engine's per-block time and each node's, over time and as histograms;
                    with a device, each block's end-to-end latency (PortAudio's DAC time of
                    its first sample minus the ADC time of its capture) over time
    events.png      the graph's events on a timeline, one row per kind
    counters.png    the final counters (frames in/out, events, drops, errors, xruns, copies);
                    for a recording that joined mid-run or stopped while the run went on, its
                    own window's counts (record_window.py), not the run's
    turns.png       when the report has a `turns` section (a run with a VAD) with a turn the
                    bot answered: one stacked bar per turn, voice-to-voice split into its
                    stages (report_turns.py)

From a saved report only counters.png, latency.png (percentiles per node, the report keeps
no per-block values) and turns.png can be drawn.

Every figure's title states the counts it shows, and each PNG carries them in its
`Description` text chunk, so a reader (or a test) can check a figure against the report.
Labels fit: constrained layout, titles wrapped to the figure's width, ids and kinds longer
than MAX_LABEL cut with an ellipsis (the page lists them whole).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .engine.errors import RemoteMediaError, UsageError
from .engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE

FIGURES = ("levels.png", "latency.png", "events.png", "counters.png")


def _matplotlib():
    """The matplotlib module; RemoteMediaError naming the extra when it is missing."""
    try:
        import matplotlib
    except ImportError as exc:
        raise RemoteMediaError("report needs matplotlib: pip install 'remotemedia[report]'") \
            from exc
    return matplotlib


def _save(fig, out, name: str, description: str) -> None:
    # out: the SafeDir write_report made or checked; the PNG replaces any entry `name` there
    with out.create(name, binary=True, replace=True) as f:
        fig.savefig(f, format="png", dpi=100, metadata={"Description": description})


def block_levels(path: Path, block_sizes: np.ndarray):
    """(rms dBFS, peak dBFS) per block of a float WAV cut at `block_sizes` (frames per block);
    blocks with no sample read are -inf -> shown at the floor."""
    import soundfile as sf

    from .nodes.analysis import SILENCE_DBFS
    rms = np.full(block_sizes.size, SILENCE_DBFS)
    peak = np.full(block_sizes.size, SILENCE_DBFS)
    if not path.exists():
        return rms, peak
    with sf.SoundFile(str(path)) as f:
        for i, n in enumerate(block_sizes):
            x = f.read(int(n), dtype="float32", always_2d=True)
            if x.size == 0:
                break
            x = x[np.isfinite(x)]
            if x.size:
                r = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
                p = float(np.max(np.abs(x)))
                rms[i] = max(SILENCE_DBFS, 20 * math.log10(r)) if r > 0 else SILENCE_DBFS
                peak[i] = max(SILENCE_DBFS, 20 * math.log10(p)) if p > 0 else SILENCE_DBFS
    return rms, peak


def _marks(t: dict, name: str) -> np.ndarray:
    """Indexes of the rows at which the running total `name` went up. The first row's total
    is the baseline (a recording started mid-run joins with totals already counted), so a
    counter that went up before the recording is not marked at its first block."""
    col = t[name]
    if col.size == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.diff(col) > 0) + 1


#: a label longer than this is cut with an ellipsis (the HTML page has the whole text)
MAX_LABEL = 32


def _label(text) -> str:
    """`text` as a label: at most MAX_LABEL characters, a longer one keeping its head and its
    tail (ids often differ only at the end: stage_01_..., stage_02_...)."""
    text = str(text)
    if len(text) <= MAX_LABEL:
        return text
    head = (MAX_LABEL - 1) // 2
    return text[:head] + "\u2026" + text[-(MAX_LABEL - 1 - head):]


def _title(text: str, width_in: float) -> str:
    """`text` wrapped to lines that fit a figure `width_in` inches wide (at the title's size
    a character is about 0.1 in)."""
    import textwrap
    return "\n".join(textwrap.wrap(text, max(20, int(width_in / 0.1))))


def _figure(width: float, height: float, **kwargs):
    """(Figure, axes) drawn by Agg, never a window, and outside pyplot's registry (nothing to
    close, nothing global). Constrained layout makes room for every tick label, axis label,
    title and legend."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**kwargs)


def placed_events(rec, base) -> list[dict]:
    """Each recorded event with where the report draws it: {"time_s", "from" (the field its
    time came from: media_time.event_time), "kind", "node", "seq", "event"}, in recorded
    order."""
    from .media_time import event_kind, event_time
    placed = []
    for record in rec.events:
        record = record if isinstance(record, dict) else {"event": record}
        event, seq = record.get("event"), record.get("seq")
        t, source = event_time(event, seq, base)
        node = event.get("node") if isinstance(event, dict) else None
        placed.append({"time_s": t, "from": source, "kind": event_kind(event),
                       "node": None if node is None else str(node), "seq": seq,
                       "event": event})
    return placed


def build_recording_figures(rec) -> dict:
    """The four figures of a Recording, not yet saved: {name: (matplotlib Figure,
    description)}. Every x axis is media time (media_time.TimeBase). Tests read the drawn
    data back from the figures: the event markers are Line2D artists with gid
    "events:<kind>"."""
    from .media_time import TimeBase
    t = rec.timeline
    report = rec.report or {}
    base = TimeBase.of(rec)
    seconds = base.block_start_s
    events = placed_events(rec, base)
    # the axis spans the blocks and every event (one sent at end of stream sits at the end)
    lo = min([base.start_s] + [e["time_s"] for e in events])
    hi = max([base.end_s] + [e["time_s"] for e in events])
    pad = max(hi - lo, 1e-3) * 0.02
    xlim = (lo - pad, hi + pad)
    figures = {}

    # levels, with xruns / drops / errors marked
    marks = {name: _marks(t, name) for name in ("input_overflow", "output_underflow",
                                                "drops", "errors")}
    counts = {name: int(idx.size and (t[name][-1] - t[name][0])) for name, idx in marks.items()}
    in_rms, in_peak = block_levels(rec.path / "input.wav", t["samples"])
    fig, ax = _figure(11, 4)
    ax.plot(seconds, in_rms, lw=0.8, label="input RMS", gid="levels:input")
    ax.plot(seconds, in_peak, lw=0.6, alpha=0.6, label="input peak")
    outp = rec.output()
    if outp is not None and outp[0].size:
        data, orate = outp
        n_out = max(1, int(round(t["samples"].mean() * orate / base.rate))) \
            if t["samples"].size else DEFAULT_BLOCK_SIZE
        blocks = np.full(int(math.ceil(data.shape[0] / n_out)), n_out)
        o_rms, _ = block_levels(rec.path / "output.wav", blocks)
        # on the input's time base: output.wav starts where its first frame's pts says
        ax.plot(base.output_s + np.arange(blocks.size) * n_out / orate, o_rms, lw=0.8,
                label="output RMS", gid="levels:output")
    for (name, idx), color, label in zip(marks.items(), ("red", "orange", "purple", "black"),
                                         ("input overflow", "output underflow", "drop",
                                          "error")):
        for j, i in enumerate(idx):
            ax.axvline(seconds[i], color=color, lw=1, ls="--", gid=f"mark-{label}",
                       label=label if j == 0 else None)
    ax.set_xlim(*xlim)
    ax.set_xlabel("media time (s)")
    ax.set_ylabel("dBFS")
    title = (f"levels: xruns in {counts['input_overflow']}, out {counts['output_underflow']}, "
             f"drops {counts['drops']}, errors {counts['errors']}")
    ax.set_title(_title(title, 11))
    ax.legend(loc="lower right", fontsize=8)
    figures["levels.png"] = (fig, title)

    # latency: engine and per node, over time and as histograms
    series = [("engine", t["engine_us"])] + [(nid, t[f"node_{nid}_us"]) for nid in rec.node_ids]
    e2e_ms = (t["dac_time"] - t["adc_time"]) * 1e3
    has_e2e = bool(np.isfinite(e2e_ms).any())
    width = 16 if has_e2e else 12
    fig, axes = _figure(width, max(4.0, 1.5 + 0.2 * len(series)),
                        ncols=3 if has_e2e else 2)
    a1, a2 = axes[0], axes[1]
    if has_e2e:
        ok = np.isfinite(e2e_ms)
        axes[2].plot(seconds[ok], e2e_ms[ok], lw=0.8, color="tab:red")
        axes[2].set_xlabel("media time (s)")
        axes[2].set_ylabel("ms")
        axes[2].set_title("end to end: DAC - ADC time", fontsize=9)
    for name, values in series:
        ok = np.isfinite(values)
        if ok.any():
            a1.plot(seconds[ok], values[ok], lw=0.6, label=_label(name))
            a2.hist(values[ok], bins=50, histtype="step", label=_label(name))
    a1.set_xlabel("media time (s)")
    a1.set_ylabel("us")
    a1.set_yscale("log")
    a2.set_xlabel("us")
    a2.set_ylabel("blocks")
    a2.set_yscale("log")
    a2.locator_params(axis="x", nbins=5)   # wide numbers (10000 us) stay apart
    if a1.lines:
        fig.legend(handles=a1.lines, loc="outside right upper", fontsize=8)
    eng = t["engine_us"][np.isfinite(t["engine_us"])]
    title = (f"latency per block: {eng.size} blocks, engine p50 "
             f"{np.percentile(eng, 50):.1f} us, max {eng.max():.1f} us" if eng.size
             else "latency per block: no blocks")
    fig.suptitle(_title(title, width))
    figures["latency.png"] = (fig, title)

    # events on a timeline, one row per kind, each at its own media time
    kinds: dict[str, list] = {}
    for e in events:
        kinds.setdefault(e["kind"], []).append(e["time_s"])
    names = sorted(kinds)
    fig, ax = _figure(11, 1.6 + 0.35 * max(1, len(names)))
    for row, kind in enumerate(names):
        ax.plot(kinds[kind], [row] * len(kinds[kind]), "|", ms=14, mew=1.5,
                gid=f"events:{kind}", label=kind)
    ax.set_yticks(range(len(names)), [_label(k) for k in names])
    ax.set_ylim(-0.6, max(0.6, len(names) - 0.4))
    ax.set_xlim(*xlim)
    ax.set_xlabel("media time (s)")
    title = f"events: {len(events)}" + (
        " (" + ", ".join(f"{k} {len(kinds[k])}" for k in names) + ")" if kinds else "")
    ax.set_title(_title(title, 11))
    figures["events.png"] = (fig, title)

    figures["counters.png"] = _counters_figure(recording_counters(report))
    _add_turns(figures, report)
    return figures


def _add_turns(figures: dict, report: dict) -> None:
    """turns.png, when the report has turns and one was answered (report_turns.py)."""
    from .report_turns import TURNS_FIGURE, turn_rows, turns_figure
    rows = turn_rows(report)
    if any(r.get("breakdown_ms") for r in rows):
        figures[TURNS_FIGURE] = turns_figure(rows, _figure, _label)


def recording_counters(report: dict) -> dict:
    """The counters a recording's figure shows: the run's report when the recording covered
    the whole run; its own window's counts (record_window.py) when it joined mid-run or
    stopped while the run went on, since the run's totals are not the recording's."""
    recording = report.get("recording") or {}
    counts = recording.get("counts")
    if not isinstance(counts, dict):
        return report   # made before recordings kept their own counts
    if recording.get("first_seq") in (0, None) and \
            recording.get("stop_reason") != "recording_stopped":
        return report
    return dict(counts)


def render_recording(rec, out) -> dict:
    """Draw the four figures for a Recording into `out` (a SafeDir); {figure name:
    description}."""
    described = {}
    for name, (fig, description) in build_recording_figures(rec).items():
        _save(fig, out, name, description)
        described[name] = description
    return described


def _counters_figure(report: dict) -> tuple:
    names, values = [], []
    for key in ("frames_in", "frames_out", "events_out", "drops", "errors",
                "serialization_events"):
        if key in report:
            names.append(key)
            values.append(report[key])
    for group in ("xruns", "copies"):
        for key, v in (report.get(group) or {}).items():
            names.append(f"{group}.{key}")
            values.append(v)
    fig, ax = _figure(10, max(3.0, 1.2 + 0.3 * len(names)))
    bars = ax.barh(names, values)
    ax.bar_label(bars, labels=[str(v) for v in values], fontsize=8, padding=2)
    ax.margins(x=0.15)   # room for the value beside the longest bar
    ax.invert_yaxis()
    title = "counters: " + ", ".join(f"{n} {v}" for n, v in zip(names, values)
                                     if n in ("frames_in", "frames_out", "drops", "errors"))
    if not names:
        title = "counters: none (the run did not finish)"
    ax.set_title(_title(title, 10))
    return fig, title


def build_stats_figures(report: dict) -> dict:
    """From a saved stats report: counters and per-node latency percentiles, not yet saved:
    {name: (Figure, description)}."""
    figures = {"counters.png": _counters_figure(report)}
    nodes = report.get("nodes") or {}
    rows = [("engine", (report.get("latency_us") or {}).get("engine") or {})]
    rows += [(nid, n.get("latency_us") or {}) for nid, n in nodes.items()]
    fig, ax = _figure(10, 1.5 + 0.4 * len(rows))
    y = np.arange(len(rows))
    for pct, off in (("p50", -0.25), ("p99", 0.0), ("max", 0.25)):
        ax.barh(y + off, [r.get(pct) or 0 for _, r in rows], height=0.25, label=pct)
    ax.set_yticks(y, [_label(name) for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("us")
    ax.legend(loc="lower right")
    title = f"latency percentiles: engine and {len(nodes)} node(s)"
    ax.set_title(title)
    figures["latency.png"] = (fig, title)
    _add_turns(figures, report)
    return figures


def render_stats(report: dict, out) -> dict:
    """From a saved stats report: counters and per-node latency percentiles, drawn into `out`
    (a SafeDir); {figure name: description}."""
    described = {}
    for name, (fig, description) in build_stats_figures(report).items():
        _save(fig, out, name, description)
        described[name] = description
    return described


def render_turns(report: dict, out) -> dict:
    """From a conversation's stats (`converse --json`'s `stats`): the turns figure, drawn
    into `out` (a SafeDir) when a turn was answered; {figure name: description}."""
    figures: dict = {}
    _add_turns(figures, report)
    described = {}
    for name, (fig, description) in figures.items():
        _save(fig, out, name, description)
        described[name] = description
    return described


def _is_conversation(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("stats"), dict) \
        and isinstance(doc["stats"].get("turns"), dict) and isinstance(doc.get("turns"), list)


def read_report_file(path: Path):
    """The JSON document in `path`: the whole file, or else its last non-empty line (a
    command's whole `--json` stdout: events or notes, then the report as the last line).
    UsageError naming the file when neither is JSON."""
    from .recording import _read_json
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else _read_json(path)
    except ValueError as exc:
        raise UsageError(f"cannot read {path}: neither the file nor its last line is JSON "
                         f"({exc}); a `--json` report is the last line of the command's "
                         f"stdout") from None


def write_report(source, out=None) -> Path:
    """Write report.html and the figures for a recording directory or a saved JSON report;
    returns the HTML path. UsageError (exit 2) for a source that is neither."""
    from .recording import Recording
    src = Path(source)
    if src.is_dir():
        rec = Recording(src)
        out_dir = Path(out) if out else src / "report"
        report = rec.report or {}
        title = f"recording {src}"
    elif src.is_file():
        doc = read_report_file(src)
        rec = None
        if _is_conversation(doc):
            # `converse --json`: its stats (the turns section: the turns figure) and the run's
            # own figures; no engine counters, which a simulated run does not have
            report = {**doc["stats"], **{k: doc[k] for k in ("simulated_s", "wall_s", "passed",
                                                             "stop_reason") if k in doc}}
            title = f"conversation {src}"
        elif isinstance(doc, dict) and "frames_in" in doc:
            report = doc
            title = f"report {src}"
        else:
            raise UsageError(f"{src} is not a stats report (`stream --json` or "
                             f"`converse --json` output, or its last line)")
        out_dir = Path(out) if out else src.with_name(src.stem + "-report")
    else:
        raise UsageError(f"no such recording directory or report file: {src}")
    from . import report_html
    _matplotlib()   # missing matplotlib or Jinja2 refuses the command before anything is made
    report_html.environment()
    from .io.safefile import SafeDir
    base = events = None
    if rec is not None:
        from .media_time import TimeBase
        base = TimeBase.of(rec)
        events = placed_events(rec, base)
    # made or checked (this user's, not writable by group or others); every file in it is
    # created new, never through a link: io/safefile.py
    with SafeDir.make(out_dir, "report: --out") as folder:
        described = render_recording(rec, folder) if rec is not None else \
            render_turns(report, folder) if title.startswith("conversation") else \
            render_stats(report, folder)
        page = report_html.render(title, report, described, out_dir, rec, base, events)
        folder.write("report.html", page)
    return out_dir / "report.html"
