"""The TUI's saving keys: `s` writes the stats report, `R` starts and stops a recording.

A mixin of RemoteMediaApp (tui/app.py), kept apart because it is the one part of the app that
writes files: everything here runs on Textual's event loop; the Recorder's writer thread does the
disk work of a recording (record.py), so the audio path never waits for it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ..engine import strictjson
from ..engine.errors import RemoteMediaError, one_line
from ..io.safefile import write_output   # never through a link someone else planted
from .eventlog import EventLog


class SavingActions:
    """`action_save_stats`, `action_toggle_record` and what they need; expects the app's
    runner, manifest_path, input_spec, output_spec, bypass, stats_dir, recorder, last_saved,
    last_recording and _stats_override attributes (RemoteMediaApp sets them)."""

    def action_save_stats(self) -> None:
        """`s`: write the current (or last) run's stats report as JSON to stats_dir
        (remotemedia-stats-MANIFEST-TIME.json) and notify the path; a warning when no run has
        started, an error notification when the file cannot be written."""
        report = self.current_report()
        if report is None:
            self.notify("nothing to save yet: no run has started", severity="warning")
            return
        try:
            self.stats_dir.mkdir(parents=True, exist_ok=True)
            path = self._stats_path()
            write_output(path, "stats", strictjson.dumps(report, indent=2) + "\n")
        except (OSError, RemoteMediaError) as exc:
            self.notify(f"cannot save the stats: {exc}", severity="error", timeout=10,
                        markup=False)
            return
        self.last_saved = path.resolve()
        self.notify(f"stats saved to {self.last_saved}", title="saved", timeout=8, markup=False)

    def current_report(self) -> dict[str, Any] | None:
        """The stats report of the current (or last) run, with what ran and where."""
        runner = self.runner
        if runner is None or runner.session is None:
            return None
        report = dict(self._stats_override or runner.stats())
        report["state"] = runner.state
        report["manifest"] = str(self.manifest_path)
        report["input"] = self.input_spec
        report["output"] = self.output_spec
        report["bypass"] = self.bypass
        report["events"] = list(self.query_one(EventLog).entries)
        report["saved_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
        return report

    def _stats_path(self) -> Path:
        return self._fresh_path("stats", ".json")

    def _fresh_path(self, kind: str, suffix: str = "") -> Path:
        """stats_dir/remotemedia-KIND-MANIFEST-TIME[-N]SUFFIX, the first N that is not taken."""
        stem = self.manifest_path.stem if self.manifest_path else "session"
        base = f"remotemedia-{kind}-{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        path, n = self.stats_dir / f"{base}{suffix}", 1
        while path.exists():
            n += 1
            path = self.stats_dir / f"{base}-{n}{suffix}"
        return path

    def action_toggle_record(self) -> None:
        """`R`: start recording the running pipeline into a new directory beside the saved
        stats (remotemedia-recording-<manifest>-<time>/), or stop and finish it. The recorder
        never blocks the audio path (record.py); it records from the next block on, so a replay
        starts from there with the nodes' state fresh."""
        if self.recorder is not None:
            self._stop_recording()
            return
        runner = self.runner
        if runner is None or not self.active or runner.session is None:
            self.notify("nothing is running to record: start the pipeline first",
                        severity="warning")
            return
        if runner.source.runs_schedule:
            self.notify("callback mode pushes blocks in the audio callback: recording needs "
                        "queued mode", severity="warning", markup=False)
            return
        from ..engine.manifest import read_manifest_document
        from ..record import Recorder
        path = self._fresh_path("recording")
        try:
            document = read_manifest_document(self.manifest_path)[0] \
                if self.manifest_path else None
            recorder = Recorder(path, manifest_document=document).bind(runner)
            recorder.open()
        except (RemoteMediaError, OSError) as exc:
            self.notify(one_line(exc), title="cannot record", severity="error", timeout=10,
                        markup=False)
            return
        self.recorder = recorder
        runner.observers.join(recorder)   # told from the runner's next block on
        self.notify(f"recording to {path} (R stops)", title="recording", markup=False)

    def _stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        runner = recorder.runner
        recorder.stop()
        try:
            stats = runner.stats() if runner is not None and runner.session is not None \
                else None
            # close() waits for the block in flight (its outputs belong to the recording) so
            # the recorder leaves the run only after it
            summary = recorder.close(stats)
        except (RemoteMediaError, OSError) as exc:
            if runner is not None:
                runner.observers.leave(recorder)
            self.notify(one_line(exc), title="recording failed", severity="error", timeout=10,
                        markup=False)
            return
        if runner is not None:
            runner.observers.leave(recorder)
        self.last_recording = recorder.path
        self.notify(f"recorded {summary['blocks_recorded']} blocks to {recorder.path}",
                    title="recording", markup=False)
