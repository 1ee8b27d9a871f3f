"""Subtitles from transcript events: SubRip/WebVTT timecodes, line wrapping, cues.

The one definition the transcript outputs (io/transcripts.py) and the upstream's SrtOutput node
(nodes/upstream/transcribe.py) share. Transcript events are Transcribe's
`{"type": "transcript", "text", "start_s", "end_s", "final", "words": [{"word", "start_s",
"end_s", "p"}], ...}`, times in seconds of media time. The rules are the upstream SrtOutput's:
milliseconds rounded half away from zero, hours unbounded, lines filled greedily up to a number
of UTF-8 bytes (a longer word keeps a line of its own).
"""

from __future__ import annotations

import math

from .numbers import as_float

U64_MAX = 2 ** 64 - 1  # the upstream casts milliseconds to u64, saturating
MAX_LINE = 42        # characters (UTF-8 bytes) per subtitle line, the broadcast norm
MAX_LINES = 2        # lines per cue


def timecode(seconds: float, sep: str = ",") -> str:
    """`HH:MM:SS,mmm` (`sep` "." for WebVTT): milliseconds rounded half away from zero, a
    negative time as 0, hours unbounded (at least two digits)."""
    if not seconds > 0:                 # negative, zero or NaN
        return f"00:00:00{sep}000"
    total = min(int(seconds * 1000.0 + 0.5), U64_MAX) if seconds != math.inf else U64_MAX
    h, rest = divmod(total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def wrap(text: str, width: int = MAX_LINE) -> str:
    """`text` in lines of at most `width` UTF-8 bytes, filled greedily on whitespace (a longer
    word gets a line of its own, unbroken); unchanged when width is 0 or it already fits."""
    if width <= 0 or len(text.encode()) <= width:
        return text
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line.encode()) + 1 + len(word.encode()) <= width:
            line += " " + word
        else:
            if line:
                lines.append(line)
            line = word
    if line:
        lines.append(line)
    return "\n".join(lines)


def cues(event: dict, width: int = MAX_LINE, max_lines: int = MAX_LINES) -> list[tuple]:
    """A transcript event's cues as (start_s, end_s, text) with the text wrapped at `width`:
    its words grouped so that each cue holds at most `max_lines` lines and ends at a sentence's
    end, each timed by its first and last word. Without words (or width 0): one cue."""
    words = event.get("words") or []
    text = str(event.get("text", "")).strip()
    start, end = _num(event.get("start_s")), _num(event.get("end_s"))
    if not words or width <= 0:
        return [(start, end, wrap(text, width))] if text else []
    out, group = [], []
    for w in words:
        token = str(w.get("word", "")).strip()
        if not token:
            continue
        trial = " ".join([g[0] for g in group] + [token])
        if group and wrap(trial, width).count("\n") >= max_lines:
            out.append(_cue(group, width))
            group = []
        group.append((token, _num(w.get("start_s")), _num(w.get("end_s"))))
        if token[-1] in ".!?":
            out.append(_cue(group, width))
            group = []
    if group:
        out.append(_cue(group, width))
    return out


def _cue(group, width):
    return group[0][1], max(group[-1][2], group[0][1]), wrap(" ".join(g[0] for g in group),
                                                              width)


def _num(value) -> float:
    number = as_float(value)            # a huge int is no float (OverflowError before)
    return 0.0 if number is None else number


def srt_cue(n: int | None, start: float, end: float, text: str) -> str:
    """One SubRip cue: `n` (None: unnumbered), the times, the text, a blank line."""
    head = f"{n}\n" if n is not None else ""
    return f"{head}{timecode(start)} --> {timecode(end)}\n{text}\n\n"


def is_final_transcript(data) -> bool:
    """True for a Json `{"type": "transcript", "final": true}` event."""
    value = data.value if data.kind == "json" else None
    return isinstance(value, dict) and value.get("type") == "transcript" \
        and value.get("final") is True
