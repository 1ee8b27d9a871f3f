"""What a batch report was made from, so that a resumed batch reuses only reports that still
stand: the manifest's canonical content (params included), the input's identity (size, mtime,
SHA-256 of its content) and the remotemedia version.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path


def manifest_digest(doc: dict) -> str:
    """SHA-256 of the manifest document's canonical JSON (keys sorted, params included): two
    documents that mean the same run have the same digest whatever their spelling."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_identity(path) -> dict:
    """An input file's identity: `size` (bytes), `mtime_ns`, `sha256` of its content. OSError
    when it cannot be read. A FIFO or other stream has none (`{"stream": True}`): reading it
    to hash it would take the audio the run reads, and what it carries next time is unknown,
    so a report of one is never reused."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return {"stream": True}
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def _version() -> str:
    from . import __version__
    return __version__


def stale_reason(report: dict, path: Path, manifest: str) -> str | None:
    """Why an earlier "ok" report cannot stand for `path` under the manifest whose digest is
    `manifest`, or None when it can: the manifest, the input (size, mtime, content) and the
    remotemedia version must all be the ones it was made with."""
    identity = report.get("identity")
    if not isinstance(identity, dict):
        return "the earlier report does not say what it was made from"
    if identity.get("remotemedia") != _version():
        return f"remotemedia changed ({identity.get('remotemedia')} -> {_version()})"
    if identity.get("manifest") != manifest:
        return "the manifest changed"
    then = identity.get("input") or {}
    if then.get("stream"):
        return "the input is a stream (a FIFO): what it carries now is not known"
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"the input cannot be read now ({exc.strerror})"
    if then.get("size") != st.st_size:
        return f"the input changed (size {then.get('size')} -> {st.st_size} bytes)"
    if then.get("mtime_ns") != st.st_mtime_ns:
        return "the input changed (modified since)"
    try:
        now = input_identity(path)
    except OSError as exc:
        return f"the input cannot be read now ({exc.strerror})"
    if then.get("sha256") != now.get("sha256"):
        return "the input changed (content)"
    return None
