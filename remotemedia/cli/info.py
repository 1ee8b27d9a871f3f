"""The commands that look without running: validate, convert-manifest, nodes, devices, ps.
"""

from __future__ import annotations

import os

from ..engine import strictjson
from ..engine.errors import UsageError
from .common import EXIT_OK, _note, _print_stdout, manifest_label, resolve_manifest


def cmd_validate(args) -> int:
    """`remotemedia validate FILE`: load and validate the manifest without running it and print
    to stdout its name, node count, audio format, node order, shape, the chains of linear
    nodes the engine fuses, and warnings. Returns 0;
    an invalid manifest raises ManifestError (exit 2, one line on stderr)."""
    from ..engine.manifest import load_manifest
    from ..engine.fusion import linear_chains
    resolve_manifest(args, "file")
    m = load_manifest(args.file, allow_import=args.allow_import)
    a = m.audio
    print(f"{manifest_label(args.file)}: ok: '{m.name}', {len(m.nodes)} node(s), {a.sample_rate} Hz, "
          f"{a.channels} ch, {a.block_size}-sample blocks; order: {' -> '.join(m.order)}")
    print(f"shape: {m.shape}" + (
        " (no connection names input or output: roots take the input, "
        + "terminal nodes reach the output)" if m.shape == "upstream" else ""))
    origin = m.audio_origin
    print("  audio decided by: " + ", ".join(f"{key} the {origin[key]}" for key in
                                           ("sample_rate", "channels", "block_size")
                                           if key in origin)
          + (f"; a file input's own {' and '.join(sorted(m.weak_audio))} would replace that"
             if m.weak_audio else ""))
    if m.shape == "upstream":
        roots = [c.target for c in m.connections if c.source == "input"]
        sinks = [c.source for c in m.connections if c.target == "output"]
        print(f"  input -> {', '.join(roots)}; {', '.join(sinks)} -> output")
    for chain in linear_chains(m):
        if len(chain) > 1:
            print(f"fused: {' + '.join(chain)} (linear: one multiply by the product of their "
                  f"gains; --no-fuse runs each alone)")
    for warning in [*m.warnings, *_dead_ends(m)]:
        print(f"warning: {warning}")
    return EXIT_OK


def _dead_ends(m) -> list[str]:
    """Nodes whose outputs lead nowhere (no connection leaves them): what they emit (a
    meter's readings, a detector's events, their audio) is never seen. Allowed, since a node
    may only watch, but worth saying before a run that prints nothing."""
    if m.shape == "upstream":
        return []            # terminal nodes reach the output there
    leaving = {c.source for c in m.connections}
    types = {spec.id: spec.node_type for spec in m.nodes}
    return [f"node '{node_id}' ({types[node_id]}): its outputs lead nowhere (no "
            f"connection from it), so what it emits is never seen; connect it toward output"
            for node_id in m.order if node_id not in leaving]


def cmd_convert_manifest(args) -> int:
    """`remotemedia convert-manifest FILE`: write the native form of the manifest as YAML to
    stdout or --output OUT, with the conversion notes on stderr. Returns 0; an invalid
    manifest raises ManifestError and an unwritable OUT raises UsageError (both exit 2)."""
    from ..engine.manifest import native_document
    from .paths import _named, check_paths, manifest_reads
    # never rewrite its own input (`convert-manifest X.yaml -o X.yaml`, or a module it may
    # import), as no run does
    check_paths(reads=manifest_reads(args.file, args.allow_import, what="FILE"),
                writes=_named("--output", args.output))
    resolve_manifest(args, "file")
    doc, notes = native_document(args.file, allow_import=args.allow_import)
    if args.output and args.output.lower().endswith(".json"):
        # a .json is read back with the JSON parser: YAML there would not load
        from ..engine import strictjson
        text = strictjson.dumps(doc, indent=2) + "\n"
    else:
        # dumped so that our YAML 1.2 reader reads it back equal: `1e5` stays a string
        from ..engine.docparse import dump_yaml
        text = (f"# Native form of {os.path.basename(manifest_label(args.file))}, written by "
                f"`remotemedia convert-manifest`.\n"
                + dump_yaml(doc, sort_keys=False, default_flow_style=None))
    for note in notes:
        _note(f"note: {note}")
    if args.output and args.output != "-":     # `-` is stdout, as in every Unix tool
        from ..io.safefile import write_output
        try:
            write_output(args.output, "--output", text)   # never through a planted link
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    else:
        _print_stdout(text.rstrip("\n"))
    return EXIT_OK


def cmd_nodes(args) -> int:
    """`remotemedia nodes`: print every registered node type with its description, upstream
    aliases and parameters (type, default or required, doc), or with --json one indented JSON
    array of their descriptions. Returns 0."""
    from ..engine.node import registry
    described = [cls.describe() for cls in registry.types().values()]
    if args.json:
        print(strictjson.dumps(described, indent=2, default=str))
        return EXIT_OK
    aliases: dict[str, list[str]] = {}
    for d in described:
        if d.get("alias_of"):
            aliases.setdefault(d["alias_of"], []).append(d["node_type"])
    for d in described:
        fan_in = " (fan-in)" if d.get("inputs") == "many" else ""
        tags = []
        if d.get("alias_of"):
            tags.append(f"upstream name for {d['alias_of']}")
        elif d.get("upstream"):
            tags.append("upstream node")
        if aliases.get(d["node_type"]):
            tags.append(f"upstream alias: {', '.join(aliases[d['node_type']])}")
        tag = f"  [{'; '.join(tags)}]" if tags else ""
        print(f"{d['node_type']}{fan_in}: {d['description']}{tag}")
        names = {v: k for k, v in (d.get("param_aliases") or {}).items()}
        for p in d["params"]:
            default = "required" if p["required"] else f"= {p['default']!r}"
            doc = f"  {p['doc']}" if p.get("doc") else ""
            alias = f" (or {names[p['name']]})" if p["name"] in names else ""
            print(f"    {p['name']}{alias}: {p['type']} {default}{doc}")
    return EXIT_OK


def cmd_devices(args) -> int:
    """`remotemedia devices`: print the host APIs and sound devices with the defaults marked, or
    with --json one JSON array of them. Returns 0."""
    from ..io.devices import format_devices, list_devices
    if args.json:
        print(strictjson.dumps([d.as_dict() for d in list_devices()], indent=2))
    else:
        print(format_devices())
    return EXIT_OK


def cmd_ps(args) -> int:
    """`remotemedia ps`: print the running streams with a monitor socket (`stream --monitor`)
    one may attach to, or with --json one JSON array; each stale socket it removed is noted
    on stderr. Returns 0."""
    from ..monitor.ps import list_runs, format_runs
    runs, stale = list_runs()
    if args.json:
        print(strictjson.dumps(runs, indent=2))
    else:
        print(format_runs(runs))
    for path in stale:
        _note(f"removed a stale monitor socket: {path}")
    return EXIT_OK
