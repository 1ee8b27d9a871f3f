"""`batch` resume reuses only reports made from the same manifest, input and version, and says
why it runs the others again; a killed batch leaves no worker process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from remotemedia.batch import input_key
from remotemedia.batch_identity import input_identity, manifest_digest, stale_reason
from remotemedia.testing import wait_until
from tests.integration import test_batch as _batch_tests
from tests.integration.test_batch import batch, chain, strict_loads, write_wav

env = _batch_tests.env   # the fixture: rm_batch_nodes importable by the workers


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    d = tmp_path / "in"
    d.mkdir()
    return [write_wav(d / f"take{i}.wav", 2, seed=i) for i in range(3)]


def summary(out: Path) -> dict:
    return strict_loads((out / "summary.json").read_text())


def gain(tmp_path: Path, db: float, name: str = "gain.yaml") -> Path:
    path = tmp_path / name
    path.write_text("version: v1\nmetadata: {name: g}\n"
                    "audio: {sample_rate: 48000, block_size: 960, channels: 1}\n"
                    f"nodes:\n  - {{id: g, node_type: Gain, params: {{db: {db}}}}}\n"
                    "  - {id: m, node_type: LevelMeter, params: {every: 10}}\n"
                    "connections:\n  - {from: input, to: g}\n  - {from: g, to: m}\n"
                    "  - {from: m, to: output}\n")
    return path


def test_a_resume_with_nothing_changed_reuses_every_report(env, tmp_path, inputs):
    out = tmp_path / "out"
    m = gain(tmp_path, -6)
    assert batch(env, "-m", m, *inputs, "--out", out).returncode == 0
    again = batch(env, "-m", m, *inputs, "--out", out)
    assert again.returncode == 0, again.stderr
    s = summary(out)
    assert (s["resumed"], s["rerun"]) == (3, [])


def test_a_changed_param_runs_every_input_again_and_says_why(env, tmp_path, inputs):
    out = tmp_path / "out"
    assert batch(env, "-m", gain(tmp_path, -6), *inputs, "--out", out).returncode == 0
    again = batch(env, "-m", gain(tmp_path, -12), *inputs, "--out", out)
    assert again.returncode == 0, again.stderr
    s = summary(out)
    assert s["resumed"] == 0 and s["ok"] == 3
    assert [r["reason"] for r in s["rerun"]] == ["the manifest changed"] * 3
    assert "the manifest changed" in again.stderr


def test_a_different_manifest_into_the_same_out_runs_again(env, tmp_path, inputs):
    out = tmp_path / "out"
    assert batch(env, "-m", gain(tmp_path, -6), *inputs, "--out", out).returncode == 0
    other = chain(tmp_path, "Gain", "LevelMeter")
    again = batch(env, "-m", other, *inputs, "--out", out)
    assert again.returncode == 0, again.stderr
    s = summary(out)
    assert s["resumed"] == 0 and {r["reason"] for r in s["rerun"]} == {"the manifest changed"}


@pytest.mark.parametrize("how", ["another file", "same size and mtime, other samples"])
def test_a_replaced_input_runs_again(env, tmp_path, inputs, how):
    out = tmp_path / "out"
    m = gain(tmp_path, -6)
    assert batch(env, "-m", m, *inputs, "--out", out).returncode == 0
    target = inputs[1]
    st = os.stat(target)
    if how == "another file":
        write_wav(target, 3, seed=99)
    else:   # the content changes; size and mtime are put back as they were
        data, rate = sf.read(target, dtype="float32")
        sf.write(target, -data, rate, subtype="FLOAT")
        assert os.stat(target).st_size == st.st_size
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = batch(env, "-m", m, *inputs, "--out", out)
    assert again.returncode == 0, again.stderr
    s = summary(out)
    assert s["resumed"] == 2
    assert [(Path(r["input"]).name, r["reason"].split(" (")[0]) for r in s["rerun"]] == \
        [(target.name, "the input changed")]
    report = strict_loads((out / "reports" / f"{input_key(target)}.json").read_text())
    assert report["identity"]["input"] == input_identity(target)


def test_stale_reason_names_each_part_of_the_identity(tmp_path):
    wav = write_wav(tmp_path / "a.wav", 0.1)
    doc = {"nodes": [{"id": "g", "node_type": "Gain", "params": {"db": -6}}]}
    from remotemedia import __version__
    ok = {"identity": {"manifest": manifest_digest(doc), "input": input_identity(wav),
                       "remotemedia": __version__}}
    assert stale_reason(ok, wav, manifest_digest(doc)) is None
    # the same document spelled with its keys in another order is the same manifest
    same = {"nodes": [{"params": {"db": -6}, "node_type": "Gain", "id": "g"}]}
    assert manifest_digest(same) == manifest_digest(doc)
    assert stale_reason({}, wav, manifest_digest(doc)).startswith("the earlier report")
    old = {"identity": {**ok["identity"], "remotemedia": "0.0.1"}}
    assert stale_reason(old, wav, manifest_digest(doc)).startswith("remotemedia changed")
    wav.unlink()
    assert "cannot be read" in stale_reason(ok, wav, manifest_digest(doc))


# -- a killed batch --------------------------------------------------------------------------------

def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie is dead
    except OSError:
        return False


def test_a_sigkilled_batch_leaves_no_worker_running(env, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(8):
        write_wav(d / f"r{i}.wav", 4, seed=i)
    manifest = chain(tmp_path, "rm_batch_nodes:Slow", "LevelMeter")   # 2 ms a block
    proc = subprocess.Popen([sys.executable, "-m", "remotemedia", "batch", "--manifest",
                             str(manifest), "--allow-import", "rm_batch_nodes", str(d), "--out",
                             str(tmp_path / "out"), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        # the pool's workers (and multiprocessing's resource tracker) are the driver's children
        workers = wait_until(lambda: children(proc.pid) if len(children(proc.pid)) >= 2
                             else None, "the batch's worker processes", timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        wait_until(lambda: not any(alive(p) for p in workers),
                   "every worker of the killed batch to exit", timeout=30,
                   context=lambda: f"still alive: {[p for p in workers if alive(p)]}")
        assert workers and not any(alive(p) for p in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:   # only this test's own: the killed batch's workers
            if alive(p):
                os.kill(p, signal.SIGKILL)
