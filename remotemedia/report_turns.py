"""The turns figure of `remotemedia report` (report_figures.py): one stacked bar per user
turn of a report's `turns` section (turn_observer.py, or a conversation's), its segments the
breakdown of voice-to-voice (endpoint, each node, output) in ms, so a bar's height is the
turn's voice-to-voice. A turn the bot never answered (no reply sample out) has no bar: a
"no reply" label stands in its place; a turn whose reply the user cut (`interrupted`) has its
bar outlined and hatched. The title counts turns, replies and interruptions, with the median
(numpy) and the longest voice-to-voice.

Tests read the drawn data back: each stage is a bar container whose patches have gid
"turns:<stage>", one patch per turn (x = the turn's number, height its ms, y its bottom); the
marks have gid "turn-mark:no-reply" (a Text at x) and "turn-mark:interrupted" (an unfilled
hatched Rectangle over the bar).
"""

from __future__ import annotations

import numpy as np

#: the file name of the figure
TURNS_FIGURE = "turns.png"


def turn_rows(report: dict) -> list[dict]:
    """The per-turn rows of a report's `turns` section ([] when it has none)."""
    section = report.get("turns") if isinstance(report, dict) else None
    rows = section.get("turns") if isinstance(section, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def stages_of(rows: list[dict]) -> list[str]:
    """Every breakdown stage of the rows, in the order the turns have them (endpoint first,
    output last)."""
    stages: list[str] = []
    for row in rows:
        for stage in row.get("breakdown_ms") or {}:
            if stage not in stages:
                stages.append(stage)
    for last in ("output",):
        if last in stages:
            stages.remove(last)
            stages.append(last)
    return stages


def turns_figure(rows: list[dict], figure, label) -> tuple:
    """(Figure, description) of the stacked bars; `figure(width, height)` and `label(text)`
    are report_figures' helpers (a Figure outside pyplot, a label cut to fit)."""
    stages = stages_of(rows)
    fig, ax = figure(max(6.0, min(16.0, 2.0 + 0.5 * len(rows))), 4.5)
    numbers = list(range(1, len(rows) + 1))
    bottoms = [0.0] * len(rows)
    for stage in stages:
        heights = [float((r.get("breakdown_ms") or {}).get(stage) or 0.0) for r in rows]
        bars = ax.bar(numbers, heights, bottom=bottoms, label=label(stage))
        for patch in bars.patches:
            patch.set_gid(f"turns:{stage}")
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    replied = [r["voice_to_voice_ms"] for r in rows if r.get("voice_to_voice_ms") is not None]
    top = max(bottoms + [1.0])
    for n, row, height in zip(numbers, rows, bottoms):
        if row.get("voice_to_voice_ms") is None:
            ax.text(n, top * 0.02, "no reply", rotation=90, ha="center", va="bottom",
                    fontsize=8, color="0.4", gid="turn-mark:no-reply")
        if row.get("interrupted"):
            mark = ax.bar([n], [max(height, top * 0.02)], fill=False, hatch="//",
                          edgecolor="black", linewidth=1.2)
            mark.patches[0].set_gid("turn-mark:interrupted")
    interrupted = sum(1 for r in rows if r.get("interrupted"))
    ax.set_xticks(numbers, [str(n) for n in numbers])
    ax.set_xlabel("turn")
    ax.set_ylabel("voice to voice (ms)")
    if stages:   # beside the bars, never over them
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8,
                   ncols=min(len(stages), 6))
    title = (f"turns: {len(rows)}, replied {len(replied)}"
             + (f", interrupted {interrupted}" if interrupted else "")
             + (f", voice to voice p50 {float(np.median(replied)):.0f} ms, "
                f"max {max(replied):.0f} ms" if replied else ""))
    fig.suptitle(title)      # above the axes and the legend both
    return fig, title


__all__ = ["TURNS_FIGURE", "stages_of", "turn_rows", "turns_figure"]
