"""The hot path comes from one template (engine/template.py): its preprocessor, the reader-count
edits living only there, every step on code objects of its own, and tracebacks that show the
generated lines."""

from __future__ import annotations

import ast
import traceback
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.errors import NodeError
from remotemedia.engine.template import TEMPLATE, _MACROS, expand
from remotemedia.testing import isolated_registry
from remotemedia.engine.node import Node

PKG = Path(__file__).resolve().parents[2] / "remotemedia"
MANIFESTS = PKG.parent / "manifests"


def test_the_preprocessor_keeps_the_branch_taken_only():
    text = "\n".join(["a", "#if A", "b", "#if missing_name", "c", "#endif", "#elif B", "d",
                      "#else", "e", "#endif", "f"])
    # a condition inside a branch not taken is never evaluated (missing_name is unknown)
    assert expand(text, {"A": False, "B": True}).split() == ["a", "d", "f"]
    assert expand(text, {"A": False, "B": False}).split() == ["a", "e", "f"]
    with pytest.raises(NameError):
        expand(text, {"A": True, "B": False})
    with pytest.raises(ValueError):
        expand("#if A\nx\n", {"A": True})
    with pytest.raises(ValueError):
        expand("x\n#endif\n", {})


def test_a_macro_expands_at_its_indentation():
    out = expand("def f(x):\n    @RELEASE(x)\n", {})
    assert out.splitlines()[1] == "    " + _MACROS["RELEASE"][0].format("x")


def test_only_the_template_changes_a_reader_count():
    # BufferOwnership.readers is copy-on-write's ground truth: an `x.readers += n` anywhere in
    # the engine but the template's macros is a second definition of what a step does. (A node
    # that declares retains_input gives its own slot back when done, outside the engine: the
    # remote executors do.)
    edits = []
    for path in sorted((PKG / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute) \
                    and node.target.attr == "readers":
                edits.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert edits == []
    assert "readers -= 1" in _MACROS["RELEASE"][0]
    assert "+= readers" in "".join(_MACROS["DELIVER"])


def code_objects(session) -> list:
    found = []
    for step in session.schedule.steps:
        entries = [step.failed] + (
            [f for pair in step.inputs.values() for f in pair] if step.fan_in
            else [step.receive, step.receive_numpy])
        found += [f.__code__ for f in entries]
    return found


def test_no_two_steps_or_sessions_share_a_code_object():
    # CPython specialises each code object for what it has seen: shared, one step's (or an
    # earlier session's) consumers would undo another's specialisation
    pipeline = rm.Pipeline.from_manifest(MANIFESTS / "five.yaml")
    with pipeline.session() as one, pipeline.session() as two:
        codes = code_objects(one) + code_objects(two)
        assert len({id(c) for c in codes}) == len(codes)
        assert one.schedule.push.__code__ is not two.schedule.push.__code__


def test_a_traceback_through_a_step_shows_the_generated_lines():
    registry = isolated_registry()

    class Boom(Node):
        node_type = "Boom"

        def process(self, data):
            raise RuntimeError("boom")
    registry.register(Boom)
    m = {"version": "v1", "nodes": [{"id": "b", "node_type": "Boom"}],
         "connections": [{"from": "input", "to": "b"}, {"from": "b", "to": "output"}]}
    with rm.Pipeline.from_manifest(m, registry=registry).session() as s:
        with pytest.raises(NodeError) as info:
            s.push(np.zeros(960, np.float32))
    frames = traceback.extract_tb(info.value.__traceback__)
    steps = [f for f in frames if f.filename.startswith("<remotemedia step")]
    assert steps and all(f.line for f in steps)
    assert any("raise NodeError" in f.line for f in steps)


def test_every_case_of_the_template_compiles():
    import itertools
    names = ("SINGLE", "RETAINS", "READERS_ONE", "FAST", "CHECK", "REQUIRES", "ONE_GAIN",
             "TRACE")
    for kind in ("one", "fan_in", "linear", "push"):
        for values in itertools.product((False, True), repeat=len(names)):
            code = compile(expand(TEMPLATE, dict(zip(names, values), KIND=kind)), "<case>",
                           "exec")
            assert code.co_consts or code.co_names     # something was generated
