"""A recording's files are read only as the recorder made them, regular files: a link to
/dev/zero or a FIFO put in a recording (one handed over by someone else) is refused in one line,
exit 2. Before: `replay` of a recording whose report.json, events.jsonl or versions.json was a
link to /dev/zero read until the kernel's OOM killer ended it (exit 137, other processes at
risk); a FIFO manifest.json waited for ever. The child runs under a 2 GiB address-space limit
so that the fault, if it comes back, fails this test instead of the machine."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from remotemedia.record import FILES
from remotemedia.testing import chain, to_yaml

CMD = [sys.executable, "-m", "remotemedia"]
TEXT_FILES = [f for f in FILES if not f.endswith(".wav") and f != "timeline.csv"]


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    base = tmp_path_factory.mktemp("rec")
    (base / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    sf.write(base / "take.wav", np.full(9600, 0.25, np.float32), 48000)
    done = subprocess.run(CMD + ["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "null",
                                 "--record", "rec"], cwd=base, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return base / "rec"


@pytest.mark.parametrize("name", TEXT_FILES)
@pytest.mark.parametrize("what", ["link to /dev/zero", "fifo"])
def test_a_recording_file_that_is_not_regular_is_refused(recording, tmp_path, name, what):
    rec = tmp_path / "rec"
    shutil.copytree(recording, rec)
    (rec / name).unlink()
    if what == "fifo":
        os.mkfifo(rec / name)
    else:
        (rec / name).symlink_to("/dev/zero")
    done = subprocess.run(CMD + ["replay", str(rec)], capture_output=True, timeout=120,
                          preexec_fn=_limit, stdin=subprocess.DEVNULL)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err[-500:]
    errors = [ln for ln in err.splitlines() if ln.startswith("remotemedia: error:")]
    assert len(errors) == 1 and "not a regular file" in errors[0], err[-500:]
