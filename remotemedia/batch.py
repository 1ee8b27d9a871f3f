"""Batch runs: one manifest over many recordings, on a local process pool or a Ray cluster.

    remotemedia batch --manifest M INPUTS... [--out DIR] [--workers N] [--ray [ADDRESS]]

Each input runs as `remotemedia stream --manifest M --input file:INPUT --output null` would, in
simulated time (as fast as the CPU allows), through `StreamRunner`. The driver (this process)
hands inputs to workers, at most `workers` at a time, and writes what comes back:

    OUT/reports/<key>.json    one input's report: status, reason, audio seconds, events by type,
                              alerts by type, the stats report (written last: its presence with
                              status "ok" marks the input done)
    OUT/events/<key>.jsonl    the input's non-audio outputs, one JSON object a line
    OUT/summary.json          the whole batch: counts, audio hours, alerts by type, failures

`<key>` is the file's stem and a hash of its absolute path, so two `take1.wav` in different
folders do not collide. Every file is written to a temporary name (created O_EXCL | O_NOFOLLOW
in OUT, which must belong to this user and not be writable by group or others) and renamed
into place, so a reader (or a resumed run) never sees half a file. All JSON is strict RFC 8259: a non-finite
number is written as null.

Inputs: audio files, directories (every audio file below, sorted), glob patterns (expanded here,
`**` included, so they work quoted), and list files (`@FILE`, or a name ending in .txt, .lst or
.list: one input a line, relative to the list's folder; blank lines and `#` comments skipped). A
pattern that matches nothing, an empty directory or an unreadable list file is bad usage (exit
2) before anything runs; a file that is missing, unreadable, not audio, or that makes a node
fail, is that input's failure with its one-line reason, and the batch goes on (exit 1 at the
end). A file at another sample rate or channel count than the manifest's is converted on the way
in (io/convert.py; its report's `converted` says how), or with --exact-format is that input's
failure.

Workers. The default is a local process pool (`spawn`, so no state leaks from the driver) of
`workers` processes, one input each at a time. With `--ray`, each input is a Ray task (one CPU
each, never retried: a task that dies is that input's failure) on the cluster at ADDRESS, or on
the cluster `ray.init()` finds (one started on this machine with `ray start`, else a new local
one). Inputs must be readable at the same path where the task runs (shared storage on a real
cluster); reports and events come back to the driver, which writes them under OUT.

Resume and stop. A rerun with the same OUT skips inputs whose report says "ok" and was made
from the same run: the same manifest (its canonical content, params included), the same input
(size, mtime and a SHA-256 of its content) and the same remotemedia version (the report's
`identity`). Those are counted in the summary as resumed; any other input runs again (failed
ones too), and the summary's `rerun` says, per input, why its earlier report was not reused.
Pool workers die with the driver however it dies (PR_SET_PDEATHSIG). SIGINT (Ctrl-C) or SIGTERM stops
cleanly: inputs still running are abandoned (their workers killed or their tasks cancelled),
what finished is kept, the summary is written with `"interrupted": true`, and the exit code is
130 (143 for SIGTERM).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from .engine import strictjson
from .batch_identity import _version, input_identity, manifest_digest, stale_reason
from .engine.errors import RemoteMediaError, UsageError, one_line
from .stop_signals import StopSignals

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".caf", ".w64",
                  ".rf64", ".mp3", ".opus")
LIST_SUFFIXES = (".txt", ".lst", ".list")
GLOB_CHARS = "*?["
READINGS = frozenset({"level"})   # event types that are measurements, not alerts
MAX_FAILURES_SHOWN = 20
PROGRESS_INTERVAL_S = 0.25        # redraw on a terminal
PROGRESS_LOG_INTERVAL_S = 5.0     # one line this often when stderr is not a terminal
POLL_S = 0.2                      # the longest the driver waits before checking for a signal


# -- inputs ----------------------------------------------------------------------------------------

def expand_inputs(items: list[str], lists: list[Path] | None = None) -> list[Path]:
    """Audio file paths from files, directories, globs and list files, in order, each once;
    the list files read are appended to `lists` when it is given.

    Raises UsageError (exit 2) for a pattern with no match, an empty directory, a list file that
    cannot be read, or no input at all. A plain path is kept even if it does not exist: that is
    the input's own failure, reported with the others."""
    out: list[Path] = []
    for item in items:
        out.extend(_expand_one(item, Path.cwd(), lists=lists))
    if not out:
        raise UsageError("batch: no inputs given")
    seen, unique = set(), []
    for path in out:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _expand_one(item: str, base: Path, depth: int = 0,
                lists: list[Path] | None = None) -> list[Path]:
    if depth > 8:
        raise UsageError(f"batch: list files nest too deeply at {item}")
    is_list = item.startswith("@")
    text = item[1:] if is_list else item
    path = Path(text) if Path(text).is_absolute() else base / text
    if is_list or (path.suffix.lower() in LIST_SUFFIXES and path.is_file()):
        from .engine.loader import read_text_file
        # bounded: `@/dev/zero` or a FIFO that never ends is refused, not read for ever
        lines = read_text_file(path, "batch", "list file ", shown=text).splitlines()
        if lists is not None:
            lists.append(path)
        found: list[Path] = []
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                found.extend(_expand_one(line, path.parent, depth + 1, lists))
        return found
    if any(c in text for c in GLOB_CHARS) and not path.exists():
        matches = sorted(glob.glob(str(path), recursive=True))
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise UsageError(f"batch: input pattern '{text}' matches no file")
        return files
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise UsageError(f"batch: directory {text} holds no audio file "
                             f"({', '.join(AUDIO_SUFFIXES[:4])}, ...)")
        return files
    return [path]


def input_key(path: Path) -> str:
    """The name of an input's files under OUT: its stem and a hash of its absolute path."""
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem)[:60]
    return f"{stem}-{digest}"


# -- one input (runs in a worker) ----------------------------------------------------------------

def run_one(doc: dict, source_name: str, input_path: str, allow_import: tuple = (),
            exact_format: bool = False) -> dict:
    """Run the manifest over one file in simulated time; never raises for the input's faults.
    A file at another rate or channel count than the manifest's is converted on the way in
    (the report's `converted` says how) unless `exact_format`, which makes it a failure.

    Returns {"report": dict, "events": str (JSON lines)}. The report's `status` is "ok" or
    "failed" with a one-line `reason`; whatever ran before a failure (events, stats) is kept."""
    from .io.events import event_record
    from .engine.manifest import validate_manifest
    from .engine.session import Pipeline
    from .io.files import WavSource
    from .io.virtual import NullSink
    from .runner import StreamRunner

    started = time.perf_counter()
    events: list[str] = []
    by_type: dict[str, int] = {}

    def on_event(data) -> None:
        record = event_record(data)
        kind = str(record.get("type", data.kind))
        by_type[kind] = by_type.get(kind, 0) + 1
        events.append(strict_json(record))

    report = {"input": os.path.abspath(input_path), "status": "ok", "reason": None,
              "audio_s": 0.0, "sample_rate": None, "channels": None}
    runner = source = None
    try:
        # The file first (opened once: it may be a FIFO), so that its own format takes its
        # place in the precedence (engine/precedence.py) before the manifest is validated.
        source = WavSource(input_path)
        pipeline = Pipeline(validate_manifest(doc, source=source_name,
                                              allow_import=allow_import,
                                              input_format={"sample_rate": source.samplerate,
                                                            "channels": source.channels}))
        manifest = pipeline.manifest
        source.conform(manifest.audio, exact=exact_format)
        report["converted"] = source.conversion
        report.update(audio_s=source.frames / source.samplerate,
                      sample_rate=source.samplerate, channels=source.channels)
        # what a resume compares: the run's manifest, input (as read now) and version
        report["identity"] = {"manifest": manifest_digest(doc), "input":
                              input_identity(input_path), "remotemedia": _version()}
        sink = NullSink(manifest.output_format)
        runner = StreamRunner(pipeline, source, sink, realtime=False, on_event=on_event)
        runner.run()
        # what was read, not what the header promised (a cut file, a pipe that does not say)
        report["audio_s"] = source.read_frames / source.samplerate
        if source.shortfall:
            report["warning"] = source.shortfall
    except RemoteMediaError as exc:
        report.update(status="failed", reason=one_line(str(exc)))
    except Exception as exc:   # a node's bug: this input's failure, not the batch's
        report.update(status="failed", reason=f"{type(exc).__name__}: {one_line(str(exc))}")
    if source is not None:
        source.close()      # safe twice; opened early for a FIFO, and refused before a run
    stats = runner.stats() if runner is not None and runner.session is not None else None
    report["events"] = sum(by_type.values())
    report["events_by_type"] = dict(sorted(by_type.items()))
    report["alerts"] = {k: v for k, v in report["events_by_type"].items() if k not in READINGS}
    report["wall_s"] = round(time.perf_counter() - started, 6)
    report["stats"] = stats
    return {"report": report, "events": "".join(line + "\n" for line in events)}


def strict_json(value) -> str:
    """JSON text with no NaN or Infinity token (RFC 8259; engine/strictjson.py)."""
    return strictjson.dumps(value, default=_default)


def _default(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _init_worker(driver_pid: int) -> None:
    """A pool worker's first act: ignore Ctrl-C (it reaches the whole process group; the driver
    decides what stops, and how) and die with the driver: the kernel sends SIGKILL to this
    process when the driver dies, however it dies (PR_SET_PDEATHSIG), so a killed batch leaves
    no worker behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if os.getppid() != driver_pid:   # the driver died before the line above took effect
        os._exit(1)


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies (prctl
    PR_SET_PDEATHSIG); False where there is no prctl (not Linux)."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False
    return prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


_PR_SET_PDEATHSIG = 1   # linux/prctl.h


# -- writing ---------------------------------------------------------------------------------------

def write_atomic(folder, name: str, text: str) -> None:
    """Write `text` to a fresh temporary file in `folder` (a SafeDir: made or checked by this
    run, the file created O_EXCL | O_NOFOLLOW), flush it to disk, rename it over `name`."""
    folder.write_atomic(name, text)


def _remove_stale(folder) -> None:
    """Remove what a killed run left half-written (.NAME.PID.tmp) in `folder` (a SafeDir)."""
    for name in os.listdir(folder.fd):
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                os.unlink(name, dir_fd=folder.fd)
            except (FileNotFoundError, IsADirectoryError, PermissionError):
                pass


@dataclass
class InputState:
    """One input file of a batch run, on the driver: its path and report key, its duration in
    seconds from the header (0.0 if unreadable; for the time left), its report once done,
    whether it was resumed from an earlier run's report, and `alone` when it was lost with a
    broken worker pool and must run again with nothing beside it."""

    path: Path
    key: str
    expected_s: float = 0.0          # from the header, for the time left; 0 if unreadable
    report: dict | None = None
    resumed: bool = False
    alone: bool = False              # lost with a broken pool: run again with nothing beside it
    rerun: str | None = None         # why an earlier "ok" report was not reused


@dataclass
class BatchResult:
    """What `run_batch` returns; `summary` is what OUT/summary.json holds."""

    summary: dict
    exit_code: int
    inputs: list[InputState] = field(default_factory=list)


class _Progress:
    """The progress line on stderr: inputs done, audio hours per wall hour, time left."""

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self.last = 0.0

    def update(self, make_line: Callable[[], str], final: bool = False) -> None:
        """Show `make_line()` if a line is due (it is only built then)."""
        if self.stream is None:
            return
        now = time.monotonic()
        interval = PROGRESS_INTERVAL_S if self.tty else PROGRESS_LOG_INTERVAL_S
        if not final and now - self.last < interval:
            return
        self.last = now
        line = make_line()
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# -- the driver ------------------------------------------------------------------------------------

class _PoolBackend:
    """Inputs on a local process pool; a pool broken by a dying worker is replaced."""

    name = "pool"

    def __init__(self, workers: int):
        import multiprocessing
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self._context,
                                   initializer=_init_worker, initargs=(os.getpid(),))

    def submit(self, args: tuple):
        try:
            return self._pool.submit(run_one, *args)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(run_one, *args)

    def wait(self, handles: list, timeout: float) -> list:
        done, _ = wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def result(self, handle) -> dict:
        """The worker's answer; raises _Lost for a worker that died (run again alone)."""
        try:
            return handle.result()
        except BrokenProcessPool as exc:
            raise _Lost(f"its worker process died ({exc})", retry=True) from None

    def cancel(self, handles: list) -> None:
        processes = list(getattr(self._pool, "_processes", {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:   # running inputs are abandoned: stop their workers now
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _RayBackend:
    """Inputs as Ray tasks: one CPU each, never retried (a task that dies fails its input)."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None):
        from .ray.cluster import ClusterError, connect
        try:
            self.ray = ray = connect(address)
        except ClusterError as exc:
            raise RemoteMediaError(f"batch: {exc}") from None
        self._task = ray.remote(num_cpus=1, max_retries=0)(run_one)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(cpus, 1)

    def submit(self, args: tuple):
        return self._task.remote(*args)

    def wait(self, handles: list, timeout: float) -> list:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if not ready:
            return []
        more, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        return more

    def result(self, handle) -> dict:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayError as exc:
            from .ray.cluster import describe
            raise _Lost(f"its Ray task failed: {describe(exc)}", retry=False) from None

    def cancel(self, handles: list) -> None:
        for handle in handles:
            try:
                self.ray.cancel(handle, force=True)
            except Exception:   # already finished, or the task is gone with its worker
                pass

    def close(self) -> None:
        pass   # the Ray connection is the process's; it closes at exit


class _Lost(Exception):
    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


def run_batch(manifest: str, inputs: list[str], out: str | os.PathLike, *,
              workers: int | None = None, ray_address: str | None = None,
              use_ray: bool = False, allow_import: tuple = (),
              exact_format: bool = False, progress: TextIO | None = sys.stderr,
              on_result: Callable[[InputState], None] | None = None) -> BatchResult:
    """Run `manifest` over every input; write reports, events and the summary under `out`.

    Raises ManifestError/UsageError (exit 2) before anything runs for a bad manifest, inputs
    that expand to nothing, or an OUT that cannot be made; RemoteMediaError when no Ray cluster
    can be reached. Per-input faults never raise: they are in the summary. The result's
    `exit_code` is 0 (all ok), 1 (some input failed) or 130/143 (stopped by SIGINT/SIGTERM)."""
    from .engine.manifest import read_manifest_document, validate_manifest

    doc, source_name = read_manifest_document(manifest)
    checked = validate_manifest(doc, source=source_name, allow_import=allow_import)
    lists: list[Path] = []
    paths = expand_inputs(inputs, lists)
    out = Path(out)
    from .io.samefile import check_paths, manifest_reads
    # never over what the batch reads (`-m out/summary.json`, an input kept under OUT)
    check_paths(reads=manifest_reads(manifest, allow_import) + [("list file", p) for p in lists]
                + [("input", p) for p in paths],
                writes=[("batch: --out", out / "summary.json")]
                + [("batch: --out", out / sub / f"{input_key(p)}{ext}") for p in paths
                   for sub, ext in (("reports", ".json"), ("events", ".jsonl"))])
    from .io.safefile import SafeDir, check_dir
    check_dir(out, "batch: --out")   # refuse before anything starts or is made
    if use_ray:
        backend = _RayBackend(ray_address, workers)
    else:
        backend = _PoolBackend(workers or os.cpu_count() or 1)
    try:
        out_dir = SafeDir.make(out, "batch: --out")
        reports_dir = out_dir.subdir("reports", "batch: --out")
        events_dir = out_dir.subdir("events", "batch: --out")
    except BaseException:
        backend.close()
        raise
    for folder in (out_dir, reports_dir, events_dir):
        _remove_stale(folder)   # half-written by a run that was killed

    digest = manifest_digest(doc)
    states = [InputState(p, input_key(p)) for p in paths]
    pending: list[InputState] = []
    for state in states:
        previous = _read_report(out / "reports" / f"{state.key}.json")
        if previous is not None and previous.get("status") == "ok":
            state.rerun = stale_reason(previous, state.path, digest)
            if state.rerun is None:
                state.report, state.resumed = previous, True
                continue
        state.expected_s = _header_seconds(state.path)
        pending.append(state)

    stop = StopSignals()
    bar = _Progress(progress)
    started = time.perf_counter()
    done_audio_s = 0.0
    resumed = sum(s.resumed for s in states)
    finished = resumed
    remaining_s = sum(s.expected_s for s in pending)
    queue = list(reversed(pending))
    running: dict = {}

    resumed_audio_s = sum(s.report.get("audio_s") or 0.0 for s in states if s.resumed)
    failed = 0

    def progress_line() -> str:
        wall = time.perf_counter() - started
        rate = done_audio_s / wall if wall > 0 else 0.0   # audio s per wall s = h per h
        left = _hms(remaining_s / rate) if rate > 0 else "?"
        audio_h = (done_audio_s + resumed_audio_s) / 3600
        return (f"batch: {finished}/{len(states)} inputs ({failed} failed), {audio_h:.3f} audio "
                f"h, {rate:.0f} audio h per wall h, {left} left")

    stop.install()
    interrupted = False
    try:
        while queue or running:
            if stop.received is not None:
                interrupted = True
                break
            # A worker that dies breaks the whole pool and every input running in it. Those
            # inputs run again one at a time, so the one that kills its worker is found and the
            # others finish.
            while queue and len(running) < backend.workers:
                if queue[-1].alone and running:
                    break
                state = queue.pop()
                running[backend.submit((doc, source_name, str(state.path),
                                        tuple(allow_import), exact_format))] = state
                if state.alone:
                    break
            for handle in backend.wait(list(running), POLL_S):
                state = running.pop(handle)
                try:
                    answer = backend.result(handle)
                except _Lost as lost:
                    if lost.retry and not state.alone:
                        state.alone = True
                        queue.append(state)
                        continue
                    answer = {"report": {"input": os.path.abspath(state.path),
                                         "status": "failed", "reason": lost.reason,
                                         "audio_s": 0.0, "events": 0, "events_by_type": {},
                                         "alerts": {}, "stats": None},
                              "events": ""}
                report = answer["report"]
                report["key"] = state.key
                report["events_file"] = f"events/{state.key}.jsonl"
                write_atomic(events_dir, f"{state.key}.jsonl", answer["events"])
                write_atomic(reports_dir, f"{state.key}.json", strict_json(report) + "\n")
                state.report = report
                finished += 1
                failed += report["status"] != "ok"
                done_audio_s += report.get("audio_s") or 0.0
                remaining_s = max(remaining_s - state.expected_s, 0.0)
                if on_result is not None:
                    on_result(state)
            bar.update(progress_line)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.restore()
        if running:
            backend.cancel(list(running))
        backend.close()
    bar.update(progress_line, final=True)
    wall = time.perf_counter() - started
    if interrupted and stop.received is None:
        stop.received = signal.SIGINT
    summary = _summarize(checked.name, states, backend.name, wall, done_audio_s, interrupted,
                         out)
    write_atomic(out_dir, "summary.json", strict_json(summary) + "\n")
    for folder in (events_dir, reports_dir, out_dir):
        folder.close()
    if interrupted:
        code = 143 if stop.received == signal.SIGTERM else 130
    else:
        code = 1 if summary["failed"] else 0
    return BatchResult(summary, code, states)


def _read_report(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _header_seconds(path: Path) -> float:
    if not path.is_file():
        return 0.0      # a FIFO has one reader, the worker: its header is not read here
    try:
        import soundfile as sf
        info = sf.info(str(path))
        return info.frames / info.samplerate
    except Exception:   # unreadable: the worker reports why; here it only weighs nothing
        return 0.0


def _summarize(name: str, states: list[InputState], backend: str, wall: float,
               done_audio_s: float, interrupted: bool, out: Path) -> dict:
    done = [s for s in states if s.report is not None]
    ok = [s for s in done if s.report["status"] == "ok"]
    failed = [s for s in done if s.report["status"] != "ok"]
    alerts: dict[str, dict] = {}
    for s in ok + failed:
        for kind, count in (s.report.get("alerts") or {}).items():
            entry = alerts.setdefault(kind, {"count": 0, "inputs": 0})
            entry["count"] += count
            entry["inputs"] += 1
    audio_s = sum(s.report.get("audio_s") or 0.0 for s in done)
    return {
        "manifest": name,
        "executor": backend,
        "out": str(out),
        "inputs": len(states),
        "ok": len(ok),
        "failed": len(failed),
        "resumed": sum(s.resumed for s in states),
        "not_run": len(states) - len(done),
        "interrupted": interrupted,
        "audio_s": round(audio_s, 6),
        "audio_hours": round(audio_s / 3600, 6),
        "wall_s": round(wall, 6),
        # this run's work only: resumed inputs took no time now
        "audio_hours_per_wall_hour": round(done_audio_s / wall, 3) if wall > 0 else 0.0,
        "alerts": dict(sorted(alerts.items())),
        "failures": [{"input": str(s.path), "key": s.key, "reason": s.report.get("reason")}
                     for s in failed],
        # inputs converted to the manifest's rate/channels on the way in
        "converted": sum(bool(s.report.get("converted")) for s in done),
        # earlier "ok" reports not reused, and why (the manifest, the input or remotemedia
        # changed since)
        "rerun": [{"input": str(s.path), "key": s.key, "reason": s.rerun}
                  for s in states if s.rerun is not None],
    }


def _list_inputs(lines: list[str], title: str, entries: list[dict], out) -> None:
    """Append `title` and the first MAX_FAILURES_SHOWN entries ({"input", "reason"}) to
    `lines`, then how many more summary.json under `out` holds; nothing when `entries` is
    empty."""
    if not entries:
        return
    lines.append(title)
    for entry in entries[:MAX_FAILURES_SHOWN]:
        lines.append(f"  {entry['input']}: {entry['reason']}")
    if len(entries) > MAX_FAILURES_SHOWN:
        lines.append(f"  ... and {len(entries) - MAX_FAILURES_SHOWN} more "
                     f"(see {out}/summary.json)")

def format_summary(summary: dict) -> str:
    """The summary table for people (stderr)."""
    lines = [
        f"{'inputs':>7} {'ok':>6} {'failed':>6} {'resumed':>7} {'not run':>7} {'audio h':>9} "
        f"{'wall s':>8} {'audio h/wall h':>14}",
        f"{summary['inputs']:>7} {summary['ok']:>6} {summary['failed']:>6} "
        f"{summary['resumed']:>7} {summary['not_run']:>7} {summary['audio_hours']:>9.3f} "
        f"{summary['wall_s']:>8.2f} {summary['audio_hours_per_wall_hour']:>14.0f}",
    ]
    if summary["alerts"]:
        lines.append(f"{'alert':<24} {'count':>7} {'inputs':>7}")
        for kind, entry in summary["alerts"].items():
            lines.append(f"{kind:<24} {entry['count']:>7} {entry['inputs']:>7}")
    else:
        lines.append("alerts: none")
    _list_inputs(lines, "run again (their earlier reports no longer match):",
                 summary.get("rerun") or [], summary["out"])
    _list_inputs(lines, "failures:", summary["failures"], summary["out"])
    if summary.get("converted"):
        lines.append(f"converted on the way in: {summary['converted']} input(s) at another "
                     f"rate or channel count than the manifest's (each report's `converted` "
                     f"says how; --exact-format refuses them instead)")
    if summary["interrupted"]:
        lines.append(f"interrupted: {summary['not_run']} input(s) not run; run the same command "
                     f"again to resume")
    return "\n".join(lines)
