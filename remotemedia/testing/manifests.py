"""Manifest builders: the dicts a test would otherwise spell out by hand.

    chain("Gain", ("meter", "LevelMeter", {"every": 5}))      # input -> gain -> meter -> output
    one_node("Resample", rate=16000, audio={"sample_rate": 48000})
    manifest(nodes=[...], connections=[...])
    path.write_text(to_yaml(chain("Gain")))                   # for the command line

A node is given as a node type ("Gain": its id is the type in lower case, numbered if it
repeats), an (id, type) or (id, type, params) tuple, or a full node dict.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_CHANNELS, DEFAULT_SAMPLE_RATE

DEFAULT_AUDIO = {"sample_rate": DEFAULT_SAMPLE_RATE, "block_size": DEFAULT_BLOCK_SIZE,
                 "channels": DEFAULT_CHANNELS}


def manifest(nodes: Iterable[Any], connections: Iterable[dict], *,
             audio: dict | None = None, name: str = "test", **top: Any) -> dict:
    """A native manifest dict: version v1, `audio` over the 48 kHz / 960 / mono defaults, and
    any other top-level keys (`on_error`, ...) as given."""
    return {"version": "v1", "metadata": {"name": name},
            "audio": {**DEFAULT_AUDIO, **(audio or {})},
            "nodes": _nodes(nodes), "connections": list(connections), **top}


def chain(*nodes: Any, audio: dict | None = None, name: str = "chain", **top: Any) -> dict:
    """input -> each node in turn -> output."""
    specs = _nodes(nodes)
    ids = ["input", *(n["id"] for n in specs), "output"]
    connections = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    return manifest(specs, connections, audio=audio, name=name, **top)


def one_node(node_type: str, *, audio: dict | None = None, node_id: str = "n",
             **params: Any) -> dict:
    """input -> one node of `node_type` with `params` -> output."""
    return chain((node_id, node_type, params), audio=audio, name=node_type)


def to_yaml(manifest: dict) -> str:
    """The manifest as YAML text, for a test that runs the command line on a file."""
    from ..engine.docparse import dump_yaml   # reads back equal: `1e5` stays a string
    return dump_yaml(manifest, sort_keys=False)


def _nodes(nodes: Iterable[Any]) -> list[dict]:
    out: list[dict] = []
    used: dict[str, int] = {}
    for n in nodes:
        if isinstance(n, dict):
            out.append(dict(n))
            continue
        if isinstance(n, str):
            base = n.lower()
            used[base] = used.get(base, 0) + 1
            node_id = base if used[base] == 1 else f"{base}{used[base]}"
            out.append({"id": node_id, "node_type": n})
            continue
        node_id, node_type, *rest = n
        spec = {"id": node_id, "node_type": node_type}
        if rest and rest[0]:
            spec["params"] = dict(rest[0])
        out.append(spec)
    return out
