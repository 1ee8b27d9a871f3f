"""The upstream's voice-assistant pipeline files (its va-local, va-hybrid and va-remote): not
manifests even upstream (no `metadata`, params under `config`, node types no runner of its
registers), but what they mean is plain, and their comments say it: capture at the
`AudioInput`'s rate, detect speech, transcribe, ask a local LLM (Ollama), speak, resample to
48 kHz, play. This module rewrites one into a native manifest that runs that pipeline here,
with a warning line for each thing it had to decide; what cannot run here (a
`RemotePipelineNode`, which calls a pipeline on a server over gRPC) is refused in one line.

It only translates; engine/manifest.py validates the result like any native document.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping

from .manifest_keys import INPUT, OUTPUT

#: the pipeline files' node types, and the node type each runs as here
PIPELINE_FILE_TYPES = {"AudioInput": "Resample", "SileroVAD": "SileroVADNode",
                       "WhisperSTT": "RustWhisperNode", "OllamaLLM": "OllamaLLM",
                       "KokoroTTS": "KokoroTTSNode", "AudioResample": "Resample",
                       "AudioOutput": None}

#: per type, the pipeline file's param name -> the name here (None: has no effect, dropped)
_PARAMS: dict[str, dict[str, str | None]] = {
    "AudioInput": {"sample_rate": "rate", "channels": None, "format": None, "source": None},
    "SileroVAD": {"pre_speech_pad_ms": "speech_pad_ms"},
    "WhisperSTT": {"model": "model_source", "task": None},
    "AudioResample": {"target_sample_rate": "rate", "quality": "quality"},
    "AudioOutput": {},
}

#: AudioResample's quality words -> soxr's recipe names (Resample's `quality`)
_QUALITY = {"quick": "QQ", "low": "LQ", "medium": "MQ", "high": "HQ", "very_high": "VHQ",
            "veryhigh": "VHQ", "best": "VHQ", "qq": "QQ", "lq": "LQ", "mq": "MQ", "hq": "HQ",
            "vhq": "VHQ"}


def is_pipeline_file(doc: Any) -> bool:
    """True for a document in the pipeline-file shape: no `metadata`, a `nodes` list and at
    least one node whose params are under `config`."""
    if not isinstance(doc, Mapping) or "metadata" in doc:
        return False
    nodes = doc.get("nodes")
    return isinstance(nodes, list) and any(isinstance(n, Mapping) and "config" in n
                                           for n in nodes)


def pipeline_file_to_native(doc: Mapping, fail: Callable[..., Any]) -> tuple[dict, list[str]]:
    """The native manifest a pipeline file stands for, and the warnings (one line each):

    - top-level `name` and `description` become `metadata`; `version` ("1.0", the file's own)
      becomes the manifest's `v1`;
    - `AudioInput` becomes a `Resample` to its `sample_rate` under the same id (the run's input
      is `--input`; the file asks for 16 kHz for Whisper), or is dropped without one;
      `AudioOutput` is dropped (the run's output is `--output`) and what fed it feeds `output`;
    - the other types run as the upstream aliases here (`SileroVAD` -> SileroVADNode,
      `WhisperSTT` -> RustWhisperNode, `OllamaLLM` -> Respond's http engine at Ollama's local
      address, `KokoroTTS` -> KokoroTTSNode, `AudioResample` -> Resample), params renamed;
    - `executor: multiprocess` is dropped: each node runs on its own type's executor (the
      speech nodes on a worker thread).

    `fail(problem, node_id=None)` raises: a node that is not a mapping, a `RemotePipelineNode`
    (a server's pipeline over gRPC: nothing here to call), an unknown node type."""
    warnings: list[str] = []
    metadata = {k: doc[k] for k in ("name", "description") if isinstance(doc.get(k), str)}
    for key in sorted(set(doc) - {"name", "description", "version", "nodes", "connections"}):
        warnings.append(f"top-level key '{key}' is not part of a pipeline file; ignored")
    if not isinstance(doc.get("connections"), (list, type(None))):
        fail("'connections' must be a list of {from, to} mappings")
    nodes: list[dict] = []
    starts: list[dict] = []       # input -> each AudioInput kept as its resampler
    into: dict[str, str] = {}     # a dropped node's id -> the session end standing for it
    for i, raw in enumerate(doc["nodes"]):
        if not isinstance(raw, Mapping):
            fail(f"nodes[{i}] must be a mapping with 'id' and 'node_type'")
        node_id, kind = raw.get("id"), raw.get("node_type")
        if not isinstance(node_id, str):
            fail(f"nodes[{i}]: 'id' must be a string, got {type(node_id).__name__}")
        if kind is None:
            fail("missing 'node_type'", node_id)
        if not isinstance(kind, str):
            fail(f"'node_type' must be a string, got {type(kind).__name__}", node_id)
        if kind == "RemotePipelineNode":
            url = (raw.get("config") or {}).get("server_url") if isinstance(
                raw.get("config"), Mapping) else None
            where = f"server_url {url}" if url else "server_url not set"
            fail(f"RemotePipelineNode calls a pipeline on a server over gRPC ({where}); "
                 "remotemedia runs a remote node with executor: process or ray instead, and "
                 "manifests/assistant.yaml is this pipeline run here", node_id)
        if kind not in PIPELINE_FILE_TYPES:
            fail(f"node type {kind!r} is not one a pipeline file uses "
                 f"({', '.join(sorted(PIPELINE_FILE_TYPES))})", node_id)
        config = raw.get("config") or {}
        if not isinstance(config, Mapping):
            fail("'config' must be a mapping", node_id)
        params = _params(kind, config, node_id, fail)
        if kind == "AudioInput" and config.get("channels") not in (None, 1):
            warnings.append(f"node '{node_id}' (AudioInput): channels {config['channels']!r} "
                            f"has no effect: the run's channels are --input's")
        if kind == "AudioOutput" or (kind == "AudioInput" and "rate" not in params):
            into[node_id] = OUTPUT if kind == "AudioOutput" else INPUT
            warnings.append(f"node '{node_id}' ({kind}) dropped: the run's "
                            f"{'output is --output' if kind == 'AudioOutput' else 'input is --input'}")
            continue
        node = {"id": node_id, "node_type": PIPELINE_FILE_TYPES[kind], "params": params}
        if kind == "AudioInput":
            starts.append({"from": INPUT, "to": node_id})
            warnings.append(f"node '{node_id}' (AudioInput): the run's input is --input, "
                            f"resampled to the {params['rate']} Hz it asks for")
        executor = raw.get("executor")
        if executor == "multiprocess":
            warnings.append(f"node '{node_id}': executor 'multiprocess' dropped: it runs on "
                            f"its type's own executor")
        elif executor is not None:
            node["executor"] = executor
        nodes.append(node)
    declared = [n.get("id") for n in doc["nodes"] if isinstance(n, Mapping)]
    for c in doc.get("connections") or []:
        for role in ("from", "to"):
            end = c.get(role) if isinstance(c, Mapping) else None
            if isinstance(end, str) and end not in declared:
                close = difflib.get_close_matches(end, [d for d in declared
                                                        if isinstance(d, str)], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                fail(f"connection {c.get('from')} -> {c.get('to')}: '{role}' names no node "
                     f"of the file{hint}", end)
    connections = []
    for c in doc.get("connections") or []:
        if not isinstance(c, Mapping):
            connections.append(c)     # the native checks name it
            continue
        c = dict(c)   # a non-string end stays as it is: the native checks name it
        c["from"] = INPUT if _end(into, c.get("from")) == INPUT else c.get("from")
        c["to"] = OUTPUT if _end(into, c.get("to")) == OUTPUT else c.get("to")
        if _end(into, c["from"]) or _end(into, c["to"]):
            continue   # an edge between two dropped ends carries nothing
        connections.append(c)
    out = {"version": "v1", "metadata": metadata, "nodes": nodes,
           "connections": starts + connections}
    return out, warnings


def _params(kind: str, config: Mapping, node_id, fail) -> dict:
    names = _PARAMS.get(kind, {})
    params = {}
    for key, value in config.items():
        name = names.get(key, key)
        if name is None:
            continue
        if kind == "AudioResample" and name == "quality":
            if not isinstance(value, str) or value.lower() not in _QUALITY:
                fail(f"'quality' must be one of {', '.join(_QUALITY)}, got {value!r}", node_id)
            value = _QUALITY[value.lower()]
        params[name] = value
    if kind == "WhisperSTT" and config.get("task") == "translate":
        params["translate"] = True
    return params


def _end(into: dict, name):
    """The session end a dropped node stands for, or None (also for an id that is no string)."""
    return into.get(name) if isinstance(name, str) else None
