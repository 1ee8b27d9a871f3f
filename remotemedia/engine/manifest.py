"""Manifests: parse JSON or YAML, validate everything before any audio flows.

Shape (compatible with the upstream's):

    version: v1
    metadata: {name: ..., description: ...}
    audio: {sample_rate: 48000, block_size: 960, channels: 1}    # optional defaults
    on_error: fail                                               # or skip; per node too
    nodes:
      - {id: gain, node_type: Gain, params: {db: -6}}
    connections:
      - {from: input, to: gain}
      - {from: gain, to: output}

Every failure is a `ManifestError` whose one-line message names the file, the node id where
there is one, and the problem.

Two shapes (the README's "Manifests written for the upstream"). A manifest is in the *upstream
shape* when none of its connections names `input` or `output` (an empty list included); it then
runs as the upstream runs it: `upstream_to_native()` rewrites it into the native shape before the
checks below, with every node that has no incoming edge fed from `input`, every node with no
outgoing edge (or marked `is_output_node: true`) sent to `output`, the upstream's extra keys
accepted (a warning for each that has no effect here), `version` `v1` or `1.0`,
`metadata.cli_defaults` as weak audio defaults and blocks of `cli_defaults.chunk_size` or 4000
samples. Several incoming edges into a one-input node interleave in arrival order, as upstream;
where two of them carry audio the manifest loads with a warning naming the edges (in a native
manifest that stays an error). Warnings never stop a load: they are kept on `Manifest.warnings` for
`remotemedia validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from .errors import ManifestError
from .loader import parse_manifest_text, read_manifest_document  # noqa: F401 (re-exported)
# the names both shapes use, and the upstream's, re-exported here (engine/manifest_keys.py)
from .manifest_keys import (INPUT, NATIVE, OUTPUT, RESERVED_IDS, RUNTIME_HINTS,  # noqa: F401
                            UPSTREAM, UPSTREAM_AUDIO, UPSTREAM_BLOCK_SIZE, UPSTREAM_NODE_KEYS,
                            NODE_KEYS as _NODE_KEYS)
from .executors import INLINE, executors
from .node import (DEFAULT_BLOCK_SIZE, DEFAULT_CHANNELS, DEFAULT_SAMPLE_RATE, AudioFormat, Node,
                   NodeRegistry, UnknownNodeType, audio_value_problem,
                   registry as default_registry)
from .numbers import as_float, shown
from .precedence import REPLACEABLE, Decision, decide
from .pipeline_file import is_pipeline_file, pipeline_file_to_native
from .upstream_shape import manifest_shape, upstream_to_native

SUPPORTED_VERSIONS = ("v1",)
UPSTREAM_VERSIONS = ("v1", "1.0")
ON_ERROR = ("fail", "skip", "restart")  # restart: a new worker thread / process / ray actor
QUEUE_POLICIES = ("block", "drop_oldest", "drop_newest")

DEFAULT_AUDIO = AudioFormat(sample_rate=DEFAULT_SAMPLE_RATE, channels=DEFAULT_CHANNELS,
                            block_size=DEFAULT_BLOCK_SIZE)

_TOP_KEYS = {"version", "metadata", "audio", "nodes", "connections", "on_error"}
_CONN_KEYS = {"from", "to", "input"}


@dataclass(frozen=True)
class NodeSpec:
    """One node of a validated manifest: its id, type name and class, checked params (names
    as the class declares them, defaults filled in), executor ("inline", "process", "ray",
    ...), on_error policy, queue size and policy for queued executors, and the Ray resources
    (CPUs, GPUs, memory) of a ray executor."""

    id: str
    node_type: str
    node_class: type[Node]
    params: Mapping[str, Any]
    executor: str = "inline"
    on_error: str = "fail"
    queue_size: int = 8
    queue_policy: str = "block"
    resources: Mapping[str, float] = field(default_factory=dict)   # executor: ray only


@dataclass(frozen=True)
class Connection:
    """One edge: `source` (a node id or "input") to `target` (a node id or "output"), arriving
    under `input`."""

    source: str
    target: str
    input: str          # the input name at the target; defaults to the source id
    #: a connection into one of the target's `feedback_inputs` that closes a cycle (an echo
    #: canceller's `reference` from the node that feeds the output): not part of the order;
    #: what the source sends reaches the target through its `feedback()` hook, later, and the
    #: target does not wait for it
    feedback: bool = False


@dataclass(frozen=True)
class Manifest:
    """A validated manifest, immutable: the audio format (Hz, channels, samples per block),
    nodes, connections, their topological `order`, the output and merged input format of
    every node, the shape it was read in ("native" or "upstream") and its warnings, one line
    each. Built by load_manifest()/validate_manifest(), which raise ManifestError."""

    source: str
    version: str
    metadata: Mapping[str, Any]
    audio: AudioFormat
    nodes: tuple[NodeSpec, ...]
    connections: tuple[Connection, ...]
    order: tuple[str, ...]                      # topological, stable in manifest order
    formats: Mapping[str, AudioFormat] = field(default_factory=dict)  # output format per node
    input_formats: Mapping[str, AudioFormat] = field(default_factory=dict)  # merged, per node
    shape: str = NATIVE                         # "native" or "upstream" (as read)
    warnings: tuple[str, ...] = ()              # one line each, for `remotemedia validate`
    #: rate/channels decided below the input file in the precedence (engine/precedence.py):
    #: a file input's own format replaces them (validate_manifest's `input_format`)
    weak_audio: frozenset = frozenset()
    #: per audio key, the layer of engine/precedence.py that decided it
    audio_origin: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """metadata.name, else the file name without its suffix."""
        return str(self.metadata.get("name") or Path(self.source).stem)

    def node(self, node_id: str) -> NodeSpec:
        """The NodeSpec with id `node_id`; KeyError if there is none."""
        for spec in self.nodes:
            if spec.id == node_id:
                return spec
        raise KeyError(node_id)

    @property
    def output_format(self) -> AudioFormat:
        """The format of the audio reaching `output` (validation made every branch agree)."""
        fmts = [f for f in _output_formats(self.connections, self.formats, self.audio).values()
                if f.carries_audio]
        return fmts[0] if fmts else self.audio


# -- parsing: engine/loader.py (bounded: engine/docparse.py LIMITS) -----------------------------

# -- validation -----------------------------------------------------------------------------------

def load_manifest(src: Any, *, allow_import: Iterable[str] = (),
                  registry: NodeRegistry | None = None,
                  audio_overrides: Mapping[str, Any] | None = None,
                  input_format: Mapping[str, Any] | None = None) -> Manifest:
    """Parse and validate a manifest; raise ManifestError naming the first problem."""
    doc, name = read_manifest_document(src)
    return validate_manifest(doc, source=name, allow_import=allow_import,
                             registry=registry or default_registry,
                             audio_overrides=audio_overrides, input_format=input_format)


def validate_manifest(doc: dict, *, source: str, allow_import: Iterable[str] = (),
                      registry: NodeRegistry = default_registry,
                      audio_overrides: Mapping[str, Any] | None = None,
                      input_format: Mapping[str, Any] | None = None) -> Manifest:
    """Checks a parsed manifest document and returns the Manifest: keys, version, audio,
    nodes (types resolved in `registry`, params checked, deprecated param names renamed with
    a warning), connections, order (no cycles), reachability and the audio format through
    the graph. The input's format (sample_rate in Hz, channels, block_size in samples) is
    decided by engine/precedence.py: `audio_overrides` (the command line), the document's
    `audio` block, `input_format` (an input file's own sample_rate and channels), what the
    nodes receiving the input declare, `metadata.cli_defaults`, the defaults. An
    upstream-shape document is translated first (engine/upstream_shape.py). ManifestError names
    the first problem, the source and the node."""
    def fail(problem: str, node_id: str | None = None):
        raise ManifestError(problem, source=source, node_id=node_id)

    warnings: list[str] = []
    if is_pipeline_file(doc):
        doc, warnings = pipeline_file_to_native(doc, fail)
    shape = manifest_shape(doc)
    defaults, cli = DEFAULT_AUDIO, {}
    if shape == UPSTREAM:
        doc, warnings, _ = upstream_to_native(doc, fail)
        defaults, cli = UPSTREAM_AUDIO, _cli_defaults(doc)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        fail(f"unknown top-level key '{unknown[0]}' (expected: {', '.join(sorted(_TOP_KEYS))})")
    version = doc.get("version")
    if version is None:
        fail("missing 'version' (expected 'v1')")
    supported = UPSTREAM_VERSIONS if shape == UPSTREAM else SUPPORTED_VERSIONS
    if str(version) not in supported:
        fail(f"unsupported version {version!r} (supported: {', '.join(supported)})")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        fail("'metadata' must be a mapping")
    block = _check_audio(doc.get("audio"), fail)
    default_on_error = doc.get("on_error", "fail")
    if default_on_error not in ON_ERROR:
        fail(f"'on_error' must be one of {', '.join(ON_ERROR)}, got {default_on_error!r}")

    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        fail("'nodes' must be a non-empty list")
    specs: list[NodeSpec] = []
    seen: set[str] = set()
    allow_import = tuple(allow_import)
    for i, raw in enumerate(raw_nodes):
        specs.append(_check_node(raw, i, seen, fail, registry, allow_import, default_on_error,
                                 warnings))
    by_id = {s.id: s for s in specs}

    raw_conns = doc.get("connections")
    if not isinstance(raw_conns, list) or not raw_conns:
        fail("'connections' must be a non-empty list (start one at 'input')")
    connections = [_check_connection(raw, i, by_id, fail) for i, raw in enumerate(raw_conns)]
    for raw, c in zip(raw_conns, connections):
        spec = by_id.get(c.target)
        if "input" in raw and spec is not None and spec.node_class.inputs != "many":
            warnings.append(f"connection {c.source} -> {c.target}: 'input: {c.input}' has no "
                            f"effect ({spec.node_class.node_type} takes one input)")
    connections = _mark_feedback(connections, by_id, fail)
    forward = [c for c in connections if not c.feedback]

    order = _topological_order(specs, forward, fail)
    _check_reachable(specs, forward, fail)
    decision = decide({
        "command line": audio_overrides, "audio block": block, "input file": input_format,
        "nodes": _declared_by_nodes(order, by_id, connections), "cli_defaults": cli,
        "default": {"sample_rate": defaults.sample_rate, "channels": defaults.channels,
                    "block_size": defaults.block_size}})
    audio = decision.format
    for key in ("sample_rate", "channels", "block_size"):
        # the layers checked above plus what an input file's header or a node declares
        problem = audio_value_problem(key, getattr(audio, key))
        if problem:
            fail(f"the {key} from the {decision.origin[key]} {problem}")
    weak = frozenset(k for k in ("sample_rate", "channels")
                     if decision.origin[k] in REPLACEABLE - {"input file"})
    formats, input_formats = _propagate_formats(order, by_id, connections, audio, fail,
                                                decision)
    _check_fan_in(connections, by_id, formats, fail, warnings if shape == UPSTREAM else None)
    _check_feedback_formats(connections, formats, input_formats, fail)
    _check_output_agrees(forward, formats, audio, fail)
    return Manifest(source=source, version=str(version),
                    metadata=MappingProxyType(dict(metadata)), audio=audio,
                    nodes=tuple(specs), connections=tuple(connections), order=tuple(order),
                    formats=MappingProxyType(formats),
                    input_formats=MappingProxyType(input_formats),
                    shape=shape, warnings=tuple(warnings), weak_audio=weak,
                    audio_origin=decision.origin)


def _check_audio(raw, fail) -> dict:
    """The `audio` block's keys, checked (whole numbers within node.AUDIO_LIMITS)."""
    values: dict = {}
    if raw is not None:
        if not isinstance(raw, dict):
            fail("'audio' must be a mapping of sample_rate, block_size, channels")
        for key, value in raw.items():
            if key not in ("sample_rate", "channels", "block_size"):
                fail(f"unknown key 'audio.{key}' (expected: sample_rate, block_size, channels)")
            problem = audio_value_problem(key, value)
            if problem:
                fail(f"'audio.{key}' {problem}")
            values[key] = value
    return values


def _cli_defaults(doc: Mapping) -> dict:
    """An upstream manifest's metadata.cli_defaults as audio keys (checked by
    upstream_to_native)."""
    cli = (doc.get("metadata") or {}).get("cli_defaults") or {}
    return {target: cli[key] for key, target in (("sample_rate", "sample_rate"),
                                                 ("channels", "channels"),
                                                 ("chunk_size", "block_size")) if key in cli}


class _Unknowable(Exception):
    pass


def _declared_by_nodes(order, by_id, connections) -> dict:
    """The rate and channels the nodes that receive the input unchanged declare
    (Node.declared_input), found by running the format checks with the input's format
    unknown: a node whose input is still unknown there gets the input's. Where such nodes
    disagree, or the checks fail, they decide nothing (the real checks then say why)."""
    def fail(problem, node_id=None):
        raise _Unknowable(problem)
    try:
        _, input_formats = _propagate_formats(order, by_id, connections, AudioFormat(), fail)
    except Exception:   # _Unknowable, or a node's output_format that needs a known rate
        return {}
    wants: dict[str, set] = {"sample_rate": set(), "channels": set()}
    for node_id in order:
        fmt = input_formats[node_id]
        if not fmt.carries_audio:
            continue
        spec = by_id[node_id]
        probe = spec.node_class.__new__(spec.node_class)
        _init_probe(probe, spec)
        try:
            declared = probe.declared_input()
        except Exception:   # a third-party node's: it declares nothing, the real checks run
            continue
        for key, found in wants.items():
            if getattr(fmt, key) is None and getattr(declared, key) is not None:
                found.add(getattr(declared, key))
    return {key: found.pop() for key, found in wants.items() if len(found) == 1}


def _check_node(raw, index, seen, fail, registry, allow_import, default_on_error,
                warnings: list[str] | None = None) -> NodeSpec:
    if not isinstance(raw, dict):
        fail(f"nodes[{index}] must be a mapping with 'id' and 'node_type'")
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not node_id:
        fail(f"nodes[{index}] needs a string 'id'")
    if node_id in RESERVED_IDS:
        fail(f"'{node_id}' is reserved for the session's own end; choose another id", node_id)
    if node_id in seen:
        fail("duplicate node id", node_id)
    seen.add(node_id)
    unknown = sorted(set(raw) - _NODE_KEYS)
    if unknown:
        fail(f"unknown key '{unknown[0]}' (expected: {', '.join(sorted(_NODE_KEYS))})", node_id)
    node_type = raw.get("node_type")
    if not isinstance(node_type, str) or not node_type:
        fail("missing 'node_type'", node_id)
    try:
        cls = registry.resolve(node_type, allow_import)
    except UnknownNodeType as exc:
        fail(str(exc), node_id)
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        fail("'params' must be a mapping", node_id)
    # Nodes in the upstream's family name their camelCase aliases and turn a param they do not
    # know into a warning (upstream manifests carry several), never into a silent fall-back.
    normalize = getattr(cls, "normalize_params", None)
    try:
        # A deprecated param name (Param.aliases) is renamed, with a warning naming the new one.
        params, notes = cls.rename_aliases(params)
        if warnings is not None:
            warnings.extend(f"node '{node_id}': {note}" for note in notes)
        if normalize is not None:
            params, notes = normalize(params)
            if warnings is not None:
                warnings.extend(f"node '{node_id}': {note}" for note in notes)
        checked = cls.check_params(params)
    except ValueError as exc:
        fail(str(exc), node_id)
    executor = raw.get("executor", cls.default_executor)
    known = executors.names()
    if executor not in known:
        fail(f"'executor' must be one of {', '.join(known)}, got {executor!r}", node_id)
    on_error = raw.get("on_error", default_on_error)
    if on_error not in ON_ERROR:
        fail(f"'on_error' must be one of {', '.join(ON_ERROR)}, got {on_error!r}", node_id)
    if on_error == "restart" and executor == INLINE:
        if "on_error" in raw:
            fail("'on_error: restart' needs 'executor: thread', 'executor: process' or "
                 "'executor: ray' (only a worker can restart)", node_id)
        on_error = "fail"   # a manifest-wide restart applies to nodes on a worker only
    if executor != INLINE and cls.inputs == "many":
        fail(f"{node_type} takes several inputs; 'executor: {executor}' runs one-input nodes",
             node_id)
    resources = _check_resources(raw.get("resources"), executor, node_id, fail)
    queue_size = raw.get("queue_size", 8)
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        fail(f"'queue_size' must be a positive integer, got {queue_size!r}", node_id)
    policy = raw.get("queue_policy", "block")
    if policy not in QUEUE_POLICIES:
        fail(f"'queue_policy' must be one of {', '.join(QUEUE_POLICIES)}, got {policy!r}",
             node_id)
    return NodeSpec(node_id, node_type, cls, MappingProxyType(checked), executor, on_error,
                    queue_size, policy, MappingProxyType(resources))


def _check_resources(raw, executor, node_id, fail) -> dict:
    """`resources` of an `executor: ray` node: names to non-negative finite numbers."""
    if raw is None:
        return {}
    if executor != "ray":
        fail("'resources' needs 'executor: ray' (it is what the node asks a Ray cluster for)",
             node_id)
    if not isinstance(raw, dict):
        fail(f"'resources' must be a mapping like {{num_gpus: 1}}, got {raw!r}", node_id)
    out = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            fail(f"'resources' names must be strings, got {name!r}", node_id)
        if as_float(value) is None or value < 0:
            fail(f"'resources.{name}' must be a non-negative number, got {shown(value)}",
                 node_id)
        out[name] = value
    return out


def _check_connection(raw, index, by_id, fail) -> Connection:
    if not isinstance(raw, dict):
        fail(f"connections[{index}] must be a mapping with 'from' and 'to'")
    unknown = sorted(set(raw) - _CONN_KEYS)
    if unknown:
        fail(f"connections[{index}]: unknown key '{unknown[0]}' (expected: from, to, input)")
    src, dst = raw.get("from"), raw.get("to")
    if not isinstance(src, str) or not isinstance(dst, str):
        fail(f"connections[{index}] needs string 'from' and 'to'")
    if src == OUTPUT:
        fail(f"connections[{index}]: 'output' is the session's end and cannot be a source")
    if dst == INPUT:
        fail(f"connections[{index}]: 'input' is the session's start and cannot be a target")
    for end, role in ((src, "from"), (dst, "to")):
        if end not in by_id and end not in RESERVED_IDS:
            from .node import _did_you_mean
            hint = _did_you_mean(end, list(by_id) + [INPUT, OUTPUT])
            fail(f"connection {src} -> {dst}: '{role}' names no node{hint}", end)
    if src == dst:
        fail(f"connection {src} -> {dst} forms a cycle", src)
    name = raw.get("input", src)
    if not isinstance(name, str) or not name:
        fail(f"connection {src} -> {dst}: 'input' must be a non-empty string", dst)
    return Connection(src, dst, name)


def _check_fan_in(connections, by_id, formats, fail, warnings=None) -> None:
    """Several connections into a one-input node: an error where two carry audio (the node would
    see two streams as one), unless `warnings` is given (upstream shape: the upstream interleaves
    them, so the manifest runs and the edges are named in a warning). Events from several nodes
    into one node are fine: they arrive interleaved, in arrival order."""
    incoming: dict[str, list[Connection]] = {}
    for c in connections:
        incoming.setdefault(c.target, []).append(c)
    for target, conns in incoming.items():
        if target == OUTPUT:
            continue
        spec = by_id[target]
        names = [c.input for c in conns]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            fail(f"two connections into it share the input name '{dup}'", target)
        if len(conns) < 2 or spec.node_class.inputs == "many":
            continue
        audio = [c for c in conns if c.source == INPUT or formats[c.source].carries_audio]
        if len(audio) < 2:
            continue
        edges = ", ".join(f"{c.source} -> {c.target}" for c in audio)
        if warnings is None:
            fail(f"{spec.node_type} takes one input but {len(conns)} connections lead into it "
                 f"(from {', '.join(c.source for c in conns)}); use a Mix node to combine them",
                 target)
        warnings.append(f"node '{target}': {len(audio)} audio streams merge into this "
                        f"one-input node ({edges}); it receives their blocks interleaved, "
                        f"as the upstream does (duplicated or interleaved audio)")


def _mark_feedback(connections, by_id, fail) -> list[Connection]:
    """Connections into a node's `feedback_inputs` whose source the target reaches (they close
    a cycle) become feedback connections (Connection.feedback). Such a target is a fan-in node,
    which runs inline, so its feedback() hook is called on the pushing thread."""
    out = []
    for c in connections:
        spec = by_id.get(c.target)
        loops = getattr(spec.node_class, "feedback_inputs", ()) if spec is not None else ()
        if not loops or c.source == INPUT:
            out.append(c)
            continue
        reach, todo = set(), [c.target]
        while todo:
            node = todo.pop()
            for d in connections:
                if d.source == node and d is not c and d.target not in reach:
                    reach.add(d.target)
                    todo.append(d.target)
        if c.source not in reach:
            out.append(c)
            continue
        if c.input not in loops:   # closes a loop, but not into an input that may
            fail(f"connection {c.source} -> {c.target} closes a cycle into input "
                 f"'{c.input}'; {spec.node_class.node_type} takes a loop only into "
                 f"{', '.join(repr(n) for n in loops)}", c.target)
        out.append(Connection(c.source, c.target, c.input, feedback=True))
    return out


def _check_feedback_formats(connections, formats, input_formats, fail) -> None:
    """A feedback connection carries the rate and channels of the node it feeds."""
    for c in connections:
        if not c.feedback:
            continue
        got, want = formats[c.source], input_formats[c.target]
        for name, unit in (("sample_rate", " Hz"), ("channels", " channel(s)")):
            a, b = getattr(got, name), getattr(want, name)
            if a is not None and b is not None and a != b:
                fail(f"feedback connection {c.source} -> {c.target} carries {a}{unit} into "
                     f"a node that runs at {b}{unit}", c.target)


def _topological_order(specs, connections, fail) -> list[str]:
    ids = [s.id for s in specs]
    indegree = {i: 0 for i in ids}
    edges: dict[str, list[str]] = {i: [] for i in ids}
    for c in connections:
        if c.source in edges and c.target in indegree:
            edges[c.source].append(c.target)
            indegree[c.target] += 1
    rank = {i: n for n, i in enumerate(ids)}
    ready = [i for i in ids if indegree[i] == 0]
    order = []
    while ready:
        ready.sort(key=rank.__getitem__)
        node = ready.pop(0)
        order.append(node)
        for nxt in edges[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(ids):
        stuck = [i for i in ids if indegree[i] > 0]
        cycle = _find_cycle(stuck, edges)
        fail(f"connections form a cycle: {' -> '.join(cycle)}", cycle[0])
    return order


def _find_cycle(stuck, edges) -> list[str]:
    """One cycle among `stuck` (the nodes a topological sort could not order): nodes that are
    only downstream of a cycle are peeled off first, so every node left has a successor left
    and the walk must close a loop."""
    stuck_set = set(stuck)
    peeled = True
    while peeled:
        ends = {n for n in stuck_set if not any(m in stuck_set for m in edges[n])}
        stuck_set -= ends
        peeled = bool(ends)
    node = next(n for n in stuck if n in stuck_set)
    path, seen = [], {}
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(n for n in edges[node] if n in stuck_set)
    return path[seen[node]:] + [node]


def _check_reachable(specs, connections, fail) -> None:
    reach = {INPUT}
    changed = True
    while changed:
        changed = False
        for c in connections:
            if c.source in reach and c.target not in reach:
                reach.add(c.target)
                changed = True
    for s in specs:
        if s.id not in reach:
            fail("unreachable from 'input' (no chain of connections leads to it)", s.id)


def _propagate_formats(order, by_id, connections, audio, fail,
                       decision: Decision | None = None):
    """Each node's input format (fan-in inputs merged) and output format, in topological
    order; a node that cannot take its input fails validation (saying where the input's
    format came from, given the `decision`)."""
    formats: dict[str, AudioFormat] = {}
    input_formats: dict[str, AudioFormat] = {}
    incoming: dict[str, list[Connection]] = {}
    for c in connections:
        incoming.setdefault(c.target, []).append(c)
    for node_id in order:
        spec = by_id[node_id]
        ins = {c.input: (audio if c.source == INPUT else formats[c.source])
               for c in incoming.get(node_id, []) if not c.feedback}
        # A feedback input's source comes later in the order: it is taken to carry what the
        # forward inputs carry (_check_feedback_formats checks that it does).
        for c in incoming.get(node_id, []):
            if c.feedback and ins:
                ins[c.input] = next(iter(ins.values()))
        probe = spec.node_class.__new__(spec.node_class)
        _init_probe(probe, spec)
        try:
            if spec.node_class.inputs == "many":
                fmt_in = probe.merge_formats(ins)
            else:
                # Several edges into a one-input node (events, or upstream-shape fan-in): the
                # format is that of the first one carrying audio.
                fmt_in = next((f for f in ins.values() if f.carries_audio),
                              next(iter(ins.values())))
            probe.format = input_formats[node_id] = fmt_in
            formats[node_id] = probe.output_format(fmt_in)
        except ValueError as exc:
            where = "" if decision is None else (
                f" (the run's input: {decision.describe('sample_rate')}, "
                f"{decision.describe('channels')})")
            fail(f"{exc}{where}", node_id)
    return formats, input_formats


def _output_formats(connections, formats, audio) -> dict[str, AudioFormat]:
    return {c.source: audio if c.source == INPUT else formats[c.source]
            for c in connections if c.target == OUTPUT}


def _check_output_agrees(connections, formats, audio, fail) -> None:
    """Every branch that plays audio at `output` must have one rate and channel count: a sink
    plays one stream."""
    playing = {src: f for src, f in _output_formats(connections, formats, audio).items()
               if f.carries_audio}
    first_src, first = next(iter(playing.items()), (None, None))
    for src, fmt in playing.items():
        for name, unit in (("sample_rate", " Hz"), ("channels", " channel(s)")):
            a, b = getattr(first, name), getattr(fmt, name)
            if a is not None and b is not None and a != b:
                fail(f"sends {b}{unit} audio to 'output', which also receives {a}{unit} from "
                     f"'{first_src}' (resample or convert one branch, or send only events)",
                     src)


def _init_probe(probe: Node, spec: NodeSpec) -> None:
    # A lightweight instance for format checks: params set, setup() not run.
    probe.node_id = spec.id
    probe.config = dict(spec.params)
    for name, value in spec.params.items():
        setattr(probe, name, value)


# -- the upstream shape's convert-manifest (the translation itself: engine/upstream_shape.py) -----

def native_document(src: Any, *, registry: NodeRegistry | None = None,
                    allow_import: Iterable[str] = ()) -> tuple[dict, list[str]]:
    """The native equivalent of a manifest (for `remotemedia convert-manifest`), and the notes
    to show with it: explicit `input`/`output` connections, an `audio` block, canonical node
    names (an upstream alias becomes the node it stands for, its params translated), and no
    keys or params that have no effect. The manifest is validated first; a native one comes
    back as it is."""
    registry = registry or default_registry
    doc, name = read_manifest_document(src)
    m = validate_manifest(doc, source=name, registry=registry, allow_import=allow_import)
    notes = list(m.warnings)
    if is_pipeline_file(doc):
        native = pipeline_file_to_native(doc, lambda p, n=None: None)[0]
    elif m.shape == NATIVE:
        return doc, notes
    else:
        native = upstream_to_native(doc, lambda p, n=None: None)[0]
    audio = {"sample_rate": m.audio.sample_rate, "channels": m.audio.channels,
             "block_size": m.audio.block_size}
    nodes = []
    for raw, spec in zip(native["nodes"], m.nodes):
        node = {k: v for k, v in raw.items() if k != "params"}
        params = dict(raw.get("params") or {})
        normalize = getattr(spec.node_class, "normalize_params", None)
        if normalize is not None:
            params, _ = normalize(params)
        canonical = getattr(spec.node_class, "canonical", None)
        if canonical is not None:
            node["node_type"], params = canonical(params)
        if params:
            node["params"] = params
        nodes.append(node)
    out = {"version": "v1", "metadata": dict(native.get("metadata") or {}), "audio": audio}
    if is_pipeline_file(doc):
        # its defaults are the native ones: without an audio block a file input keeps its
        # own rate and channels, as the pipeline file ran
        del out["audio"]
    out["metadata"].pop("cli_defaults", None)
    if "on_error" in native:
        out["on_error"] = native["on_error"]
    out["nodes"] = nodes
    out["connections"] = native["connections"]
    if any("audio streams merge" in w for w in notes):
        notes.append("the native shape refuses audio fan-in into a one-input node: the "
                     "converted manifest will not load until those edges are changed")
    return out, notes
