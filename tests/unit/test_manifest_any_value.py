"""Any value in any key of any shipped manifest (native, upstream, pipeline file) is taken or
refused with one ManifestError line: never a TypeError, an OSError or another traceback.
Before: `id: [a]` or `from: {x: 1}` gave `TypeError: unhashable type` from the shape check,
`connections: true` and `node_type: [x]` in a pipeline file a TypeError, and a 5,000-character
Whisper `model` an `OSError: File name too long`."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import ManifestError
from remotemedia.engine.manifest import validate_manifest

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("manifests/*.yaml"), *ROOT.glob("tests/data/upstream/*"),
                *ROOT.glob("tests/data/upstream-speech/*.yaml")])
DOCS = {p.relative_to(ROOT).as_posix(): yaml.safe_load(p.read_text()) for p in FILES}

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                    st.sampled_from(["x" * 5000, "/" * 300, "../" * 2000, "\x00", "input",
                                     "output", "-1", "${HOME}", "~nobody/x"]),
                    st.integers(min_value=10 ** 300, max_value=10 ** 400))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


def _refusal(doc) -> str | None:
    """The ManifestError's words when `doc` is refused, None when it is taken; any other
    exception (a TypeError, an OSError) propagates and fails the test."""
    try:
        validate_manifest(doc, source="m.yaml")
    except ManifestError as exc:
        return str(exc)
    return None


def _one_line(problem: str | None) -> bool:
    return problem is None or (bool(problem.strip()) and "\n" not in problem)


@pytest.mark.parametrize("name", sorted(DOCS))
@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_value_in_any_key_is_taken_or_one_line(name, data):
    doc = copy.deepcopy(DOCS[name])
    where = data.draw(st.sampled_from([p for p in _paths(doc) if p]), label="where")
    value = data.draw(VALUES, label="value")
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    problem = _refusal(doc)
    assert _one_line(problem), (problem or "")[:300]


@pytest.mark.parametrize("name", sorted(DOCS))
@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_an_unknown_key_anywhere_is_taken_or_one_line(name, data):
    doc = copy.deepcopy(DOCS[name])
    mappings = [p for p in _paths(doc) if isinstance(_at(doc, p), dict)]
    where = data.draw(st.sampled_from(mappings), label="where")
    key = data.draw(st.text(max_size=12), label="key")
    _at(doc, where)[key] = data.draw(VALUES, label="value")
    problem = _refusal(doc)
    assert _one_line(problem), (problem or "")[:300]


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


def _string_params():
    from remotemedia.engine.node import registry
    return [(t, p.name) for t, cls in sorted(registry.types().items()) if "." not in t
            and ":" not in t for p in getattr(cls, "params", ()) if p.type is str]


@pytest.mark.parametrize("node_type,param", _string_params())
@pytest.mark.parametrize("value", ["x" * 5000, "/" + "y" * 300 + "/z", "a\nb\x1b[2J"],
                         ids=["5000 chars", "name too long", "controls"])
def test_any_string_param_is_taken_or_one_line(node_type, param, value):
    """A path-like param of 5,000 characters (a Whisper `model`, a Piper `voice`) gave
    `OSError: File name too long` from pathlib: os.path answers False instead."""
    problem = _refusal({"version": "v1", "nodes": [{"id": "n", "node_type": node_type,
                                                    "params": {param: value}}],
                        "connections": [{"from": "input", "to": "n"},
                                        {"from": "n", "to": "output"}]})
    assert _one_line(problem), (problem or "")[:300]


@given(st.text())
def test_an_escaped_message_is_one_line_without_escape_sequences(text):
    from remotemedia.engine.errors import escape_controls
    out = escape_controls(text)
    assert len(out.splitlines()) <= 1 and "\x1b" not in out and "\r" not in out


def test_the_cli_says_a_key_or_file_name_with_a_newline_in_one_line(tmp_path):
    """`unknown key 'x<newline>y'` was two lines on stderr, and a file name's ESC sequences
    reached the terminal."""
    import subprocess
    import sys
    (tmp_path / "m.yaml").write_text('version: v1\nnodes:\n  - {id: a, node_type: Gain, '
                                     '"x\\ny": 1}\nconnections: [{from: input, to: a}, '
                                     '{from: a, to: output}]\n')
    for args in (["validate", "m.yaml"],
                 ["stream", "-i", "no\nsuch\x1b[2J.wav", "-o", "null", "PassThrough"]):
        done = subprocess.run([sys.executable, "-m", "remotemedia", *args], cwd=tmp_path,
                              capture_output=True, timeout=60)
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert len(err.splitlines()) == 1 and "\x1b" not in err, err
        assert err.startswith("remotemedia: error:") and "\\n" in err
