"""Reading a recording back (`stream --record DIR`, record.py): its timeline, events,
manifest, report and versions, and where a recording whose run never finished was cut.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import math
from pathlib import Path

import numpy as np

from .engine.errors import UsageError, one_line

#: timeline.csv columns, in order. Times on the run's clock are microseconds since the run
#: started; adc_time/dac_time are PortAudio's stream clock in seconds (empty without a device);
#: the counters are the session's running totals after the block was read; device_drops is
#: the device end's own part of drops (blocks refused by its ring, skipped to catch up, outputs
#: it could not queue), which a replay puts back where it happened; status is PortAudio's
#: callback flags of the callback that captured the block (paInputUnderflow 1, paInputOverflow 2,
#: paOutputUnderflow 4, paOutputOverflow 8, paPrimingOutput 16; 0 when none, -1 without a
#: device input).
TIMELINE_COLUMNS = ("seq", "pts", "samples", "arrival_us", "lateness_us", "engine_us",
                    "adc_time", "dac_time", "capture_tick", "status", "input_overflow",
                    "output_underflow", "drops", "device_drops", "errors", "audio_out",
                    "events_out")


class Recording:
    """A recording directory, read: `timeline` (column name -> ndarray; float64 with NaN for
    empty cells, int64 for the integer columns), `node_ids` (the node_<id>_us columns),
    `manifest` (dict), `report` (dict or None when the run did not finish), `events` (list of
    {"seq", "event"}), `versions` (dict), `path`, `cut` (None, or where a run that never
    finished was cut: {"reason", "blocks", "last_seq", "time_s"}; then `timeline` holds only
    the rows whose input is in input.wav and `events` only those of the blocks kept).
    UsageError (exit 2) naming the file when something is missing or unreadable."""

    INT_COLUMNS = {"seq", "pts", "samples", "capture_tick", "status", "input_overflow",
                   "output_underflow",
                   "drops", "device_drops", "errors", "audio_out", "events_out"}

    def __init__(self, directory):
        path = Path(directory)
        if not path.is_dir():
            raise UsageError(f"{path} is not a recording directory (no such directory)")
        for name in ("input.wav", "timeline.csv", "manifest.json"):
            if not (path / name).exists():
                raise UsageError(f"{path} is not a recording: {name} is missing")
        self.path = path
        from .engine.loader import read_document
        # a manifest like any other: through the bounded loader (size, depth, aliases), as it
        # ran (nothing expanded again)
        check_recorded_file(path / "manifest.json")   # a FIFO there would block the loader
        self.manifest, _ = read_document(path / "manifest.json")
        self.report = _read_report(path / "report.json")
        self.versions = _read_json(path / "versions.json") \
            if (path / "versions.json").exists() else {}
        self.timeline, self.node_ids = _read_timeline(path / "timeline.csv")
        #: None for a recording whose run finished; else where it was cut (see `_find_cut`)
        self.cut = self._find_cut()
        last_seq = self.cut["last_seq"] if self.cut is not None else None
        self.events = []
        if (path / "events.jsonl").exists():
            lines = _whole_lines(path / "events.jsonl")
            for n, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise UsageError(f"{path / 'events.jsonl'} line {n}: not JSON "
                                         f"({exc})") from None
                    if last_seq is not None and not (isinstance(record, dict) and isinstance(
                            record.get("seq"), int) and record["seq"] <= last_seq):
                        # written ahead of the last row kept (or at the final push): not compared
                        continue
                    self.events.append(record)

    def _find_cut(self) -> dict | None:
        """A recording whose run never finished (killed, crashed, a full disk: no report.json
        or a failed write) is cut: keep the timeline rows whose input samples are all in
        input.wav, and say where it ends: `blocks` kept, `last_seq`, `time_s` (pts of the end
        of the last kept block, in seconds), `reason`."""
        import soundfile as sf
        try:
            frames = sf.info(str(self.path / "input.wav")).frames
        except (RuntimeError, OSError) as exc:
            raise UsageError(f"cannot read {self.path / 'input.wav'}: {one_line(exc)}") \
                from None
        t = self.timeline
        total = np.cumsum(t["samples"]) if t["samples"].size else t["samples"]
        keep = int(np.searchsorted(total, frames, side="right")) if total.size else 0
        recording = (self.report or {}).get("recording") or {}
        failed = self.report is not None and recording.get("failed")
        if self.report is not None and not failed and keep == t["seq"].size:
            return None
        if keep < t["seq"].size:
            self.timeline = {k: v[:keep] for k, v in t.items()}
        rate = (self.manifest.get("audio") or {}).get("sample_rate") or 1
        seq = self.timeline["seq"]
        end_samples = int(total[keep - 1]) if keep else 0
        reason = ("a write failed: " + str(failed)) if failed else \
            "the run did not finish (no report.json)" if self.report is None else \
            "input.wav holds fewer samples than the timeline"
        return {"reason": reason, "blocks": keep, "last_seq": int(seq[-1]) if keep else -1,
                "time_s": round(end_samples / rate, 6)}

    @property
    def blocks(self) -> int:
        """Rows in the timeline: blocks recorded."""
        return int(self.timeline["seq"].size)

    @property
    def missing_blocks(self) -> int:
        """Blocks the run pushed that the recorder could not keep (its writer fell a whole ring
        behind): from report.json, else from gaps in the timeline's seq."""
        recording = (self.report or {}).get("recording") or {}
        if "blocks_dropped" in recording:
            return int(recording["blocks_dropped"])
        seq = self.timeline["seq"]
        return int(seq[-1] - seq[0] + 1 - seq.size) if seq.size else 0

    def output(self):
        """(samples as float32 (frames, channels), sample rate) of output.wav, or None."""
        import soundfile as sf
        p = self.path / "output.wav"
        if not p.exists():
            return None
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        return data, rate


def read_recorded_text(path: Path) -> str:
    """The UTF-8 text of one of a recording's files. The recorder makes only regular files
    (O_EXCL | O_NOFOLLOW): anything else there (a FIFO, a link to /dev/zero, a device) was put
    there afterwards and is refused with UsageError naming it, never read for ever or waited
    on. FileNotFoundError, OSError and UnicodeDecodeError as open() and decode give them."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{path}: not a regular file (the recorder writes only regular "
                             f"files); refusing to read it")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    finally:
        os.close(fd)
    return data.decode("utf-8")


def check_recorded_file(path: Path) -> None:
    """read_recorded_text's refusal, for a file another reader opens (manifest.json)."""
    try:
        st = os.stat(path)
    except OSError:
        return   # the reader names a missing or unreadable file itself
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: not a regular file (the recorder writes only regular "
                         f"files); refusing to read it")


def _read_report(path: Path) -> dict | None:
    """report.json, or None when the run never wrote it whole (killed, a full disk)."""
    try:
        report = json.loads(read_recorded_text(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None   # cut while it was written: the recording reads as cut
    return report if isinstance(report, dict) else None


def _read_json(path: Path):
    try:
        return json.loads(read_recorded_text(path))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _whole_lines(path: Path) -> list[str]:
    """The file's lines that end with a newline: a line cut by a kill or a full disk is not
    read (it was never whole)."""
    try:
        text = read_recorded_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    lines = text.split("\n")
    return [line.rstrip("\r") for line in lines[:-1]]   # the last piece never ended


def _read_timeline(path: Path):
    reader = csv.reader(_whole_lines(path))
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError(f"{path} is empty") from None
    missing = [c for c in TIMELINE_COLUMNS if c not in header]
    if missing:
        raise UsageError(f"{path}: not a timeline (no column {missing[0]})")
    rows = list(reader)
    cols = {}
    for j, name in enumerate(header):
        values = [r[j] if j < len(r) else "" for r in rows]
        try:
            if name in Recording.INT_COLUMNS:
                cols[name] = np.array([int(v) if v else -1 for v in values], dtype=np.int64)
            else:
                cols[name] = np.array([float(v) if v else math.nan for v in values],
                                      dtype=np.float64)
        except ValueError as exc:
            raise UsageError(f"{path}: column {name}: {exc}") from None
    node_ids = [h[len("node_"):-len("_us")] for h in header
                if h.startswith("node_") and h.endswith("_us")]
    return cols, node_ids
