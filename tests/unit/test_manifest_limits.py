"""What parsing a manifest may cost is bounded (engine/docparse.py LIMITS): size, nesting depth,
YAML aliases and what they expand to. The kind is tested with generated documents, against small
limits so that each example is cheap, and with the real limits on the edges."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia import ManifestError
from remotemedia.engine.docparse import LIMITS, DocumentError, ParseLimits, load_json, load_yaml
from remotemedia.engine.manifest import load_manifest

SMALL = ParseLimits(max_bytes=64 * 1024, max_depth=12, max_aliases=40, max_values=5000)


def nested(depth: int, style: str) -> str:
    """`depth` collections nested in each other, in JSON (= YAML flow) or YAML block style."""
    if style == "flow":
        return "[" * depth + "1" + "]" * depth
    if style == "mapping":
        return "".join("  " * i + "k:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "k: 1\n"
    return "".join("  " * i + "-\n" for i in range(depth - 1)) + "  " * (depth - 1) + "- 1\n"


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 3 * SMALL.max_depth), style=st.sampled_from(["flow", "mapping",
                                                                        "seq"]))
def test_nesting_beyond_the_limit_is_refused_and_within_it_loads(depth, style):
    text = nested(depth, style)
    if depth <= SMALL.max_depth:
        value = load_yaml(text, SMALL)
        for _ in range(depth):
            value = value["k"] if isinstance(value, dict) else value[0]
        assert value == 1
        if style == "flow":
            assert load_json(text, SMALL) == json.loads(text)
    else:
        with pytest.raises(DocumentError, match=f"nested deeper than {SMALL.max_depth} levels"):
            load_yaml(text, SMALL)
        if style == "flow":
            with pytest.raises(DocumentError, match="nested deeper"):
                load_json(text, SMALL)


def laughs(width: int, levels: int) -> tuple[str, int]:
    """A "billion laughs" document: each level a list of `width` aliases of the one below. Returns
    the text and how many values it holds written out."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    sizes = [1 + width]                     # a list and its scalars
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
        sizes.append(1 + width * sizes[-1])
    return "\n".join(lines) + "\n", 1 + levels + sum(sizes)   # the top mapping and its keys


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 9), levels=st.integers(1, 7))
def test_aliases_are_counted_as_written_out(width, levels):
    text, total = laughs(width, levels)
    aliases = width * (levels - 1)
    if aliases > SMALL.max_aliases:
        with pytest.raises(DocumentError, match="YAML aliases"):
            load_yaml(text, SMALL)
    elif total > SMALL.max_values:
        with pytest.raises(DocumentError, match=f"expand to more than {SMALL.max_values:,}"):
            load_yaml(text, SMALL)
    else:
        doc = load_yaml(text, SMALL)
        assert len(doc) == levels and len(doc[f"l{levels - 1}"]) == width


@settings(max_examples=30, deadline=None)
@given(width=st.integers(2, 9), levels=st.integers(2, 6))
def test_merge_keys_are_counted_as_written_out(width, levels):
    lines = ["m0: &m0 {k: v}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * width)}], x{i}: 1}}")
    text = "\n".join(lines) + "\n"
    sizes = [3]                             # {k: v}
    for _ in range(1, levels):              # the mapping, <<, the list of aliases, x: 1
        sizes.append(1 + 1 + (1 + width * sizes[-1]) + 2)
    aliases = width * (levels - 1)
    if aliases > SMALL.max_aliases:
        with pytest.raises(DocumentError, match="YAML aliases"):
            load_yaml(text, SMALL)
    elif 1 + levels + sum(sizes) > SMALL.max_values:
        with pytest.raises(DocumentError, match="expand to more than"):
            load_yaml(text, SMALL)
    else:
        assert load_yaml(text, SMALL)[f"m{levels - 1}"]["k"] == "v"


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "- &x [1, [2, *x]]\n"])
def test_a_recursive_alias_is_refused(text):
    with pytest.raises(DocumentError, match="refers to a collection that contains it"):
        load_yaml(text)


def test_size_is_counted_in_bytes(tmp_path):
    at_limit = "version: v1\n#" + "x" * (LIMITS.max_bytes - 14) + "\n"
    assert len(at_limit.encode()) == LIMITS.max_bytes
    load_yaml(at_limit)
    with pytest.raises(DocumentError, match=f"larger than {LIMITS.max_bytes:,} bytes"):
        load_yaml(at_limit + "x")
    # a file is read only up to the limit (an endless one costs no more)
    with pytest.raises(ManifestError, match="larger than") as info:
        load_manifest("/dev/zero")
    assert "\n" not in str(info.value)


def test_the_real_limits_leave_room_for_real_manifests():
    # A chain of 2,000 nodes with params, anchors shared between them: well inside.
    lines = ["version: v1", "metadata: {shared: &p {db: -1.0}}", "nodes:"]
    lines += [f"  - {{id: g{i}, node_type: Gain, params: *p}}" for i in range(2000)]
    lines += ["connections:", "  - {from: input, to: g0}"]
    lines += [f"  - {{from: g{i}, to: g{i + 1}}}" for i in range(1999)]
    lines += ["  - {from: g1999, to: output}"]
    doc = load_yaml("\n".join(lines))
    assert len(doc["nodes"]) == 2000 and doc["nodes"][-1]["params"] == {"db": -1.0}
