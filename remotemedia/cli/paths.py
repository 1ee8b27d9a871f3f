"""No run writes over what it reads: every path a run reads or writes, compared before
anything is opened for writing.
"""

from __future__ import annotations

import os

from ..engine.errors import UsageError


def check_paths(reads: list[tuple[str, object]], writes: list[tuple[str, object]]) -> None:
    """Refuse a run that would write over something it reads or writes elsewhere, before
    anything is opened for writing: `--events take.wav` would truncate `--input file:take.wav`.
    Paths are compared by real path (symlinks, `..`, relative spellings) and, where both
    exist, by inode (hard links). `reads`/`writes` are (what, path) pairs such as
    ("--input", "take.wav"). Raises UsageError naming both uses."""
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


def _named(what: str, path) -> list[tuple[str, object]]:
    return [(what, path)] if path and path != "-" else []  # `-` is stdin or stdout


def _recording_files(directory) -> list[tuple[str, object]]:
    """The files --record DIR writes, so none of them can be an input or another output."""
    if not directory:
        return []
    from ..record import FILES
    return [("--record", os.path.join(directory, name)) for name in FILES]


def _same_inode(a: bytes, b: bytes) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
