"""`remotemedia report DIR` (a recording) or `remotemedia report REPORT.json` (a saved --json
report): one self-contained HTML page and the PNG figures it shows, drawn with matplotlib
(the `report` extra: `pip install remotemedia[report]`).

From a recording (record.py):

    levels.png      input and output RMS and peak in dBFS per block over time, with xruns,
                    drops and errors marked on the time axis (one vertical line per block
                    where a counter went up)
    latency.png     the engine's per-block time and each node's, over time and as histograms;
                    with a device, each block's end-to-end latency (PortAudio's DAC time of
                    its first sample minus the ADC time of its capture) over time
    events.png      the graph's events on a timeline, one row per kind
    counters.png    the final counters (frames in/out, events, drops, errors, xruns, copies)

From a saved report only counters.png and latency.png (percentiles per node, the report keeps
no per-block values) can be drawn.

Every figure's title states the counts it shows, and each PNG carries them in its
`Description` text chunk, so a reader (or a test) can check a figure against the report.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from .engine.errors import RemoteMediaError, UsageError

FIGURES = ("levels.png", "latency.png", "events.png", "counters.png")


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise RemoteMediaError("report needs matplotlib: pip install 'remotemedia[report]'") \
            from exc
    matplotlib.use("Agg")   # files only: never a window
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out, name: str, description: str) -> None:
    # out: the SafeDir write_report made or checked; the PNG replaces any entry `name` there
    with out.create(name, binary=True, replace=True) as f:
        fig.savefig(f, format="png", dpi=100, metadata={"Description": description})
    import matplotlib.pyplot as plt
    plt.close(fig)


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
    """Indexes of the blocks at which the running total `name` went up."""
    col = t[name]
    if col.size == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.diff(np.concatenate(([0], col))) > 0)


def render_recording(rec, out) -> dict:
    """Draw the four figures for a Recording into `out` (a SafeDir); {figure name:
    description}."""
    plt = _pyplot()
    t = rec.timeline
    report = rec.report or {}
    audio = rec.manifest.get("audio", {})
    rate = audio.get("sample_rate") or 48000
    seconds = t["pts"] / rate if t["pts"].size else np.array([])
    described = {}

    # levels, with xruns / drops / errors marked
    xin, xout = _marks(t, "input_overflow"), _marks(t, "output_underflow")
    drops, errors = _marks(t, "drops"), _marks(t, "errors")
    counts = {"xruns_in": int(t["input_overflow"][-1]) if t["seq"].size else 0,
              "xruns_out": int(t["output_underflow"][-1]) if t["seq"].size else 0,
              "drops": int(t["drops"][-1]) if t["seq"].size else 0,
              "errors": int(t["errors"][-1]) if t["seq"].size else 0}
    in_rms, in_peak = block_levels(rec.path / "input.wav", t["samples"])
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(seconds, in_rms, lw=0.8, label="input RMS")
    ax.plot(seconds, in_peak, lw=0.6, alpha=0.6, label="input peak")
    outp = rec.output()
    if outp is not None and outp[0].size:
        data, orate = outp
        n_out = max(1, int(round(t["samples"].mean() * orate / rate))) if t["samples"].size \
            else 960
        blocks = np.full(int(math.ceil(data.shape[0] / n_out)), n_out)
        o_rms, _ = block_levels(rec.path / "output.wav", blocks)
        ax.plot(np.arange(blocks.size) * n_out / orate, o_rms, lw=0.8, label="output RMS")
    for idx, color, label in ((xin, "red", "input overflow"), (xout, "orange",
                                                               "output underflow"),
                              (drops, "purple", "drop"), (errors, "black", "error")):
        for j, i in enumerate(idx):
            ax.axvline(seconds[i], color=color, lw=1, ls="--", gid=f"mark-{label}",
                       label=label if j == 0 else None)
    ax.set_xlabel("media time (s)")
    ax.set_ylabel("dBFS")
    title = (f"levels: xruns in {counts['xruns_in']}, out {counts['xruns_out']}, drops "
             f"{counts['drops']}, errors {counts['errors']}")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, out, "levels.png", title)
    described["levels.png"] = title

    # latency: engine and per node, over time and as histograms
    series = [("engine", t["engine_us"])] + [(nid, t[f"node_{nid}_us"]) for nid in rec.node_ids]
    e2e_ms = (t["dac_time"] - t["adc_time"]) * 1e3
    has_e2e = bool(np.isfinite(e2e_ms).any())
    fig, axes = plt.subplots(1, 3 if has_e2e else 2, figsize=(16 if has_e2e else 12, 4))
    a1, a2 = axes[0], axes[1]
    if has_e2e:
        ok = np.isfinite(e2e_ms)
        axes[2].plot(seconds[ok], e2e_ms[ok], lw=0.8, color="tab:red")
        axes[2].set_xlabel("media time (s)")
        axes[2].set_ylabel("ms")
        axes[2].set_title("end to end: DAC time - ADC time (PortAudio)", fontsize=9)
    for name, values in series:
        ok = np.isfinite(values)
        if ok.any():
            a1.plot(seconds[ok], values[ok], lw=0.6, label=name)
            a2.hist(values[ok], bins=50, histtype="step", label=name)
    a1.set_xlabel("media time (s)")
    a1.set_ylabel("us")
    a1.set_yscale("log")
    a2.set_xlabel("us")
    a2.set_ylabel("blocks")
    a2.set_yscale("log")
    a1.legend(fontsize=8)
    eng = t["engine_us"][np.isfinite(t["engine_us"])]
    title = (f"latency per block: {eng.size} blocks, engine p50 "
             f"{np.percentile(eng, 50):.1f} us, max {eng.max():.1f} us" if eng.size
             else "latency per block: no blocks")
    fig.suptitle(title)
    _save(fig, out, "latency.png", title)
    described["latency.png"] = title

    # events on a timeline
    kinds: dict[str, list] = {}
    for ev in rec.events:
        e = ev.get("event") or {}
        kind = str(e.get("type") or e.get("event") or "event")
        seq = ev.get("seq")
        when = (seconds[seq] if seq is not None and 0 <= seq < seconds.size
                else (seconds[-1] if seconds.size else 0.0))
        kinds.setdefault(kind, []).append(when)
    fig, ax = plt.subplots(figsize=(11, 2 + 0.3 * max(1, len(kinds))))
    for row, (kind, times) in enumerate(sorted(kinds.items())):
        ax.plot(times, [row] * len(times), "|", ms=12, label=kind)
    ax.set_yticks(range(len(kinds)), sorted(kinds))
    ax.set_xlabel("media time (s)")
    if seconds.size:
        ax.set_xlim(0, max(float(seconds[-1]), 1e-3))
    title = f"events: {len(rec.events)}" + (
        " (" + ", ".join(f"{k} {len(v)}" for k, v in sorted(kinds.items())) + ")" if kinds
        else "")
    ax.set_title(title)
    _save(fig, out, "events.png", title)
    described["events.png"] = title

    described["counters.png"] = _counters_figure(plt, report, out)
    return described


def _counters_figure(plt, report: dict, out: Path) -> str:
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
    fig, ax = plt.subplots(figsize=(10, 4))
    bars = ax.barh(names, values)
    ax.bar_label(bars, labels=[str(v) for v in values], fontsize=8)
    ax.invert_yaxis()
    title = "counters: " + ", ".join(f"{n} {v}" for n, v in zip(names, values)
                                     if n in ("frames_in", "frames_out", "drops", "errors"))
    ax.set_title(title if names else "counters: none (the run did not finish)")
    fig.tight_layout()
    _save(fig, out, "counters.png", title)
    return title


def render_stats(report: dict, out) -> dict:
    """From a saved stats report: counters and per-node latency percentiles, drawn into `out`
    (a SafeDir); {figure name: description}."""
    plt = _pyplot()
    described = {"counters.png": _counters_figure(plt, report, out)}
    nodes = report.get("nodes") or {}
    rows = [("engine", (report.get("latency_us") or {}).get("engine") or {})]
    rows += [(nid, n.get("latency_us") or {}) for nid, n in nodes.items()]
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.4 * len(rows)))
    y = np.arange(len(rows))
    for k, (pct, off) in enumerate((("p50", -0.25), ("p99", 0.0), ("max", 0.25))):
        ax.barh(y + off, [r.get(pct) or 0 for _, r in rows], height=0.25, label=pct)
    ax.set_yticks(y, [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("us")
    ax.legend()
    title = f"latency percentiles: engine and {len(nodes)} node(s)"
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, out, "latency.png", title)
    described["latency.png"] = title
    return described


def write_report(source, out=None) -> Path:
    """Write report.html and the figures for a recording directory or a saved JSON report;
    returns the HTML path. UsageError (exit 2) for a source that is neither."""
    from .recording import Recording, _read_json
    src = Path(source)
    if src.is_dir():
        rec = Recording(src)
        out_dir = Path(out) if out else src / "report"
        report = rec.report or {}
        title = f"recording {src}"
    elif src.is_file():
        doc = _read_json(src)
        if not isinstance(doc, dict) or "frames_in" not in doc:
            raise UsageError(f"{src} is not a stats report (a `stream --json` last line)")
        rec, report = None, doc
        out_dir = Path(out) if out else src.with_name(src.stem + "-report")
        title = f"report {src}"
    else:
        raise UsageError(f"no such recording directory or report file: {src}")
    _pyplot()   # missing matplotlib refuses the command before anything is made
    from .io.safefile import SafeDir
    # made or checked (this user's, not writable by group or others); every file in it is
    # created new, never through a link: io/safefile.py
    with SafeDir.make(out_dir, "report: --out") as folder:
        described = render_recording(rec, folder) if rec is not None else \
            render_stats(report, folder)
        page = _html(title, report, described, out_dir, rec)
        folder.write("report.html", page)
    return out_dir / "report.html"


def _html(title: str, report: dict, described: dict, out_dir: Path, rec) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    if report:
        rows = []
        for key in ("frames_in", "frames_out", "events_out", "drops", "errors",
                    "serialization_events", "stop_reason", "duration_s", "realtime_factor"):
            if key in report:
                rows.append((key, report[key]))
        for group in ("xruns", "copies"):
            for k, v in (report.get(group) or {}).items():
                rows.append((f"{group}.{k}", v))
        for k, v in (report.get("recording") or {}).items():
            if not isinstance(v, dict):
                rows.append((f"recording.{k}", v))
        parts.append("<h2>counters</h2><table>" + "".join(
            f"<tr><th>{esc(str(k))}</th><td id='{esc(str(k))}'>{esc(str(v))}</td></tr>"
            for k, v in rows) + "</table>")
    if rec is not None:
        parts.append(f"<p>{rec.blocks} blocks recorded; versions: "
                     f"{esc(json.dumps(rec.versions))}</p>")
    for name, desc in described.items():
        data = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
        parts.append(f"<h2>{esc(name[:-4])}</h2><p>{esc(desc)}</p>"
                     f"<img alt='{esc(desc)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
