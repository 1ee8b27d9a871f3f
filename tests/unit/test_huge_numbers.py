"""A document's integers are unbounded (YAML, JSON): 10**400 in a float param, a resources
value, a room key or an event time gave `OverflowError: int too large to convert to float`
tracebacks. Every check goes through engine/numbers.py now: refused in one line, or taken."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import ManifestError
from remotemedia.engine.manifest import validate_manifest
from remotemedia.engine.node import registry
from remotemedia.engine.numbers import as_float, finite_number, shown

HUGE = st.one_of(st.integers(min_value=2 ** 1024, max_value=10 ** 500),
                 st.integers(min_value=-(10 ** 500), max_value=-(2 ** 1024)))
NUMERIC = [(t, p.name) for t, cls in sorted(registry.types().items()) if "." not in t
           and ":" not in t for p in getattr(cls, "params", ()) if p.type in (int, float)]


@given(value=st.one_of(HUGE, st.integers(), st.floats(allow_nan=True), st.booleans(),
                       st.text(max_size=3)))
def test_the_number_checks_never_raise(value):
    ok = finite_number(value)
    f = as_float(value)
    assert f is None or (ok and math.isfinite(f))
    assert len(shown(value)) <= 40


@pytest.mark.parametrize("node_type,param", NUMERIC)
@pytest.mark.parametrize("value", [10 ** 400, -(10 ** 400)], ids=["huge", "-huge"])
def test_a_huge_integer_param_is_refused_in_one_line_or_taken(node_type, param, value):
    doc = {"version": "v1", "nodes": [{"id": "n", "node_type": node_type,
                                       "params": {param: value}}],
           "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}
    try:
        validate_manifest(doc, source="m.yaml")
    except ManifestError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400, str(exc)[:200]


@given(value=HUGE)
def test_a_huge_resources_value_is_refused_in_one_line(value):
    doc = {"version": "v1", "nodes": [{"id": "n", "node_type": "Gain", "executor": "ray",
                                       "resources": {"num_cpus": value}}],
           "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}
    with pytest.raises(ManifestError, match="non-negative number, got an integer of"):
        validate_manifest(doc, source="m.yaml")


@given(value=HUGE, key=st.sampled_from(["echo_delay_ms", "echo_gain_db", "rt60_ms", "seed"]))
def test_a_huge_room_value_is_refused_in_one_line(value, key):
    from remotemedia.conversation_room import load_room
    from remotemedia.converse import ScriptError
    with pytest.raises(ScriptError) as refused:
        load_room({key: value}, "s.yaml")
    assert "\n" not in str(refused.value)
