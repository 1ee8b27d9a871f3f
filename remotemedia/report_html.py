"""The HTML page of `remotemedia report`: a Jinja2 template (templates/report.html.j2) with
autoescaping on, so a node id, an event's text or a path with markup in it is shown as text,
never run. The page is self-contained: every figure is inline (data: URLs), nothing is fetched.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .engine.errors import RemoteMediaError

#: events listed on the page at most (a meter every block makes thousands)
MAX_EVENTS = 1000
#: the run's counters shown, in order (groups `xruns`, `copies` follow)
RUN_KEYS = ("frames_in", "frames_out", "events_out", "drops", "errors", "serialization_events",
            "stop_reason", "duration_s", "realtime_factor")


def environment():
    """The Jinja2 environment: templates from the package, autoescape on, StrictUndefined (a
    name the template uses and the page lacks is an error, not an empty cell).
    RemoteMediaError naming the extra when Jinja2 is missing."""
    try:
        import jinja2
    except ImportError as exc:
        raise RemoteMediaError("report needs Jinja2: pip install 'remotemedia[report]'") \
            from exc
    return jinja2.Environment(loader=jinja2.PackageLoader("remotemedia", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _rows(report: dict) -> list[tuple[str, object]]:
    rows = [(key, report[key]) for key in RUN_KEYS if key in report]
    for group in ("xruns", "copies"):
        for k, v in (report.get(group) or {}).items():
            rows.append((f"{group}.{k}", v))
    return rows


def _details(event) -> str:
    """An event's fields other than who/when, as compact JSON (escaped by the template)."""
    if not isinstance(event, dict):
        return json.dumps(event, default=str)
    rest = {k: v for k, v in event.items() if k not in ("type", "node")}
    return json.dumps(rest, default=str, separators=(", ", ": "))


def recording_section(rec, base) -> dict:
    """What the page says about the recording itself: blocks, media time span, where it
    started (the run's start or mid-run at a block), its stop reason and its own counts
    (record_window.py), with `mid_run` True when it joined a running stream."""
    recording = (rec.report or {}).get("recording") or {}
    first_seq = int(rec.timeline["seq"][0]) if rec.blocks else None
    counts = recording.get("counts") if isinstance(recording.get("counts"), dict) else None
    rows = []
    if counts:
        rows = [(k, v) for k, v in counts.items() if not isinstance(v, dict)]
        rows += [(f"xruns.{k}", v) for k, v in (counts.get("xruns") or {}).items()]
    manifest = rec.manifest if isinstance(rec.manifest, dict) else {}
    name = (manifest.get("metadata") or {}).get("name") if isinstance(
        manifest.get("metadata"), dict) else None
    nodes = [str(n.get("id")) for n in manifest.get("nodes") or [] if isinstance(n, dict)]
    return {"manifest": name, "nodes": nodes, "blocks": rec.blocks, "start_s": base.start_s, "end_s": base.end_s,
            "first_seq": first_seq, "mid_run": bool(first_seq),
            "stop_reason": recording.get("stop_reason")
            or (rec.report or {}).get("stop_reason")
            or ("cut: " + rec.cut["reason"] if rec.cut else None),
            "counts": rows, "cut": rec.cut}


def render(title: str, report: dict, described: dict, out_dir: Path, rec=None, base=None,
           events: list | None = None) -> str:
    """The page as a str: `title`; `report` the run's stats report (may be {}); `described`
    {figure file name: description} of the PNGs already in `out_dir`; for a recording, `rec`
    (recording.Recording), `base` (media_time.TimeBase) and `events` (report.placed_events)."""
    figures = []
    for name, desc in described.items():
        data = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
        figures.append({"name": name[:-4], "description": desc,
                        "src": "data:image/png;base64," + data})
    events = events or []
    shown = [{"time_s": e["time_s"], "from": e["from"], "seq": e["seq"], "kind": e["kind"],
              "node": e["node"], "details": _details(e["event"])} for e in events[:MAX_EVENTS]]
    from .report_turns import turn_rows
    template = environment().get_template("report.html.j2")
    return template.render(
        title=title, run_rows=_rows(report), figures=figures, events=shown,
        turns=turn_rows(report),
        events_total=len(events),
        recording=recording_section(rec, base) if rec is not None else None,
        versions=json.dumps(rec.versions, default=str) if rec is not None else None)
