"""Every text file a command is given is read once and bounded, as manifests are: `/dev/zero` or
a FIFO that never ends is refused in one line (exit 2) instead of read for ever, and a FIFO is
not emptied by a check before the run reads it. Before: `--arrivals /dev/zero`, `batch
@/dev/zero`, `text:@/dev/zero` and `converse --timing /dev/zero` hung; `text:@FIFO` read the
FIFO to check it and then waited for ever for a second writer (SIGTERM could not end it); an
arrivals index of 10**22 was an OverflowError traceback, and b99999999999 asked numpy for an
800 GB array."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.text import TextSource
from remotemedia.replay import parse_arrivals

MAX_ARRIVAL_BLOCKS = 1 << 24   # remotemedia.replay's (not imported: the test runs before it)
from remotemedia.testing import chain, to_yaml

CMD = [sys.executable, "-m", "remotemedia"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    sf.write(tmp_path / "take.wav", np.zeros(4800, np.float32), 48000)
    return tmp_path


@pytest.mark.parametrize("args,said", [
    (["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "null", "--arrivals", "/dev/zero"],
     "--arrivals: /dev/zero is longer than"),
    (["batch", "-m", "p.yaml", "@/dev/zero", "--out", "out"],
     "batch: list file /dev/zero is longer than"),
    (["stream", "-i", "text:@/dev/zero", "-o", "null", "PassThrough"],
     "text file /dev/zero is not a regular file and holds more than"),
], ids=["arrivals", "batch list", "text input"])
def test_an_endless_file_is_refused_in_one_line(files, args, said):
    done = subprocess.run(CMD + args, capture_output=True, cwd=files, timeout=120)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("remotemedia: error:")]
    assert len(errors) == 1 and said in errors[0] and "Traceback" not in err, err
    assert not (files / "out").exists()


def test_a_cost_file_that_never_ends_is_refused():
    from remotemedia.converse import Costs, ScriptError
    with pytest.raises(ScriptError, match="--timing: /dev/zero is longer than"):
        Costs.load("/dev/zero")


@pytest.mark.timeout(60)   # before the fix it waited for ever for a second writer
def test_a_text_fifo_is_read_once_and_whole(tmp_path):
    fifo = tmp_path / "say.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("Hello there.\nGood bye.\n"),
                              daemon=True)
    writer.start()
    source = TextSource(AudioFormat(), path=fifo)   # made first, as stream makes it
    try:
        with source:
            pieces = []
            while (piece := source.read()) is not None:
                pieces.append(piece.text)
    finally:
        writer.join(10)
    assert pieces == ["Hello there.", "Good bye."]


def test_a_text_line_of_any_length_is_taken_in_pieces(tmp_path):
    from remotemedia.io.text import MAX_LINE
    path = tmp_path / "long.txt"
    path.write_text("a" * (3 * MAX_LINE + 5))     # no line break, no sentence end
    with TextSource(AudioFormat(), path=path) as source:
        sizes = []
        while (piece := source.read()) is not None:
            sizes.append(len(piece.text))
    assert sum(sizes) == 3 * MAX_LINE + 5 and max(sizes) <= MAX_LINE


@given(index=st.one_of(st.integers(0, 10 ** 30), st.sampled_from(
    [MAX_ARRIVAL_BLOCKS, MAX_ARRIVAL_BLOCKS * 960, 10 ** 22])),
    block=st.booleans())
@settings(max_examples=80, deadline=None)
def test_any_arrival_index_is_taken_or_one_line(tmp_path_factory, index, block):
    path = tmp_path_factory.mktemp("arr") / "a.txt"
    path.write_text(f"{'b' if block else ''}{index}: 10\n")
    try:
        times = parse_arrivals(path, 960, 48000)
    except UsageError as exc:
        assert "\n" not in str(exc) and "past the" in str(exc)
        assert index >= MAX_ARRIVAL_BLOCKS * (1 if block else 960)
    else:
        assert len(times) <= MAX_ARRIVAL_BLOCKS
