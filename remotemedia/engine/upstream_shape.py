"""The upstream's manifest shape (the README's "Manifests written for the upstream"): telling it
apart from the native one and rewriting it into the native shape before validation. This module
only translates: engine/manifest.py validates and builds `convert-manifest`'s native equivalent
(native_document); the names both read are in engine/manifest_keys.py.
"""

from __future__ import annotations

from typing import Any, Mapping

from .manifest_keys import (INPUT, NATIVE, NODE_KEYS, OUTPUT, RESERVED_IDS, RUNTIME_HINTS,
                            UPSTREAM, UPSTREAM_AUDIO, UPSTREAM_NODE_KEYS)
from .node import AudioFormat, audio_value_problem


def manifest_shape(doc: Mapping) -> str:
    """"upstream" when `connections` is a list none of whose entries names `input` or `output`
    (an empty list included), else "native" (the README's "Manifests written for the
    upstream"). Upstream manifests may call their own nodes `input` and `output` (a TextInput,
    an AudioOutput): a connection naming a node the document declares under that id is the
    upstream's too."""
    conns = doc.get("connections")
    if not isinstance(conns, list):
        return NATIVE
    nodes = doc.get("nodes") if isinstance(doc.get("nodes"), list) else []
    # only strings can name an end: an `id: [a]` is refused later, in one line, not here
    declared = {n.get("id") for n in nodes if isinstance(n, Mapping)
                and isinstance(n.get("id"), str)} & RESERVED_IDS
    ends = RESERVED_IDS - declared
    for c in conns:
        if isinstance(c, Mapping) and any(isinstance(c.get(role), str) and c.get(role) in ends
                                          for role in ("from", "to")):
            return NATIVE
    return UPSTREAM


def upstream_to_native(doc: Mapping, fail) -> tuple[dict, list[str], AudioFormat]:
    """Rewrite an upstream-shape document into the native shape.

    Returns the native document (explicit `input`/`output` connections, the upstream's extra
    keys removed), the warnings (one line each), and the weak audio defaults: the upstream CLI's
    16 kHz mono in 4000-sample blocks, replaced by `metadata.cli_defaults` where it gives
    `sample_rate`, `channels` or `chunk_size`. `fail(problem, node_id=None)` raises."""
    warnings: list[str] = []
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in ("version", "metadata", "nodes", "connections", "audio", "on_error"):
            out[key] = value
        elif key == "python_env":
            if not isinstance(value, Mapping):
                fail("'python_env' must be a mapping")
            scope = value.get("scope")
            if scope is not None and scope not in ("global", "per_pipeline", "per_node"):
                fail(f"'python_env.scope' must be one of global, per_pipeline, per_node, "
                     f"got {scope!r}")
            warnings.append("'python_env' has no effect here (nodes run in this Python)")
        else:
            warnings.append(f"top-level key '{key}' is not part of a manifest; ignored")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        fail("'metadata' must be a mapping")
    base = {"sample_rate": UPSTREAM_AUDIO.sample_rate, "channels": UPSTREAM_AUDIO.channels,
            "block_size": UPSTREAM_AUDIO.block_size}
    cli = metadata.get("cli_defaults")
    if cli is not None:
        if not isinstance(cli, Mapping):
            fail("'metadata.cli_defaults' must be a mapping")
        for key, target in (("sample_rate", "sample_rate"), ("channels", "channels"),
                            ("chunk_size", "block_size")):
            if key in cli:
                problem = audio_value_problem(target, cli[key])
                if problem:
                    fail(f"'metadata.cli_defaults.{key}' {problem}")
                base[target] = cli[key]

    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        fail("'nodes' must be a non-empty list")
    nodes, marked = [], []
    for i, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            fail(f"nodes[{i}] must be a mapping with 'id' and 'node_type'")
        node = dict(raw)
        node_id = node.get("id")
        if node_id is not None and not isinstance(node_id, str):
            fail(f"nodes[{i}]: 'id' must be a string, got {type(node_id).__name__}")
        label = f"node '{node_id}'" if isinstance(node_id, str) else f"nodes[{i}]"
        for key in UPSTREAM_NODE_KEYS:
            if key not in node:
                continue
            value = node.pop(key)
            if key == "is_output_node":
                if not isinstance(value, bool):
                    fail(f"'is_output_node' must be true or false, got {value!r}", node_id)
                if value:
                    marked.append(node_id)
            elif key == "runtime_hint" and value not in RUNTIME_HINTS:
                fail(f"'runtime_hint' must be one of {', '.join(RUNTIME_HINTS)}, "
                     f"got {value!r}", node_id)
            else:
                warnings.append(f"{label}: '{key}' has no effect here")
        for key in sorted(set(node) - NODE_KEYS):
            node.pop(key)
            hint = " (the upstream reads 'node_type' only)" if key == "nodeType" else ""
            warnings.append(f"{label}: unknown key '{key}' ignored{hint}")
        nodes.append(node)
    out["nodes"] = nodes

    conns = list(doc.get("connections") or [])
    conns = _rename_reserved(nodes, conns, warnings)
    ids = [n.get("id") for n in nodes]
    # a connection end that is no string names no node here (the native checks refuse it)
    has_in = {c.get("to") for c in conns if isinstance(c, Mapping)
              and isinstance(c.get("to"), str)}
    has_out = {c.get("from") for c in conns if isinstance(c, Mapping)
               and isinstance(c.get("from"), str)}
    roots = [i for i in ids if i not in has_in]
    sinks = [i for i in ids if i not in has_out or i in marked]
    out["connections"] = ([{"from": INPUT, "to": i} for i in roots] + conns
                          + [{"from": i, "to": OUTPUT} for i in sinks])
    return out, warnings, AudioFormat(**base)


def _rename_reserved(nodes: list[dict], conns: list, warnings: list[str]) -> list:
    """Upstream nodes with the ids `input` or `output` are ordinary nodes: they get a free id
    (`input_node`, ...), with a warning, and the connections follow them; `input` and
    `output` then mean the session's ends, as in every native manifest."""
    taken = {n.get("id") for n in nodes}
    renames: dict[str, str] = {}
    for node in nodes:
        old = node.get("id")
        if old in RESERVED_IDS:
            new = f"{old}_node"
            while new in taken:
                new += "_"
            taken.add(new)
            renames[old] = node["id"] = new
            warnings.append(f"node '{old}' ({node.get('node_type')}) runs as '{new}': "
                            f"'{old}' is the session's own {'start' if old == INPUT else 'end'}")
    if not renames:
        return conns
    return [{**c, **{k: renames.get(c[k], c[k]) if isinstance(c[k], str) else c[k]
                     for k in ("from", "to") if k in c}} if isinstance(c, Mapping) else c
            for c in conns]
