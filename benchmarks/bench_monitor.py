"""What watching a run costs the engine: headless, with a monitor client, with the TUI attached.

    .venv/bin/python benchmarks/bench_monitor.py [--seconds 20] [--manifest manifests/voice.yaml]
                                                 [--device system|virtual] [--json]
                                                 [--flood 2000,20000 [--flood-only]]

One benchmark run, five phases, each a real `remotemedia stream` subprocess in real time over the
same manifest and device (JACK's `system` device when a JACK server runs, else the clocked virtual
device), each reporting the engine's per-block latency (its own --json report, the last
RING_SIZE blocks):

    headless        no monitor at all (the baseline)
    monitor 20 Hz   --monitor, and one client in this process reading every snapshot and event
    tui attached    --monitor, and `remotemedia tui --attach PID` drawing in a tmux terminal
    tui in-process  `remotemedia tui` itself running the stream (today's arrangement), in tmux;
                    its numbers come from the stats file its `s` key saves
    headless again  the baseline once more: how far these shared machines drift in one run
    flood N         (--flood N,...) --monitor, and a same-uid client that writes N
                    `{"cmd": "snapshot"}` lines in one go a second into the run and never reads
                    a byte: what a hostile client costs the audio path (drops, xruns, engine max)

Printed per phase: engine latency p50/p99 and each as a ratio to the first headless phase,
frames, xruns and drops; for the monitored phases the monitor thread's own time (busy_s, from
the report's `monitor` section) as a share of the run's wall time and of the engine's time
(the sum of its per-block latencies over the same run). Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remotemedia.monitor.client import MonitorClient  # noqa: E402

PY = sys.executable


def jack_running() -> bool:
    if shutil.which("jack_lsp") is None:
        return False
    r = subprocess.run(["jack_lsp"], capture_output=True, text=True)
    return r.returncode == 0 and "system:" in r.stdout


def stream_args(manifest: Path, spec: str, seconds: float, extra: list[str]) -> list[str]:
    return [PY, "-m", "remotemedia", "stream", "-m", str(manifest), "-i", spec, "-o", spec,
            "--duration", str(seconds), "--json", "--events", os.devnull, *extra]


def finish(proc: subprocess.Popen, may_fail: bool = False) -> dict:
    """The run's --json report. A run that failed is fatal, unless `may_fail` (a flood phase:
    a run that lost its device to the flood is a result) and it still printed its report."""
    out, err = proc.communicate(timeout=120)
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 and not (may_fail and lines):
        raise SystemExit(f"stream failed ({proc.returncode}): {err.decode()[-1500:]}")
    report = json.loads(lines[-1])
    report["exit_code"] = proc.returncode
    return report


def wait_socket(proc: subprocess.Popen) -> None:
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("stream exited before its monitor came up")
        if b"monitor: " in line:
            return


def phase_headless(manifest, spec, seconds) -> dict:
    return finish(subprocess.Popen(stream_args(manifest, spec, seconds, []),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE))


def phase_monitor(manifest, spec, seconds, sock: Path) -> dict:
    proc = subprocess.Popen(stream_args(manifest, spec, seconds, ["--monitor", str(sock)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_socket(proc)
    got = {"snapshot": 0, "event": 0}
    with MonitorClient.attach(str(sock)) as client:
        for msg in client.messages(timeout=seconds + 30):
            kind = msg.get("type")
            if kind in got:
                got[kind] += 1
            if kind == "end":
                break
    report = finish(proc)
    report["client_received"] = got
    return report


def phase_flood(manifest, spec, seconds, sock: Path, lines: int) -> dict:
    """A client that writes `lines` snapshot commands at once and never reads (on a thread:
    its sendall blocks while the monitor throttles it), kept connected until the run ends."""
    proc = subprocess.Popen(stream_args(manifest, spec, seconds, ["--monitor", str(sock)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_socket(proc)
    flooder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    flooder.connect(str(sock))
    payload = b'{"cmd": "snapshot"}\n' * lines

    def flood():
        time.sleep(1.0)                       # into the run, past its first blocks
        try:
            flooder.sendall(payload)
        except OSError:                       # the monitor closed on us: that is an answer too
            pass
    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    try:
        report = finish(proc, may_fail=True)
    finally:
        flooder.close()
        sender.join(5)
    return report


#: a tmux server of our own: a shared one would start our commands with its environment
#: (JACK_DEFAULT_SERVER, XDG_RUNTIME_DIR) instead of this process's
TMUX_SOCKET = f"rm-bench-monitor-{os.getpid()}"


def tmux(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", TMUX_SOCKET, "-f", "/dev/null", *args],
                          capture_output=True, text=True)


def phase_tui_attached(manifest, spec, seconds, sock: Path) -> dict:
    proc = subprocess.Popen(stream_args(manifest, spec, seconds, ["--monitor", str(sock)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_socket(proc)
    name = f"rm-bench-{os.getpid()}"
    tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "36",
         f"{PY} -m remotemedia tui --attach {sock}; sleep 60")
    try:
        report = finish(proc)
    finally:
        tmux("kill-session", "-t", name)
    return report


def phase_tui_in_process(manifest, spec, seconds, folder: Path) -> dict:
    """`remotemedia tui` runs the stream itself; after `seconds` the `s` key saves its stats."""
    name = f"rm-bench-tui-{os.getpid()}"
    tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "36", "-c", str(folder),
         f"{PY} -m remotemedia tui -m {manifest} -i {spec} -o {spec}; sleep 60")
    try:
        time.sleep(seconds + 2.0)     # startup, then `seconds` of audio (the report says how many)
        tmux("send-keys", "-t", name, "s")
        deadline = time.monotonic() + 20
        while not glob.glob(str(folder / "remotemedia-stats-*.json")):
            if time.monotonic() > deadline:
                raise SystemExit("the in-process TUI saved no stats")
            time.sleep(0.2)
        time.sleep(0.3)
        tmux("send-keys", "-t", name, "q")
        path = glob.glob(str(folder / "remotemedia-stats-*.json"))[0]
        return json.loads(Path(path).read_text())
    finally:
        time.sleep(1.0)
        tmux("kill-session", "-t", name)


def row(name: str, report: dict, base: dict | None) -> dict:
    engine = report["latency_us"]["engine"]
    out = {"phase": name, "frames": report["frames_in"],
           "engine_p50_us": engine["p50"], "engine_p99_us": engine["p99"],
           "engine_max_us": engine["max"],
           "xruns": report["xruns"], "drops": report["drops"],
           "stop_reason": report.get("stop_reason")}
    if base is not None:
        b = base["latency_us"]["engine"]
        out["p50_ratio"] = round(engine["p50"] / b["p50"], 3)
        out["p99_ratio"] = round(engine["p99"] / b["p99"], 3)
    mon = report.get("monitor")
    if mon and mon.get("ticks"):
        wall = report["duration_s"]
        out["monitor_busy_s"] = mon["busy_s"]
        out["monitor_busy_max_ms"] = round(1e3 * mon["busy_max_s"], 2) \
            if "busy_max_s" in mon else None
        out["monitor_share_of_wall"] = round(mon["busy_s"] / wall, 5)
        out["monitor_vs_engine_time"] = round(mon["busy_s"] / mon["engine_s"], 3) \
            if mon.get("engine_s") else None
        out["snapshots_sent"] = mon["snapshots_sent"]
        out["snapshots_dropped"] = mon["snapshots_dropped"]
    if "client_received" in report:
        out["client_received"] = report["client_received"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--manifest", default=str(ROOT / "manifests" / "voice.yaml"))
    ap.add_argument("--device", choices=("system", "virtual"), default=None,
                    help="default: system when a JACK server runs, else virtual")
    ap.add_argument("--no-tui", action="store_true", help="skip the two TUI phases")
    ap.add_argument("--flood", default="", metavar="N,...",
                    help="add a phase per N: a client floods N snapshot commands, never reads")
    ap.add_argument("--flood-only", action="store_true",
                    help="only the headless baseline, an idle monitor and the flood phases")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    device = args.device or ("system" if jack_running() else "virtual")
    spec = "device:system" if device == "system" else "virtual"
    manifest = Path(args.manifest).resolve()
    have_tmux = shutil.which("tmux") is not None and not args.no_tui
    folder = Path(tempfile.mkdtemp(prefix="rm-bench-monitor-"))
    sock = folder / "run.sock"
    rows = []
    try:
        base = phase_headless(manifest, spec, args.seconds)
        rows.append(row("headless", base, None))
        if args.flood_only:
            rows.append(row("monitor idle", phase_flood(manifest, spec, args.seconds, sock, 0),
                            base))
        else:
            rows.append(row("monitor 20 Hz", phase_monitor(manifest, spec, args.seconds,
                                                           sock), base))
        for n in [int(x) for x in args.flood.split(",") if x.strip()]:
            rows.append(row(f"flood {n}", phase_flood(manifest, spec, args.seconds, sock, n),
                            base))
        if have_tmux and not args.flood_only:
            rows.append(row("tui attached", phase_tui_attached(manifest, spec, args.seconds,
                                                               sock), base))
            rows.append(row("tui in-process", phase_tui_in_process(manifest, spec,
                                                                   args.seconds, folder), base))
        rows.append(row("headless again", phase_headless(manifest, spec, args.seconds), base))
    finally:
        tmux("kill-server")
        shutil.rmtree(folder, ignore_errors=True)
    print(f"# {manifest.name} on {spec} ({'JACK' if device == 'system' else 'virtual device'})"
          f", {args.seconds:g} s per phase, real time")
    print(f"{'phase':16} {'frames':>6} {'p50 us':>8} {'p99 us':>8} {'p50 x':>6} {'p99 x':>6}"
          f" {'max us':>8} {'xruns':>6} {'drops':>5}  ended; monitor thread")
    for r in rows:
        x = r["xruns"]
        mon = ""
        if "monitor_busy_s" in r:
            mon = (f"{r['monitor_busy_s']:.3f} s busy = {100 * r['monitor_share_of_wall']:.2f}%"
                   f" of wall (longest {r['monitor_busy_max_ms']} ms), "
                   f"{r['monitor_vs_engine_time']}x the engine's time; snapshots "
                   f"{r['snapshots_sent']} sent, {r['snapshots_dropped']} dropped")
        print(f"{r['phase']:16} {r['frames']:>6} {r['engine_p50_us']:>8.1f} "
              f"{r['engine_p99_us']:>8.1f} {r.get('p50_ratio', 1.0):>6.3f} "
              f"{r.get('p99_ratio', 1.0):>6.3f} {r['engine_max_us']:>8.1f} "
              f"{x['input_overflow'] + x['output_underflow']:>6} {r['drops']:>5}  "
              f"{r['stop_reason']}; {mon}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
