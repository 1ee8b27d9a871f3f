"""No run writes over what it reads: every path a run reads or writes, compared before
anything is opened for writing.
"""

from __future__ import annotations

import os

from ..io.samefile import check_paths, manifest_reads  # noqa: F401 (the commands' door)


def _named(what: str, path) -> list[tuple[str, object]]:
    return [(what, path)] if path and path != "-" else []  # `-` is stdin or stdout


def _recording_files(directory) -> list[tuple[str, object]]:
    """The files --record DIR writes, so none of them can be an input or another output."""
    if not directory:
        return []
    from ..record import FILES
    return [("--record", os.path.join(directory, name)) for name in FILES]
