"""No run writes over what it reads: every path a command reads (the manifest, the modules it
imports, its inputs, list and arrival files) and every path it writes, compared before anything
is opened for writing. Every command and the TUI's start go through `check_paths`.
"""

from __future__ import annotations

import os
import sys

from ..engine.errors import UsageError


def check_paths(reads: list[tuple[str, object]], writes: list[tuple[str, object]]) -> None:
    """Refuse a run that would write over something it reads or writes elsewhere, before
    anything is opened for writing: `--events take.wav` would truncate `--input file:take.wav`,
    `--trace m.yaml` the manifest. Paths are compared by real path (symlinks, `..`, relative
    spellings) and, where both exist, by inode (hard links). `reads`/`writes` are (what, path)
    pairs such as ("--input", "take.wav"). Raises UsageError naming both uses."""
    def key(path) -> bytes:
        return os.path.realpath(os.fsencode(path))

    earlier = [(what, path, key(path)) for what, path in reads]
    for what, path in writes:
        real = key(path)
        for other_what, other_path, other_real in earlier:
            if real == other_real or _same_inode(real, other_real):
                raise UsageError(f"{what} {os.fsdecode(os.fsencode(path))} is the same file as "
                                 f"{other_what} {os.fsdecode(os.fsencode(other_path))}: the run "
                                 f"would overwrite it (nothing was opened)")
        earlier.append((what, path, real))


def manifest_reads(manifest, allow_import=(), what: str = "--manifest") \
        -> list[tuple[str, object]]:
    """What a command read to build its graph, as (what, path) pairs for `check_paths`: the
    manifest file (a path; nothing for stdin, a graph line or a document) and the source file
    of each `--allow-import` module that is imported by now (validation imports them)."""
    reads: list[tuple[str, object]] = []
    if isinstance(manifest, (str, bytes, os.PathLike)) and os.fsdecode(manifest) != "-":
        reads.append((what, manifest))
    for name in allow_import or ():
        path = _module_file(name)
        if path:
            reads.append((f"--allow-import {name}", path))
    return reads


def _module_file(name: str):
    """The source file of module `name`, without running any code: from sys.modules when it
    was imported, else found by the import system's finders (for a dotted name, only when its
    parent package is imported: finding it would run the parent's __init__). None when there
    is no file (a built-in, a namespace package, a module that is nowhere)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return None
    import importlib.util
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def _same_inode(a: bytes, b: bytes) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
