"""Absolute levels are `_dbfs`; the old `_db` names of native nodes still load, with a warning
line naming the new name, and mean exactly what the new name means."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import NumpyData
from remotemedia.engine.manifest import ManifestError, load_manifest
from remotemedia.engine.node import registry

RENAMED = [("SilenceDetector", "silence_db", "silence_dbfs", -50.0),
           ("SilenceDetector", "dropout_db", "dropout_dbfs", -90.0),
           ("DCOffset", "threshold_db", "threshold_dbfs", -50.0),
           ("EnergyVAD", "threshold_db", "threshold_dbfs", -30.0)]


def manifest(node_type, params):
    return {"version": "v1", "audio": {"sample_rate": 48000, "channels": 1, "block_size": 960},
            "nodes": [{"id": "n", "node_type": node_type, "params": params}],
            "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}


@pytest.mark.parametrize("node_type,old,new,value", RENAMED)
def test_old_name_loads_with_a_warning_naming_the_new_one(node_type, old, new, value):
    m = load_manifest(manifest(node_type, {old: value}))
    assert m.nodes[0].params[new] == value and old not in m.nodes[0].params
    assert [w for w in m.warnings if f"'{old}'" in w and f"'{new}'" in w and "deprecated" in w]
    clean = load_manifest(manifest(node_type, {new: value}))
    assert not clean.warnings and clean.nodes[0].params == m.nodes[0].params


@pytest.mark.parametrize("node_type,old,new,value", RENAMED)
def test_old_and_new_name_together_is_an_error(node_type, old, new, value):
    for params in ({old: value, new: value}, {new: value, old: value}):
        with pytest.raises(ManifestError, match=f"'{new}' is given twice \\(as '{old}' too\\)"):
            load_manifest(manifest(node_type, params))


@pytest.mark.parametrize("node_type,old,new,value", RENAMED)
def test_old_name_in_python_gives_a_deprecation_warning(node_type, old, new, value):
    cls = registry.resolve(node_type)
    with pytest.warns(DeprecationWarning, match=f"use '{new}'"):
        node = cls(**{old: value})
    assert getattr(node, new) == value and not hasattr(node, old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(cls(**{new: value}), new) == value


def test_old_name_behaves_like_the_new_one():
    """DCOffset at 1% of full scale: -50 dBFS fires, the default -40 dBFS does not; the alias
    sets the threshold, not merely passes the check."""
    x = np.full(48000 * 3, 0.005, dtype=np.float32)   # -46 dBFS of DC

    def events(params):
        out = []
        with rm.Pipeline.from_manifest(manifest("DCOffset", params)).session() as s:
            for i in range(0, x.shape[0], 960):
                out += [o.value["type"] for o in s.push(NumpyData(x[i:i + 960],
                                                                  sample_rate=48000, pts=i))
                        if o.kind == "json"]
        return out

    assert events({}) == []
    old, new = events({"threshold_db": -50.0}), events({"threshold_dbfs": -50.0})
    assert "dc_offset" in new and old == new


def test_aliases_are_listed_by_describe():
    params = {p["name"]: p for p in registry.resolve("SilenceDetector").describe()["params"]}
    assert params["silence_dbfs"]["aliases"] == ["silence_db"]


def native_params():
    for name, cls in registry.types().items():
        if cls.describe().get("upstream"):
            continue            # the upstream's names stay the upstream's (compatibility)
        for p in cls.params:
            yield name, p


def test_native_params_name_absolute_levels_dbfs():
    """A param documented as a level in dBFS is named `_dbfs`; `_db` is for relative gains."""
    wrong = [f"{node}.{p.name}" for node, p in native_params()
             if "dBFS" in p.doc and not p.name.endswith("_dbfs")]
    assert not wrong, f"absolute levels not named _dbfs: {wrong}"


def test_every_alias_loads_as_its_param_with_a_warning():
    """Each deprecated name any native node declares, not only the ones listed above."""
    seen = 0
    for node, p in native_params():
        for alias in p.aliases:
            value = p.default if p.default is not None else p.min
            m = load_manifest(manifest(node, {alias: value}))
            assert m.nodes[0].params[p.name] == value
            assert any(f"'{alias}'" in w and f"'{p.name}'" in w for w in m.warnings)
            seen += 1
    assert seen >= len(RENAMED)
