"""The monitor's socket lives only in a folder no other user controls: a folder another user
owns, or one group or others can write without /tmp's sticky bit, is refused in one line
before anything is written, and at exit the run removes only the socket it made. Before: any
folder was taken, and the unlink at exit went by name through a folder another user could
rearrange, removing whatever stood there then."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from remotemedia.engine.errors import UsageError
from remotemedia.monitor.server import Monitor

NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base():
    folder = Path(tempfile.mkdtemp(prefix="rm-sockdir-", dir="/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stream(sock: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "remotemedia", "stream", "-m", str(ROOT / "manifests/passthrough.yaml"),
         "-i", "sine:440", "-o", str(out), "--duration", "0.2", "--monitor", str(sock)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("owner, mode", [(NOBODY, 0o755), (0, 0o777), (0, 0o775)])
def test_a_folder_another_user_controls_is_refused_before_anything_is_written(base, owner, mode):
    if os.geteuid() != 0 and owner != os.geteuid():
        pytest.skip("giving a folder to another uid needs root")
    folder = base / "shared"
    folder.mkdir()
    os.chown(folder, owner, owner)
    os.chmod(folder, mode)
    out = base / "out.wav"
    run = _stream(folder / "m.sock", out)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to serve a socket there" in lines[0], run.stderr
    assert str(folder) in lines[0]
    assert not out.exists() and not (folder / "m.sock").exists()


def test_a_sticky_shared_folder_like_tmp_and_a_private_one_are_taken(base):
    sticky = base / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    for folder in (sticky, base):
        monitor = Monitor(None, socket_path=folder / "m.sock")
        assert (folder / "m.sock").is_socket()
        monitor.close()
        assert not (folder / "m.sock").exists()


def test_at_exit_only_the_socket_the_run_made_is_removed(base):
    path = base / "m.sock"
    monitor = Monitor(None, socket_path=path)
    os.rename(path, base / "moved.sock")
    path.write_text("someone else's file\n")     # what stands at the name at exit
    monitor.close()
    assert path.read_text() == "someone else's file\n"


def test_the_check_names_the_folder_and_the_owner(base):
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another uid needs root")
    folder = base / "theirs"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(UsageError, match=f"belongs to uid {NOBODY}"):
        Monitor(None, socket_path=folder / "m.sock")
