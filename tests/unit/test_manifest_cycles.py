"""Whatever the graph and the order its connections are listed in, a cycle is one ManifestError
naming a real cycle, never a traceback: nodes downstream of a cycle are stuck too, and the
search once walked into one of them and raised StopIteration."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from remotemedia.engine.errors import ManifestError
from remotemedia.engine.manifest import validate_manifest


@st.composite
def cyclic_graphs(draw):
    n = draw(st.integers(2, 7))
    ids = [f"n{i}" for i in range(n)]
    # a chain input -> n0 -> ... -> n{n-1} -> output keeps every node reachable, extra forward
    # edges branch it, and one edge back closes a cycle
    edges = {(ids[i], ids[i + 1]) for i in range(n - 1)}
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=6))
    edges |= {(ids[a], ids[b]) for a, b in extra if a < b}
    back = draw(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(
        lambda t: t[0] >= t[1]))
    edges.add((ids[back[0]], ids[back[1]]))
    conns = [{"from": a, "to": b} for a, b in sorted(edges)]
    conns = draw(st.permutations(conns))
    conns = [{"from": "input", "to": ids[0]}, *conns, {"from": ids[-1], "to": "output"}]
    return ids, edges, conns, (ids[back[0]], ids[back[1]])


@settings(max_examples=200, deadline=None)
@given(cyclic_graphs())
def test_a_cycle_is_named_whatever_the_order_of_connections(graph):
    ids, edges, conns, back = graph
    doc = {"version": "v1", "nodes": [{"id": i, "node_type": "PassThrough"} for i in ids],
           "connections": conns}
    with pytest.raises(ManifestError) as err:
        validate_manifest(doc, source="g.yaml")
    text = str(err.value)
    assert "\n" not in text
    if back[0] == back[1]:
        assert f"connection {back[0]} -> {back[0]} forms a cycle" in text
        return
    assert "connections form a cycle: " in text
    named = text.split("connections form a cycle: ")[1].split(" -> ")
    assert named[0] == named[-1] and len(named) >= 2
    assert all((a, b) in edges for a, b in zip(named, named[1:]))   # a real cycle


def test_the_newcomers_graph_downstream_of_the_cycle_listed_first():
    doc = {"version": "v1",
           "nodes": [{"id": "a", "node_type": "Gain"}, {"id": "b", "node_type": "Mix"},
                     {"id": "c", "node_type": "Gain"}, {"id": "d", "node_type": "Gain"}],
           "connections": [{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                           {"from": "b", "to": "c"}, {"from": "c", "to": "d"},
                           {"from": "c", "to": "b"}, {"from": "d", "to": "output"}]}
    with pytest.raises(ManifestError, match=r"cycle: b -> c -> b"):
        validate_manifest(doc, source="g.yaml")


def test_a_loop_into_an_input_that_takes_none_names_the_input_that_would():
    # assistant-aec.yaml with the reference's input name mistyped: said as such, not as a
    # bare cycle
    import yaml
    from pathlib import Path
    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "manifests" /
                          "assistant-aec.yaml").read_text())
    for c in doc["connections"]:
        if c.get("input") == "reference":
            c["input"] = "refrence"
    with pytest.raises(ManifestError) as err:
        validate_manifest(doc, source="aec.yaml")
    assert "closes a cycle into input 'refrence'" in str(err.value)
    assert "EchoCancel takes a loop only into 'reference'" in str(err.value)


@pytest.mark.parametrize("node_type, warned", [("Gain", True), ("Mix", False)])
def test_an_input_name_into_a_one_input_node_is_a_warning(node_type, warned):
    doc = {"version": "v1", "nodes": [{"id": "g", "node_type": node_type}],
           "connections": [{"from": "input", "to": "g", "input": "mc"},
                           {"from": "g", "to": "output"}]}
    m = validate_manifest(doc, source="g.yaml")
    said = [w for w in m.warnings if "'input: mc' has no effect" in w]
    assert bool(said) == warned
