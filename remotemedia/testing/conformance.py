"""`check_node`: the conformance kit a node author runs, as trio ships stream conformance checks.

    from remotemedia.testing import check_node
    def test_my_node():
        check_node(MyNode, {"db": -3})

It runs the node alone in a session (input -> node -> output) on a 440 Hz tone in blocks that
carry pts, seq and metadata, then a block with NaN and Inf, then flush, reset and
end_of_stream, twice over to check determinism, and fails with every broken rule listed:

- outputs: process() and on_control() return None, a RuntimeData, or an iterable of them;
- memory: the caller's blocks are never written (a writer calls frame.writable()); an output
  whose samples equal its input's is a view of it, not a copy (a passing node copies nothing);
- readers: when a push returns, the engine's reader count of the pushed block equals the
  outputs still viewing it, unless the node declares `retains_input`;
- timing: audio outputs carry pts, non-decreasing, and metadata passes through;
- events: Json outputs serialize as strict RFC 8259 JSON;
- stream events: flush, reset and end_of_stream are handled without error, and nothing is
  left to release after end_of_stream;
- non-finite input: after a block with NaN and Inf and then clean audio, no float or float
  array the node holds is NaN or Inf;
- determinism: the same input gives the same outputs;
- linear: a node that declares `linear_elementwise` qualifies for it (one input, keeps
  nothing, requires float dtypes), its linear_gain() is a finite float, and its own process()
  gives the input times linear_gain() (the engine runs such a node as that multiply and never
  calls process(), so a node that says it is linear and is not would be silently wrong).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import strictjson
from ..engine.data import ControlData, NumpyData, RuntimeData
from ..engine.kernels import as_gain
from ..engine.node import (DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE, AudioFormat, Node,
                           NodeContext)
from ..engine.session import Pipeline
from .manifests import one_node
from .registry import isolated_registry


@dataclass
class ConformanceReport:
    """Which rules the node kept (`passed`) and which it broke (`failures`, one line each)."""

    node_type: str
    passed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failures


def _tone(n_blocks: int, block: int, rate: int, channels: int, dtype) -> list[np.ndarray]:
    t = np.arange(n_blocks * block) / rate
    x = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    x = x if channels == 1 else np.repeat(x[:, None], channels, axis=1)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        from ..engine.levels import from_unit_float
        x = from_unit_float(x, dt)
    else:
        x = x.astype(dt)
    return [x[i * block:(i + 1) * block] for i in range(n_blocks)]


def holds_non_finite(value: Any) -> bool:
    """True when `value` (a float, a float ndarray, or a dict/list/tuple of them, nested) holds
    NaN or +-Inf: how check_node finds a node state poisoned by one bad block."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return not np.isfinite(value).all()
    if isinstance(value, dict):
        return any(holds_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_non_finite(v) for v in value)
    return False


def _fingerprint(outputs: list) -> list:
    out = []
    for o in outputs:
        if isinstance(o, NumpyData):
            out.append(("numpy", o.array.dtype.str, o.array.shape, o.array.tobytes(), o.pts))
        elif o.kind == "json":
            out.append(("json", json.dumps(strictjson.clean(o.value), sort_keys=True)))
        else:
            out.append((o.kind, repr(o)))
    return out


def _check_linear(node_class: type[Node], params: dict, block_size: int, rate: int,
                  channels: int) -> str | None:
    """The `linear` rule: what is wrong with a linear_elementwise declaration, or None. The
    node is built, bound and set up as a session would (mono and stereo: a gain treats every
    channel alike); its own process() must give the input times linear_gain() (NaN and Inf
    included), keep the input's timing and metadata, give the same samples for the same block
    twice (no state), and on_control() must release nothing."""
    if node_class.inputs != "one" or node_class.retains_input:
        return "declares linear_elementwise but takes several inputs or retains its input"
    dtypes = node_class.requires.dtypes() if node_class.requires is not None else None
    if not dtypes or any(d.kind != "f" for d in dtypes):
        return ("declares linear_elementwise but does not require a float dtype (set requires "
                "to InputRequirement(dtype='floating'))")
    for chans in sorted({channels, 2}):
        node = node_class("n", **params)
        node.bind(NodeContext("n", AudioFormat(rate, chans, block_size)))
        try:
            node.setup()
            problem = _linear_blocks(node, block_size, rate, chans)
            if problem is None:
                for event in ("flush", "end_of_stream"):
                    if node.on_control(ControlData(event)):
                        problem = (f"on_control({event}) releases frames: a linear node holds "
                                   f"nothing")
        except Exception as exc:           # noqa: BLE001 (reported, not raised)
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                node.teardown()
            except Exception:              # noqa: BLE001 (the first problem is the one to say)
                pass
        if problem:
            return problem if chans == channels else f"{problem} (in {chans} channels)"
    return None


def _linear_blocks(node: Node, block_size: int, rate: int, channels: int) -> str | None:
    for dtype in (np.float32, np.float64):
        blocks = _tone(4, block_size, rate, channels, dtype)
        bad = blocks[-1].copy()
        bad.flat[3 % bad.size] = np.nan
        bad.flat[7 % bad.size] = np.inf
        for i, block in enumerate([*blocks, bad]):
            try:
                gain = as_gain(node.linear_gain())
            except (TypeError, ValueError) as exc:
                return str(exc)
            meta = {"conformance": i}
            frame = NumpyData(block.copy(), sample_rate=rate, pts=i * block_size, seq=i,
                              metadata=meta, owned=True)
            out = node.process(frame)
            again = node.process(NumpyData(block.copy(), sample_rate=rate, pts=i * block_size,
                                           seq=i, metadata=meta, owned=True))
            if not isinstance(out, NumpyData) or out.shape != block.shape \
                    or out.dtype != block.dtype:
                return "process() does not return one block of the input's shape and dtype"
            if (out.pts, out.seq, dict(out.metadata)) != (frame.pts, frame.seq, meta):
                return "process() changes the block's pts, seq or metadata; the engine would not"
            want = block * np.array(gain, dtype=dtype)
            # one rounding of slack: a node may scale in another order than the engine
            if not np.allclose(out.array, want, rtol=4 * np.finfo(dtype).eps, atol=0,
                               equal_nan=True):
                with np.errstate(invalid="ignore"):
                    worst = float(np.nanmax(np.abs(out.array - want)))
                return (f"process() differs from the input x linear_gain() ({gain!r}) by up "
                        f"to {worst:.3g} on {np.dtype(dtype).name} blocks")
            if not isinstance(again, NumpyData) or \
                    again.array.tobytes() != out.array.tobytes():
                return ("process() gave other samples for the same block the second time: a "
                        "linear node keeps no state (the engine never calls its process())")
    return None


def check_node(node_class: type[Node], params: dict | None = None, *,
               sample_rate: int = DEFAULT_SAMPLE_RATE, channels: int = 1,
               block_size: int = DEFAULT_BLOCK_SIZE,
               blocks: int = 30, dtype: str = "float32", raise_on_failure: bool = True
               ) -> ConformanceReport:
    """Run the conformance checks above on `node_class` with `params`, in a stream of
    `blocks` blocks of `block_size` samples (`channels`, `dtype`) at `sample_rate`.
    Returns the ConformanceReport; raises AssertionError listing every failure unless
    `raise_on_failure` is False. A node that cannot be built with these params raises its
    ManifestError as it is."""
    params = dict(params or {})
    registry = isolated_registry()
    node_type = node_class.node_type or node_class.__name__
    registry.register(node_class, node_type)
    manifest = one_node(node_type, audio={"sample_rate": sample_rate, "block_size": block_size,
                                          "channels": channels}, **params)
    # The node's own logic, called directly: a node whose default is another executor (a
    # speech node's thread) is checked inline; check_executor checks the executors.
    manifest["nodes"][0]["executor"] = "inline"
    pipeline = Pipeline.from_manifest(manifest, registry=registry)
    report = ConformanceReport(node_type)
    fail = report.failures.append
    retains = bool(getattr(node_class, "retains_input", False))

    def run_once() -> tuple[list, dict]:
        outs: list = []
        problems: dict[str, str] = {}
        with pipeline.session() as s:
            node = s.node("n")
            try:
                for i, block in enumerate(_tone(blocks, block_size, sample_rate, channels, dtype)):
                    frame = NumpyData(block, sample_rate=sample_rate, pts=i * block_size, seq=i,
                                      metadata={"conformance": i})
                    before = block.copy()
                    got = s.push(frame)
                    if not np.array_equal(block, before, equal_nan=True):
                        problems.setdefault("memory", "wrote into the caller's block (a writer "
                                                      "must call frame.writable())")
                    # Each output viewing the pushed buffer is one reader (the caller's); any
                    # other count left over means a reader was never given back.
                    holders = sum(1 for o in got if isinstance(o, NumpyData)
                                  and o._ownership is frame._ownership)
                    if not retains and frame._ownership.readers != holders:
                        problems.setdefault("readers", f"reader count of a pushed block is "
                                                       f"{frame._ownership.readers} after the push "
                                                       f"returned ({holders} expected: one per "
                                                       f"output viewing it; declare retains_input "
                                                       f"if the node keeps frames)")
                    for o in got:
                        if not isinstance(o, RuntimeData):
                            problems.setdefault("outputs", f"an output is {type(o).__name__}, "
                                                           f"not RuntimeData")
                        if isinstance(o, NumpyData):
                            if o.array.shape == block.shape and o.array.dtype == block.dtype \
                                    and np.array_equal(o.array, block) \
                                    and not np.shares_memory(o.array, block):
                                problems.setdefault("memory", "passed samples on unchanged but "
                                                              "as a copy (hand on the same view)")
                            if "conformance" not in o.metadata:
                                problems.setdefault("metadata", "an audio output lost the input's "
                                                                "metadata")
                    outs += got
            except Exception as exc:       # noqa: BLE001 (reported, not raised)
                problems["outputs"] = f"on clean audio: {type(exc).__name__}: {exc}"
                return outs, problems
            # A broken block, then clean audio again.
            bad = _tone(1, block_size, sample_rate, channels, "float32")[0].copy()
            bad.flat[3 % bad.size] = np.nan
            bad.flat[7 % bad.size] = np.inf
            try:
                outs += s.push(NumpyData(bad, sample_rate=sample_rate,
                                         pts=blocks * block_size, seq=blocks))
                for i, block in enumerate(_tone(10, block_size, sample_rate, channels,
                                                "float32")):
                    n = blocks + 1 + i
                    outs += s.push(NumpyData(block, sample_rate=sample_rate,
                                             pts=n * block_size, seq=n))
            except Exception as exc:       # noqa: BLE001 (reported, not raised)
                problems["non_finite"] = f"a block with NaN/Inf raised {type(exc).__name__}: {exc}"
                return outs, problems
            poisoned = [k for k, v in vars(node).items() if holds_non_finite(v)]
            if poisoned:
                problems["non_finite"] = (f"NaN/Inf from one bad block stays in the node's "
                                          f"state: {', '.join(sorted(poisoned))}")
            for event in ("flush", "reset"):
                try:
                    outs += s.push(ControlData(event))
                except Exception as exc:   # noqa: BLE001 (reported, not raised)
                    problems["stream_events"] = f"{event}: {type(exc).__name__}: {exc}"
            try:
                outs += s.end_of_stream()
                again = s.end_of_stream()
                if any(isinstance(o, NumpyData) and o.array.size for o in again):
                    problems["stream_events"] = ("a second end_of_stream still released "
                                                 "audio: the first did not flush everything")
            except Exception as exc:       # noqa: BLE001
                problems["stream_events"] = f"end_of_stream: {type(exc).__name__}: {exc}"
        return outs, problems

    first, problems = run_once()
    second, _ = run_once()
    if getattr(node_class, "linear_elementwise", False):
        problem = _check_linear(node_class, params, block_size, sample_rate, channels)
        if problem:
            problems["linear"] = problem
    for name, message in problems.items():
        fail(f"{name}: {message}")
    pts = [o.pts for o in first if isinstance(o, NumpyData)]
    if any(p is None for p in pts):
        fail("timing: an audio output carries no pts")
    elif any(b < a for a, b in zip(pts, pts[1:])):
        fail("timing: audio pts go backwards")
    for o in first:
        if isinstance(o, RuntimeData) and o.kind == "json":
            try:
                json.loads(strictjson.dumps(o.value),
                           parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
            except (TypeError, ValueError) as exc:
                fail(f"events: a Json output is not strict JSON: {exc}")
                break
    if _fingerprint(first) != _fingerprint(second):
        fail("determinism: the same input gave different outputs")
    checks = ("outputs", "memory", "readers", "metadata", "timing", "events", "stream_events",
              "non_finite", "determinism") + (
        ("linear",) if getattr(node_class, "linear_elementwise", False) else ())
    broken = {f.split(":", 1)[0] for f in report.failures}
    report.passed = [c for c in checks if c not in broken]
    if report.failures and raise_on_failure:
        raise AssertionError(f"{node_type} breaks {len(report.failures)} rule(s):\n  "
                             + "\n  ".join(report.failures))
    return report
