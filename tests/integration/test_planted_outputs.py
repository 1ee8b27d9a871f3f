"""Every output a SPEC can name (each audio extension, each transcript format, raw:) keeps the
rule of io/safefile.py: in a directory others can write, what another user planted at the
output's name (a link to a file of ours, their own file, a hard link) is refused with one line
and left as it was, and nothing is written through it. Before: `.srt`, `.vtt`, `.txt` and
`.jsonl` transcript outputs opened with O_NOFOLLOW only, so root truncated another user's
file there (and a hard link's target)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.spec import make_sink

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="planting as another uid needs root and setpriv")
OUTPUTS = ["file:{}.wav", "file:{}.flac", "file:{}.ogg", "file:{}.aiff", "file:{}.au",
           "{}.srt", "{}.vtt", "{}.txt", "{}.jsonl", "raw:{}.f32"]
PLANTS = {"symlink": "ln -s {victim} {at}", "file": "echo theirs > {at}",
          "hardlink": "ln {own} {at}"}


@pytest.fixture
def world():
    base = Path(tempfile.mkdtemp(prefix="rm-planted-", dir="/tmp"))
    os.chmod(base, 0o755)
    pub = base / "pub"
    pub.mkdir()
    os.chmod(pub, 0o1777)              # like /tmp
    victim = base / "victim"
    victim.write_bytes(b"precious\n")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(script: str) -> None:
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "sh", "-c", script], check=True, timeout=30)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=st.sampled_from(OUTPUTS), plant=st.sampled_from(sorted(PLANTS)),
       n=st.integers(0, 10 ** 9))
def test_no_output_writes_through_what_another_user_planted(world, spec, plant, n):
    victim = world / "victim"
    before = victim.read_bytes()
    at = world / "pub" / f"o{n}-{plant}"
    own = world / "pub" / f"theirs{n}"
    _as_nobody(f"echo theirs > {own}")
    _as_nobody(PLANTS[plant].format(victim=victim, at=f"{at}.x", own=own))
    name = spec.format(at)
    ext = name.rsplit(".", 1)[1]
    os.rename(f"{at}.x", f"{at}.{ext}")       # the planted entry, at the output's name
    planted = Path(f"{at}.{ext}")
    seen = os.lstat(planted)
    with pytest.raises(UsageError) as refused:
        sink = make_sink(name, AudioFormat())
        try:
            sink.open()
        finally:
            sink.close()
    assert "\n" not in str(refused.value)
    assert victim.read_bytes() == before
    assert os.lstat(planted).st_ino == seen.st_ino and own.read_bytes() == b"theirs\n"
