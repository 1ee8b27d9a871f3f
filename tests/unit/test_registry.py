"""The node registry: decorator, function nodes, entry points, import paths."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.node import NodeRegistry, Param, UnknownNodeType


def test_function_node_gets_typed_params_from_its_signature():
    @rm.node_function("Offset", description="add a constant")
    def offset(frame, amount: float = 0.5):
        return frame.array + amount

    desc = rm.registry.resolve("Offset").describe()
    assert desc["params"] == [{"name": "amount", "type": "float", "default": 0.5,
                               "required": False, "doc": ""}]
    p = rm.Pipeline.from_manifest({"version": "v1",
                                   "nodes": [{"id": "o", "node_type": "Offset",
                                              "params": {"amount": 2}}],
                                   "connections": [{"from": "input", "to": "o"},
                                                   {"from": "o", "to": "output"}]})
    with p.session() as s:
        (out,) = s.push(rm.RuntimeData.Numpy(np.zeros(3, np.float32), pts=96))
    assert list(out.array) == [2.0, 2.0, 2.0] and out.pts == 96
    with pytest.raises(rm.ManifestError, match="param 'amount' must be float"):
        rm.Pipeline.from_manifest({"version": "v1",
                                   "nodes": [{"id": "o", "node_type": "Offset",
                                              "params": {"amount": "x"}}],
                                   "connections": [{"from": "input", "to": "o"}]})


def test_entry_points_register_third_party_nodes(tmp_path, monkeypatch):
    pkg = tmp_path / "thirdparty_nodes.py"
    pkg.write_text(textwrap.dedent('''
        from remotemedia import Node
        class Invert(Node):
            node_type = "Invert"
            description = "negate samples"
            def process(self, frame):
                return frame.with_array(-frame.array)
    '''))
    dist = tmp_path / "thirdparty_nodes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-nodes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[remotemedia.nodes]\nInvert = thirdparty_nodes:Invert\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = NodeRegistry()
    assert "Invert" not in reg._types
    reg.load_entry_points()
    assert reg.resolve("Invert").describe()["description"] == "negate samples"
    sys.modules.pop("thirdparty_nodes", None)


def test_unknown_type_suggests_a_close_name():
    with pytest.raises(UnknownNodeType) as info:
        rm.registry.resolve("LevelMetre")
    assert str(info.value) == "unknown node type 'LevelMetre' (did you mean 'LevelMeter'?)"


def test_param_checks():
    p = Param("size", int, 1, min=1, max=10)
    assert p.check(4) == 4 and p.check(4.0) == 4
    for bad, msg in ((0, ">= 1"), (11, "<= 10"), (True, "must be int"), ("3", "must be int")):
        with pytest.raises(ValueError, match=msg):
            p.check(bad)
    c = Param("mode", str, "a", choices=("a", "b"))
    with pytest.raises(ValueError, match="one of 'a', 'b'"):
        c.check("z")
