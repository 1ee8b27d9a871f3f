"""`check_source` and `check_sink`: the conformance kit for source and sink authors, as trio
ships `check_one_way_stream` for stream authors.

    from remotemedia.testing import check_sink, check_source
    def test_my_ends(tmp_path):
        check_source(lambda: ToneSource(fmt, 440.0))
        check_sink(lambda: LevelsSink(fmt, tmp_path / "x.levels"))

Each takes a factory that makes a fresh, unopened end (a SPEC string works too, made with the
`fmt` given), drives a few through their life as the runner would (io/base.py says who calls
what), and fails with every broken rule listed. Rules for a source:

- format: `format` is an AudioFormat with a positive sample rate, channel count and block size
- description: a non-empty string for status lines
- lifecycle: close() is safe before open() and twice after; interrupt() before open() and
  after close(); the end works as a context manager
- blocks: read() gives an ndarray of a numeric dtype shaped (n,) for mono or (n, channels),
  0 < n <= block_size
- continuity: only the last block is shorter than block_size (pts, counted from block lengths,
  stay continuous)
- handed_over: no block shares memory with the one before it (the engine may write a block
  it was handed in place)
- end_of_input: a source that is not `endless` returns None within `max_blocks` and again
  after that; an `endless` one does not
- errors: what the source raises, here or after close(), is a RemoteMediaError (one line,
  the CLI's exit codes), never a foreign exception
- paths, report: reads() is a list of (what, path) pairs; extend_report() takes a report

and for a sink: format, description, lifecycle, paths and report as above, and

- untouched: nothing writes() lists exists after construction (nothing is opened for writing
  before everything that can refuse has been checked; give it paths that do not exist yet)
- writes: blocks of the format (a tone, a short last block, one with NaN, +-Inf and samples
  beyond full scale) are taken without error
- repair: repair_report() gives int `non_finite` and `clipped`; with `read_back`, the three
  non-finite samples are counted
- kept: with `read_back` (a function returning what the sink wrote, as float samples shaped
  (samples,) or (samples, channels)), every sample written reads back after close(), NaN as
  0, +-Inf as +-1.0, over-range clipped where the sink `clips_to_full_scale`, within `atol`
- errors: a frame of another channel count and a write after close() raise nothing but
  RemoteMediaError (or are taken)
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ..engine.data import NumpyData
from ..engine.errors import RemoteMediaError, one_line
from ..engine.manifest import DEFAULT_AUDIO
from ..engine.node import AudioFormat
from .conformance import ConformanceReport

SOURCE_RULES = ("format", "description", "lifecycle", "blocks", "continuity", "handed_over",
                "end_of_input", "errors", "paths", "report")
SINK_RULES = ("format", "description", "lifecycle", "untouched", "writes", "repair", "kept",
              "errors", "paths", "report")
DEFAULT_FORMAT = DEFAULT_AUDIO


class _Rules:
    """Collects the first failure of each rule; a foreign exception is an `errors` failure."""

    def __init__(self, name: str, rules: tuple[str, ...]):
        self.report = ConformanceReport(name)
        self.rules = rules
        self.problems: dict[str, str] = {}

    def fail(self, rule: str, message: str) -> None:
        self.problems.setdefault(rule, message)

    def attempt(self, rule: str, what: str, call: Callable, *args, refusal_ok: bool = False):
        """(call(*args), None), or (None, the exception) when it raised: a RemoteMediaError
        fails `rule` (unless `refusal_ok`: a refusal is the right answer there), any other
        kind fails `errors`."""
        try:
            return call(*args), None
        except RemoteMediaError as exc:
            if not refusal_ok:
                self.fail(rule, f"{what} raised {type(exc).__name__}: {one_line(exc)}")
            return None, exc
        except Exception as exc:  # noqa: BLE001 (reported as a broken rule)
            self.fail("errors", f"{what} raised {type(exc).__name__} (not a "
                                f"RemoteMediaError): {one_line(exc)}")
            return None, exc

    def finish(self, raise_on_failure: bool) -> ConformanceReport:
        report = self.report
        report.failures = [f"{rule}: {self.problems[rule]}" for rule in self.rules
                           if rule in self.problems]
        report.passed = [rule for rule in self.rules if rule not in self.problems]
        if report.failures and raise_on_failure:
            raise AssertionError(f"{report.node_type} breaks {len(report.failures)} rule(s):\n  "
                                 + "\n  ".join(report.failures))
        return report


def _session(fmt: AudioFormat):
    """A session of one PassThrough at `fmt`, for the ends to attach() to before open(), as
    the runner attaches its own (where a device counts its io copies and xruns)."""
    from ..engine.session import Pipeline
    from .manifests import chain
    audio = {"sample_rate": fmt.sample_rate, "channels": fmt.channels,
             "block_size": fmt.block_size}
    return Pipeline.from_manifest(chain("PassThrough", audio=audio)).session()


def _factory(make, fmt: AudioFormat, kind: str) -> Callable:
    if not isinstance(make, str):
        return make
    from ..io.spec import make_sink, make_source
    spec = make
    return (lambda: make_source(spec, fmt)) if kind == "source" else (lambda: make_sink(spec, fmt))


def _check_common(rules: _Rules, end, kind: str) -> None:
    fmt = getattr(end, "format", None)
    if not isinstance(fmt, AudioFormat) or not all(
            isinstance(v, int) and v > 0 for v in (fmt.sample_rate, fmt.channels,
                                                   fmt.block_size)):
        rules.fail("format", f"format is {fmt!r}, not an AudioFormat with a positive sample "
                             f"rate, channel count and block size")
    if not isinstance(getattr(end, "description", None), str) or not end.description:
        rules.fail("description", "description is empty or not a string")
    listed = (end.reads if kind == "source" else end.writes)()
    if not isinstance(listed, list) or not all(isinstance(p, tuple) and len(p) == 2
                                               and isinstance(p[0], str) for p in listed):
        rules.fail("paths", f"{'reads' if kind == 'source' else 'writes'}() gave {listed!r}, "
                            f"not a list of (what, path) pairs")
    rules.attempt("lifecycle", "interrupt() before open()", end.interrupt)
    rules.attempt("lifecycle", "close() before open()", end.close)


def _close_twice(rules: _Rules, end, after: tuple) -> None:
    # close twice, then the end's own call once more (refusing is right), then interrupt()
    for n in ("close()", "a second close()"):
        rules.attempt("lifecycle", n, end.close)
    what, call, *args = after
    rules.attempt("errors", what, call, *args, refusal_ok=True)
    rules.attempt("lifecycle", "interrupt() after close()", end.interrupt)


def check_source(make: Callable[[], object] | str, *, fmt: AudioFormat = DEFAULT_FORMAT,
                 blocks: int = 20, max_blocks: int = 100_000,
                 raise_on_failure: bool = True) -> ConformanceReport:
    """Check the rules above on sources `make()` builds (a SPEC string: made with `fmt`).
    An endless source is read for `blocks` blocks, a `clocked` one (a device) is limited to
    `blocks` with limit_frames() as a run with a duration is, and any other to its end, at
    most `max_blocks`. Returns the ConformanceReport; raises AssertionError listing every broken
    rule unless `raise_on_failure` is False. Building the source may raise as it does."""
    make = _factory(make, fmt, "source")
    first = make()
    rules = _Rules(getattr(first, "description", "") or type(first).__name__, SOURCE_RULES)
    _check_common(rules, first, "source")
    if "format" in rules.problems:
        return rules.finish(raise_on_failure)
    fmt = first.format
    with _session(fmt) as session:
        _read_source(rules, make, session, blocks, max_blocks)
    return rules.finish(raise_on_failure)


def _read_source(rules: _Rules, make: Callable, session, blocks: int, max_blocks: int) -> None:
    source = make()
    fmt = source.format
    rules.attempt("lifecycle", "attach()", source.attach, session)
    _, failed = rules.attempt("lifecycle", "open()", source.open)
    got: list[int] = []                   # each block's length in samples
    prev = None
    ended = False
    if failed is None:
        # as a run with a duration: a source on a hardware clock (a device) captures exactly
        # `blocks` and then ends, so the check does not wait on it for max_blocks
        limit = blocks if source.endless or source.clocked else max_blocks
        rules.attempt("lifecycle", "limit_frames()", source.limit_frames, limit)
        for _ in range(limit + 1):
            block, failed = rules.attempt("blocks", "read()", source.read)
            if failed is not None:
                break
            if block is None:
                ended = True
                break
            if not _block_ok(rules, block, fmt):
                break
            if prev is not None and np.shares_memory(prev, block):
                rules.fail("handed_over", f"blocks {len(got) - 1} and {len(got)} share memory "
                                          f"(hand each block over: the engine may write it in "
                                          f"place)")
            got.append(block.shape[0])
            prev = block
        if ended:
            again, _ = rules.attempt("end_of_input", "read() after the end", source.read)
            if again is not None:
                rules.fail("end_of_input", "read() gave a block again after returning None")
        if failed is None:
            if source.endless and ended:
                rules.fail("end_of_input", f"declares endless but ended after {len(got)} "
                                           f"blocks")
            elif not source.endless and not ended:
                rules.fail("end_of_input", f"not endless, but still reading after "
                                           f"{max_blocks} blocks (return None at the end)")
    for i, length in enumerate(got[:-1]):
        if length != fmt.block_size:
            rules.fail("continuity", f"block {i} has {length} samples, not {fmt.block_size}, "
                                     f"and is not the last")
            break
    rules.attempt("report", "extend_report()", source.extend_report, {})
    _close_twice(rules, source, ("read() after close()", source.read))
    if got:
        rules.attempt("lifecycle", "a `with` block", _read_within_with, make(), session, rules)


def _read_within_with(source, session, rules: _Rules) -> None:
    # the context manager opens (a read works inside) and closes (a second close is safe)
    source.attach(session)
    with source:
        if source.read() is None:
            rules.fail("lifecycle", "inside `with`, read() gave None where open() and read() "
                                    "gave a block")
    source.close()


def _block_ok(rules: _Rules, block, fmt: AudioFormat) -> bool:
    if not isinstance(block, np.ndarray):
        rules.fail("blocks", f"read() gave {type(block).__name__}, not an ndarray")
        return False
    want = "(n,)" if fmt.channels == 1 else f"(n, {fmt.channels})"
    shaped = (block.ndim == 1 and fmt.channels == 1) or (
        block.ndim == 2 and block.shape[1] == fmt.channels)
    if not shaped or not 0 < block.shape[0] <= fmt.block_size or block.dtype.kind not in "fiu":
        rules.fail("blocks", f"read() gave {block.dtype} {block.shape}, not a numeric {want} "
                             f"block with 0 < n <= {fmt.block_size}")
        return False
    return True


def check_sink(make: Callable[[], object] | str, *, fmt: AudioFormat = DEFAULT_FORMAT,
               blocks: int = 10, read_back: Callable[[], np.ndarray] | None = None,
               atol: float = 1e-6, raise_on_failure: bool = True) -> ConformanceReport:
    """Check the rules above on sinks `make()` builds (a SPEC string: made with `fmt`), each
    given `blocks` blocks of a tone, a short block and a damaged block. `read_back()` returns
    what the last sink made wrote (float samples, (samples,) or (samples, channels)); without
    it the `kept` rule and the repair counts are not checked. Returns the ConformanceReport;
    raises AssertionError listing every broken rule unless `raise_on_failure` is False."""
    make = _factory(make, fmt, "sink")
    first = make()
    rules = _Rules(getattr(first, "description", "") or type(first).__name__, SINK_RULES)
    listed = first.writes()
    pairs = listed if isinstance(listed, list) and all(
        isinstance(p, tuple) and len(p) == 2 for p in listed) else []   # else: `paths` fails
    made = [str(p) for _, p in pairs if os.path.lexists(p)]
    if made:
        rules.fail("untouched", f"constructing the sink created {', '.join(made)} (open "
                                f"files in open(), after every check)")
    _check_common(rules, first, "sink")
    if "format" in rules.problems:
        return rules.finish(raise_on_failure)
    fmt = first.format
    frames, expected = _sink_frames(fmt, blocks, getattr(first, "clips_to_full_scale", False))
    with _session(fmt) as session:
        failed = _write_sink(rules, make, session, frames, read_back is not None)
    if read_back is not None and failed is None:
        _check_kept(rules, read_back, expected, atol)
    return rules.finish(raise_on_failure)


def _write_sink(rules: _Rules, make: Callable, session, frames: list, count_repairs: bool):
    """Drive one sink through its life; the exception that stopped its writes, else None.
    `count_repairs`: the sink keeps samples (check_sink has `read_back`), so it must have
    counted the three non-finite ones."""
    sink = make()
    fmt = sink.format
    rules.attempt("lifecycle", "attach()", sink.attach, session)
    _, failed = rules.attempt("lifecycle", "open()", sink.open)
    if failed is None:
        for frame in frames:
            _, failed = rules.attempt("writes", f"write() of {frame.array.shape}", sink.write,
                                      frame)
            if failed is not None:
                break
        report = sink.repair_report()
        if not (isinstance(report, dict) and all(isinstance(report.get(k), int)
                                                 for k in ("non_finite", "clipped"))):
            rules.fail("repair", f"repair_report() gave {report!r}, not int non_finite and "
                                 f"clipped")
        elif count_repairs and failed is None and report["non_finite"] != 3:
            rules.fail("repair", f"wrote NaN, +Inf and -Inf but repair_report() counts "
                                 f"{report['non_finite']} non-finite samples (call "
                                 f"self.repair())")
        rules.attempt("report", "extend_report()", sink.extend_report, {})
        other = fmt.channels + 1
        wrong = NumpyData(np.zeros((fmt.block_size, other), np.float32),
                          sample_rate=fmt.sample_rate, pts=0, seq=0)
        rules.attempt("errors", f"write() of a {other}-channel frame", sink.write, wrong,
                      refusal_ok=True)
    _close_twice(rules, sink, ("write() after close()", sink.write, frames[0]))
    return failed


def _sink_frames(fmt: AudioFormat, blocks: int, clips: bool) -> tuple[list, np.ndarray]:
    n = fmt.block_size
    t = np.arange(blocks * n + n // 2) / fmt.sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    signal = tone if fmt.channels == 1 else np.repeat(tone[:, None], fmt.channels, axis=1)
    damaged = np.full_like(signal[:n], 0.25)
    damaged.flat[1], damaged.flat[2], damaged.flat[3] = np.nan, np.inf, -np.inf
    damaged.flat[5] = 1.5
    arrays = [signal[i:i + n] for i in range(0, signal.shape[0], n)] + [damaged]
    frames, pts = [], 0
    for seq, array in enumerate(arrays):
        frames.append(NumpyData(array, sample_rate=fmt.sample_rate, pts=pts, seq=seq))
        pts += array.shape[0]
    fixed = np.nan_to_num(damaged, nan=0.0, posinf=1.0, neginf=-1.0)
    if clips:
        np.clip(fixed, -1.0, 1.0, out=fixed)
    return frames, np.concatenate([signal, fixed])


def _check_kept(rules: _Rules, read_back: Callable, expected: np.ndarray, atol: float) -> None:
    back, exc = rules.attempt("kept", "read_back()", read_back)
    if exc is not None:
        return
    back = np.asarray(back, dtype=np.float64)
    if back.ndim == 2 and back.shape[1] == 1 and expected.ndim == 1:
        back = back[:, 0]
    if back.shape != expected.shape:
        rules.fail("kept", f"reads back {back.shape[0] if back.ndim else 0} samples "
                           f"{back.shape}, {expected.shape[0]} were written {expected.shape}")
    elif not np.allclose(back, expected, rtol=0.0, atol=atol):
        worst = int(np.argmax(np.abs(back - expected).reshape(len(back), -1).max(axis=1)))
        rules.fail("kept", f"sample {worst} reads back as {back[worst]}, "
                           f"{expected[worst]} was written (atol {atol:g})")
