"""`remotemedia ps`: the runs with a monitor socket in this user's folder.

Each live socket is asked for its `hello` and one snapshot (at most a second each); sockets whose
process is gone are removed and reported.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.errors import RemoteMediaError
from . import protocol


def describe(path: Path, pid: int | None = None, timeout: float = 1.0) -> dict:
    """What a monitor socket says about its run: pid, socket, manifest, input, output, state,
    frames_in, audio_s (seconds of audio pushed), clients. Fields it could not get are None."""
    from .client import MonitorClient
    record = {"pid": pid, "socket": str(path), "manifest": None, "path": None, "input": None,
              "output": None, "state": None, "frames_in": None, "audio_s": None,
              "clients": None}
    try:
        client = MonitorClient(protocol.connect(path, timeout), path)
    except (RemoteMediaError, OSError, ValueError, TimeoutError) as exc:
        record["state"] = f"unreachable: {exc}"
        return record
    try:
        hello = client.hello
        record.update({k: hello.get(k) for k in ("pid", "manifest", "path", "input", "output")})
        try:
            while True:
                msg = client.read(timeout)
                if msg is None:
                    break
                if msg.get("type") == "snapshot":
                    record["state"] = msg.get("state")
                    stats = msg.get("stats") or {}
                    frames = stats.get("frames_in")
                    record["frames_in"] = frames
                    audio = hello.get("audio") or {}
                    if frames is not None and audio.get("sample_rate"):
                        record["audio_s"] = round(frames * audio["block_size"]
                                                  / audio["sample_rate"], 2)
                    # this connection is one of them
                    record["clients"] = (msg.get("monitor") or {}).get("clients")
                    break
        except (TimeoutError, ValueError, OSError):
            pass
    finally:
        client.close()
    return record


def list_runs() -> tuple[list[dict], list[Path]]:
    """The live runs one may attach to (their hello read over each socket); stale sockets
    removed."""
    runs, stale = protocol.live_runs(clean=True)
    return [describe(run.path, run.pid) for run in runs], stale


def format_runs(runs: list[dict]) -> str:
    """The runs as a table for `remotemedia ps`."""
    if not runs:
        return "no running streams with a monitor (start one with `remotemedia stream --monitor`)"
    rows = [("PID", "STATE", "AUDIO", "MANIFEST", "INPUT -> OUTPUT", "SOCKET")]
    for r in runs:
        audio = f"{r['audio_s']:.1f}s" if r.get("audio_s") is not None else "-"
        rows.append((str(r["pid"]), str(r.get("state") or "-"), audio,
                     str(r.get("manifest") or "-"),
                     f"{r.get('input') or '?'} -> {r.get('output') or '?'}", r["socket"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)
