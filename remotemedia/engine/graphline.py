"""A pipeline on one line, as gst-launch and sox users write it:

    Gain db=-3 ! LevelMeter every=5
    Resample rate=16000 quality=HQ ! VAD threshold=0.6 id=vad

Elements are separated by `!`; each is a node type followed by `KEY=VALUE` parameters, with
`id=NAME` naming the node (otherwise the type in snake case, `gain`, `level_meter`, numbered
`gain_2` when it repeats). Values are read as YAML scalars or flow lists (`-3`, `0.5`, `true`,
`HQ`, `[1, 2]`); quote a value with spaces as a shell does (`text="hello there"`). The chain
runs from `input` through each element in order to `output`. The result is a manifest document
(a dict) that the manifest loader validates exactly as it does a file; `convert-manifest
--graph` writes it as one.

Only a straight chain: a graph with branches or fan-in needs a manifest file.
"""

from __future__ import annotations

import re
import shlex

from .errors import ManifestError

#: what messages call a graph line
SOURCE = "graph"

_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*$")


class NamedDocument(dict):
    """A manifest document (a dict) that carries the name messages give it (`source_name`),
    for documents that come from no file: a graph line, stdin."""

    def __init__(self, doc: dict, source_name: str):
        super().__init__(doc)
        self.source_name = source_name


def snake_case(node_type: str) -> str:
    """`LevelMeter` -> `level_meter`, `VAD` -> `vad`, `mypkg.MyNode` -> `my_node`."""
    base = node_type.rsplit(".", 1)[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()


def parse_graph(text: str) -> NamedDocument:
    """The manifest document of the one-line pipeline `text` (module doc): `version`,
    `metadata.name` "graph", and the `nodes` and `connections` of the chain input -> ... ->
    output. Raises ManifestError (exit 2, one line naming the element) for an empty line, an
    empty element, a parameter that is not KEY=VALUE, a parameter given twice, or an id that
    repeats."""
    import yaml
    try:
        tokens = shlex.split(text, comments=False, posix=True)
    except ValueError as exc:                       # an unclosed quote
        raise ManifestError(f"cannot split the line: {exc}", source=SOURCE) from None
    elements: list[list[str]] = [[]]
    for token in tokens:
        if token == "!":
            elements.append([])
        else:
            elements[-1].append(token)
    if not tokens:
        raise ManifestError("the line is empty; expected 'Type key=value ! Type ...'",
                            source=SOURCE)
    nodes, used = [], {}
    for n, element in enumerate(elements, 1):
        where = f"element {n}"
        if not element:
            raise ManifestError(f"{where} is empty (two '!' in a row, or one at an end)",
                                source=SOURCE)
        node_type, *pairs = element
        if "=" in node_type or not _TYPE.match(node_type):
            raise ManifestError(f"{where} starts with '{node_type}', which is not a node type "
                                f"(expected 'Type key=value ...')", source=SOURCE)
        params: dict = {}
        node_id = None
        for pair in pairs:
            key, eq, raw = pair.partition("=")
            if not eq or not key:
                raise ManifestError(f"{where} ({node_type}): expected KEY=VALUE, got '{pair}'",
                                    source=SOURCE)
            if key in params or (key == "id" and node_id is not None):
                raise ManifestError(f"{where} ({node_type}): '{key}' is given twice",
                                    source=SOURCE)
            if key == "id":
                if not _ID.match(raw) or raw in ("input", "output"):
                    raise ManifestError(f"{where} ({node_type}): id '{raw}' is not a node id",
                                        source=SOURCE)
                node_id = raw
                continue
            params[key] = _value(raw, yaml)
        if node_id is None:
            base = snake_case(node_type)
            used[base] = used.get(base, 0) + 1
            node_id = base if used[base] == 1 else f"{base}_{used[base]}"
        if any(node["id"] == node_id for node in nodes):
            raise ManifestError(f"{where} ({node_type}): id '{node_id}' is used twice",
                                source=SOURCE)
        node = {"id": node_id, "node_type": node_type}
        if params:
            node["params"] = params
        nodes.append(node)
    ids = ["input", *(node["id"] for node in nodes), "output"]
    doc = {"version": "v1",
           "metadata": {"name": "graph", "description": text.strip()},
           "nodes": nodes,
           "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}
    return NamedDocument(doc, f"{SOURCE} '{text.strip()}'")


def _value(raw: str, yaml):
    # A YAML scalar or flow collection; anything YAML cannot read stays the text it is.
    if raw == "":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict) and not raw.lstrip().startswith("{") else value
