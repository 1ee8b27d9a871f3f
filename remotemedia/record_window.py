"""A recording's own window of its run: a recording started mid-run (the TUI's R, the
monitor's `record` command) begins at some block of a run that began earlier and may stop
while the run goes on, so the run's report (its totals, its stop reason) is not the
recording's. record.py keeps the few values this module turns into the `recording` section's
`first_seq`, `first_pts`, `output_start_pts`, `stop_reason` and `counts`.
"""

from __future__ import annotations

#: session counters (engine/counters.py Counters) a recording counts over its window
WINDOW_COUNTERS = ("frames_in", "frames_out", "events_out", "drops", "errors",
                   "input_overflow", "output_underflow")


def snapshot(counters) -> dict:
    """The session counters a recording's window counts, as ints: {name: value}."""
    return {k: int(getattr(counters, k)) for k in WINDOW_COUNTERS}


def window(recorder, stats: dict | None) -> dict:
    """The recording's window (record.Recorder, after its last block):

    - `first_seq`, `first_pts`: the first recorded block (pts in samples at the input rate);
      None when no block was recorded
    - `output_start_pts`: pts of output.wav's first frame, in samples at the output rate, None
      when no frame carried one: output.wav starts there, on the input's time base
    - `stop_reason`: the run's (`stats["stop_reason"]`) when the run ended or was ending,
      else "recording_stopped" (stopped while the run went on)
    - `counts`: the session's frames_in, frames_out, events_out, drops, errors and xruns
      {input_overflow, output_underflow} (as the stats report counts them) from before the
      recording's first block to its stop; None when it recorded no block."""
    run_reason = (stats or {}).get("stop_reason")
    reason = run_reason or ("recording_stopped" if recorder._stopped else None)
    counts = None
    base, end = recorder._base, recorder._end
    if base is not None and end is not None:
        d = {k: end[k] - base[k] for k in WINDOW_COUNTERS}
        counts = {k: d[k] for k in ("frames_in", "frames_out", "events_out", "drops",
                                    "errors")}
        counts["xruns"] = {"input_overflow": d["input_overflow"],
                           "output_underflow": d["output_underflow"]}
    first = recorder._first
    return {"first_seq": first[0] if first else None,
            "first_pts": first[1] if first else None,
            "output_start_pts": recorder._out_pts0, "stop_reason": reason, "counts": counts}
