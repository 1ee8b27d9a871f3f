"""A manifest means exactly what it says: no silent duplicate keys, YAML 1.2 numbers, finite
parameters within their physical range."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.engine.docparse import DocumentError, load_json, load_yaml
from remotemedia.engine.errors import ManifestError
from remotemedia.engine.node import registry

GAIN_YAML = """version: v1
nodes:
  - id: g
    node_type: Gain
    params:
{params}
connections:
  - {{from: input, to: g}}
  - {{from: g, to: output}}
"""


def gain_manifest(tmp_path, params_text, suffix=".yaml"):
    path = tmp_path / f"m{suffix}"
    path.write_text(GAIN_YAML.format(params=params_text))
    return path


def test_duplicate_key_in_yaml_names_the_key_and_its_line(tmp_path):
    path = gain_manifest(tmp_path, "      db: -6\n      db: 12")
    with pytest.raises(ManifestError, match=r"m.yaml: .*line 7.*duplicate key 'db' "
                                            r"\(first at line 6\)"):
        rm.Pipeline.from_manifest(path)


def test_duplicate_key_in_json_names_the_key_and_its_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"version": "v1",\n "nodes": [{"id": "g", "node_type": "Gain",\n'
                    '   "params": {"db": -6,\n              "db": 12}}],\n'
                    ' "connections": [{"from": "input", "to": "g"}, '
                    '{"from": "g", "to": "output"}]}\n')
    with pytest.raises(ManifestError, match=r"m.json: duplicate key 'db' at line 4"):
        rm.Pipeline.from_manifest(path)


@given(st.lists(st.sampled_from("abcd"), min_size=2, max_size=6))
@settings(max_examples=100, deadline=None)
def test_any_repeated_key_is_an_error_in_both_syntaxes(keys):
    yaml_text = "\n".join(f"{k}: {i}" for i, k in enumerate(keys))
    json_text = "{" + ", ".join(f'"{k}": {i}' for i, k in enumerate(keys)) + "}"
    repeated = len(set(keys)) < len(keys)
    for loader, text in ((load_yaml, yaml_text), (load_json, json_text)):
        if repeated:
            with pytest.raises(DocumentError, match="duplicate key"):
                loader(text)
        else:
            assert loader(text) == {k: i for i, k in enumerate(keys)}


@pytest.mark.parametrize("text,value", [
    ("1e-1", 0.1), ("1E3", 1000.0), ("-2.5e+2", -250.0), (".5", 0.5), ("010", 10),
    ("0o17", 15), ("0x1F", 31), ("1:20", "1:20"), ("yes", "yes"), ("off", "off"),
    ("true", True), ("~", None), ("2001-12-14", "2001-12-14"), ("1_000", "1_000"),
])
def test_yaml_is_read_by_the_1_2_core_schema(text, value):
    assert load_yaml(f"v: {text}")["v"] == value


def test_linear_1e_minus_1_is_a_number(tmp_path):
    m = rm.Pipeline.from_manifest(gain_manifest(tmp_path, "      linear: 1e-1")).manifest
    assert m.node("g").params["linear"] == pytest.approx(0.1)


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf"])
def test_non_finite_params_are_refused(tmp_path, text):
    with pytest.raises(ManifestError, match=r"node 'g': param 'db' must be a finite number"):
        rm.Pipeline.from_manifest(gain_manifest(tmp_path, f"      db: {text}"))


def test_json_nan_tokens_are_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"version": "v1", "nodes": [{"id": "g", "node_type": "Gain", '
                    '"params": {"db": NaN}}], "connections": []}')
    with pytest.raises(ManifestError, match="NaN is not a JSON number"):
        rm.Pipeline.from_manifest(path)


def test_gain_beyond_its_physical_range_says_why(tmp_path):
    with pytest.raises(ManifestError, match=r"param 'db' must be <= 144 \(144 dB is the "
                                            r"dynamic range of 24-bit PCM\), got 400"):
        rm.Pipeline.from_manifest(gain_manifest(tmp_path, "      db: 400"))


def float_params():
    for name, cls in registry.types().items():
        if not cls.__module__.startswith("remotemedia."):
            continue    # test nodes other tests registered in the same registry
        for p in cls.params:
            if p.type is float:
                yield name, p


@pytest.mark.parametrize("node_type,param", list(float_params()),
                         ids=[f"{n}.{p.name}" for n, p in float_params()])
def test_every_float_param_refuses_non_finite_and_declares_a_range(node_type, param):
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            param.check(bad)
    # Gains, thresholds and durations all have a physical range: both ends stated.
    assert param.min is not None and param.max is not None, \
        f"{node_type}.{param.name} declares no range"
    with pytest.raises(ValueError):
        param.check(param.max * 2 + 1 if param.max > 0 else param.max + 1)


def test_describe_lists_the_range():
    described = {d["node_type"]: d for d in (c.describe() for c in registry.types().values())}
    db = {p["name"]: p for p in described["Gain"]["params"]}["db"]
    assert (db["min"], db["max"]) == (-144.0, 144.0)
    json.dumps(described)
