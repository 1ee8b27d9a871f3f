"""How fast a run notices that its audio server went away, and how fast it is out (issue 17).

    .venv/bin/python benchmarks/bench_device_loss.py [--rounds 3] [--json] [--no-tui]

Each round starts a JACK dummy server of its own (tests/streaming/jack_server.py: the suite's
server is never touched), runs `remotemedia stream` against it in a subprocess and kills the
server (SIGKILL) once about a second of audio has gone through. It prints, per mode (queued,
callback) and output (a WAV file, the device itself):

- report: from the server's death to the stderr line naming the device and what happened
- exit:   from the server's death to the process having exited (files closed, report printed)

and the same for a server that hangs instead of dying (SIGSTOP: only the 2 s stall detection can
tell), for --reconnect (death to the "waiting" line; jackd launched again to the "is back"
line),
and for the TUI in tmux (death to DEVICE LOST on screen, polled every 50 ms).

Times are wall-clock on a shared machine, including the pipe to this process; nothing here
asserts a time (tests/streaming/test_device_loss.py asserts generous bounds).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.streaming.jack_server import JackServer, require_jackd  # noqa: E402
from tests.streaming.test_device_loss import (LOST_LINE, Run, events_written,  # noqa: E402
                                              stream_args, wait_until)


def output_spec(kind: str, folder: Path) -> str:
    return f"file:{folder / 'out.wav'}" if kind == "file" else "default"


def one_loss(mode: str, kind: str, how: str = "kill", source: str = "default") -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-loss-"))
    events = folder / "events.jsonl"
    args = stream_args(mode, output_spec(kind, folder), events, 60)
    args[args.index("--input") + 1] = source
    if source != "default":
        args[args.index("--mode"):args.index("--mode") + 2] = []
    with JackServer(f"bench-{how}-{mode}-{kind}") as server:
        run = Run(args, server.env())
        wait_until(lambda: events_written(events) >= 50, "50 meter readings")
        t0 = server.kill(signal.SIGKILL) if how == "kill" else server.freeze()
        rc = run.wait(timeout=30)
    line = LOST_LINE if how == "kill" else "stopped delivering audio: no audio callback"
    return {"rc": rc, "report_s": run.wait_line(line) - t0, "exit_s": run.exited_at - t0}


def one_reconnect(mode: str, kind: str) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-back-"))
    events = folder / "events.jsonl"
    with JackServer(f"bench-back-{mode}-{kind}") as server:
        run = Run(stream_args(mode, output_spec(kind, folder), events, 3, "--reconnect"),
                  server.env())
        wait_until(lambda: events_written(events) >= 25, "25 meter readings")
        t0 = server.kill(signal.SIGKILL)
        waiting = run.wait_line("waiting for it to come back") - t0
        launched = time.monotonic()
        server.start()
        back = run.wait_line("is back") - launched
        rc = run.wait(timeout=30)
    return {"rc": rc, "waiting_s": waiting, "back_after_launch_s": back,
            "gap": run.report()["device"]["discontinuities"]}


def one_tui() -> dict:
    from tests.tui.test_device_loss_tui import Tmux, frames_in, start_tui, text
    folder = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    tmux = Tmux()
    try:
        with JackServer("bench-tui") as server:
            start_tui(tmux, server, folder / "rc")
            wait_until(lambda: "RUNNING" in text(tmux) and frames_in(tmux) > 25, "RUNNING")
            t0 = server.kill(signal.SIGKILL)
            wait_until(lambda: "DEVICE LOST" in text(tmux), "DEVICE LOST")
            shown = time.monotonic() - t0
            tmux("send-keys", "-t", "tui", "q")
            wait_until((folder / "rc").exists, "exit")
            rc = int((folder / "rc").read_text())
    finally:
        tmux("kill-server", check=False)
    return {"rc": rc, "shown_s": shown}


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms, max {max(values) * 1000:7.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-tui", action="store_true")
    args = ap.parse_args()
    try:
        require_jackd()
    except BaseException as exc:  # pytest's skip outside pytest
        print(f"skipped: {exc}")
        return 0
    rows = []
    for mode in ("queued", "callback"):
        for kind in ("file", "device"):
            got = [one_loss(mode, kind) for _ in range(args.rounds)]
            rows.append({"case": f"killed, {mode}, to {kind}", "runs": got})
            print(f"server killed   {mode:8s} -> {kind:6s}: report "
                  f"{summary([g['report_s'] for g in got])}; exit {summary([g['exit_s'] for g in got])}; exit codes "
                  f"{sorted({g['rc'] for g in got})}", flush=True)
    got = [one_loss("queued", "device", source="sine:440") for _ in range(args.rounds)]
    rows.append({"case": "killed, sine:440 to device (output-only stream)", "runs": got})
    print(f"server killed   sine:440 -> device: report {summary([g['report_s'] for g in got])}"
          f"; exit {summary([g['exit_s'] for g in got])}; exit codes "
          f"{sorted({g['rc'] for g in got})}", flush=True)
    got = [one_loss("queued", "file", how="freeze") for _ in range(args.rounds)]
    rows.append({"case": "hung (SIGSTOP), queued, to file", "runs": got})
    print(f"server hung     queued   -> file  : report {summary([g['report_s'] for g in got])}"
          f"; exit {summary([g['exit_s'] for g in got])}; exit codes "
          f"{sorted({g['rc'] for g in got})}", flush=True)
    for mode, kind in (("queued", "file"), ("callback", "device")):
        got = [one_reconnect(mode, kind) for _ in range(args.rounds)]
        rows.append({"case": f"--reconnect, {mode}, to {kind}", "runs": got})
        print(f"--reconnect     {mode:8s} -> {kind:6s}: waiting line "
              f"{summary([g['waiting_s'] for g in got])}; 'is back' after jackd was launched "
              f"{summary([g['back_after_launch_s'] for g in got])}; exit codes "
              f"{sorted({g['rc'] for g in got})}", flush=True)
    if not args.no_tui:
        got = [one_tui() for _ in range(args.rounds)]
        rows.append({"case": "tui, queued, device to device", "runs": got})
        print(f"tui (tmux)      queued   -> device: DEVICE LOST on screen "
              f"{summary([g['shown_s'] for g in got])}; exit codes after q "
              f"{sorted({g['rc'] for g in got})}", flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
