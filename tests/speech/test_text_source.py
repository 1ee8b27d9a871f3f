"""text:STRING and text:@FILE: pieces as Text frames, UTF-8 checked before anything is written,
empty text, a 10-minute text that streams with a bounded amount of audio per push, and
`remotemedia stream -m manifests/speak.yaml -i text:... -o file:X.wav` as a user runs it."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

import remotemedia as rm
from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io import text as text_io
from remotemedia.io.spec import make_source
from remotemedia.observers import Observer
from remotemedia.runner import StreamRunner
from remotemedia.sentences import MAX_CHARS, sentences
from remotemedia.testing import CollectingSink

FMT = AudioFormat(48000, 1, 960)


def run(cmd, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def frames(source):
    out = []
    with source:
        while (frame := source.read()) is not None:
            out.append(frame)
    return out


# -- the source -------------------------------------------------------------------------------

def test_a_string_becomes_one_text_frame_per_sentence():
    got = frames(make_source("text:Hello there. How are you?\nFine!", FMT))
    assert [f.text for f in got] == ["Hello there.", "How are you?", "Fine!"]
    assert [f.metadata["line"] for f in got] == [1, 1, 2]
    assert all(f.kind == "text" for f in got)


def test_a_file_is_one_utterance_per_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffFirst line.\n\n   \nSecond: line, with ü.\r\nThird".encode())
    source = make_source(f"text:@{path}", FMT)
    assert source.reads() == [("input text", path)]
    assert [f.text for f in frames(source)] == ["First line.", "Second: line, with ü.", "Third"]


def test_at_at_is_a_literal_at_sign():
    assert [f.text for f in frames(make_source("text:@@home", FMT))] == ["@home"]


@pytest.mark.parametrize("spec", ["text:", "text:   ", "text:...", "text:\n\n"])
def test_an_empty_text_gives_no_frames(spec):
    assert frames(make_source(spec, FMT)) == []


def test_text_at_without_a_file_is_a_usage_error():
    with pytest.raises(UsageError, match="text:@ needs a file"):
        make_source("text:@", FMT)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing.txt", "not found"),
    (lambda p: p, "is a directory"),
])
def test_an_unreadable_file_is_a_usage_error(tmp_path, make, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        make_source(f"text:@{make(tmp_path)}", FMT)
    assert info.value.exit_code == 2


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=300), st.integers(0, 300),
       st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80"]),
       st.sampled_from([1, 2, 3, 7, 1 << 16]))
def test_the_first_bad_byte_is_named_wherever_it_is(tmp_path_factory, text, at, bad, chunk):
    # Any valid text with bad bytes put anywhere, read in any chunk size: the offset named is
    # the one Python's own decoder names for the whole file.
    good = text.encode("utf-8")
    data = good[:at] + bad + good[at:]
    try:
        data.decode("utf-8")
        return                       # the insertion happened to be valid (cannot be here)
    except UnicodeDecodeError as exc:
        expected = exc.start
    path = tmp_path_factory.mktemp("t") / "bad.txt"
    path.write_bytes(data)
    old = text_io._CHECK_CHUNK
    text_io._CHECK_CHUNK = chunk
    try:
        with pytest.raises(UsageError) as info:
            make_source(f"text:@{path}", FMT)
    finally:
        text_io._CHECK_CHUNK = old
    assert f"text file {path} is not UTF-8: byte {expected} " in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000), st.integers(1, 300))
def test_sentences_keep_every_word_and_respect_the_limit(text, limit):
    pieces = list(sentences(text, limit))
    assert all(0 < len(p) <= limit and p == p.strip() for p in pieces)
    # nothing said is lost or invented: the letters and digits, in order (a word longer than
    # the limit is cut, and pieces of punctuation alone are dropped)
    assert "".join(c for p in pieces for c in p if c.isalnum()) == \
        "".join(c for c in text if c.isalnum())


# -- runs ---------------------------------------------------------------------------------------

class PerPush(Observer):
    """The audio samples each push delivered: what the run held at once."""

    def __init__(self):
        self.samples = []

    def block_out(self, event):
        self.samples.append(sum(o.array.shape[0] for o in event.outputs if o.kind == "numpy"))


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["thread", "inline"])
def test_a_ten_minute_text_streams_with_bounded_audio_per_push(tmp_path, executor):
    # ~2500 words: over ten minutes of espeak-ng (these short words go by at ~250 a minute),
    # in one line (the worst case: a line is one utterance), so only sentence pieces bound
    # what is held.
    words = ("the report that we wrote last week was read by every member of the team and "
             "they all agreed that it should be sent to the board").split()
    sentence = " ".join(words) + ". "
    text = (sentence * (2500 // len(words) + 1)).strip()
    path = tmp_path / "long.txt"
    path.write_text(text + "\n")
    audio = {"sample_rate": 16000, "block_size": 960, "channels": 1}
    pipeline = rm.Pipeline.from_manifest(
        {"version": "v1", "audio": audio,
         "nodes": [{"id": "speak", "node_type": "Speak", "params": {"engine": "espeak"},
                    "executor": executor}],
         "connections": [{"from": "input", "to": "speak"}, {"from": "speak", "to": "output"}]})
    source = make_source(f"text:@{path}", pipeline.manifest.audio)
    sink = CountingSink(pipeline.manifest.output_format)
    observer = PerPush()
    runner = StreamRunner(pipeline, source, sink, observers=[observer])
    stats = runner.run()
    total_s = sink.samples / 16000
    assert total_s > 9.5 * 60, total_s                 # it really is a long text
    # one piece (MAX_CHARS characters, ~15 s of speech) per push, never the text
    bound = 30 * 16000
    assert max(observer.samples) <= bound
    if executor == "inline":
        assert runner.session.node("speak").peak_held_samples <= bound
    assert len(observer.samples) > 50
    assert stats["stop_reason"] == "end_of_input" and stats["errors"] == 0
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0


class CountingSink(CollectingSink):
    """Counts samples and keeps none (a long run must not hold its audio in the test)."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self.samples = 0

    def write(self, frame):
        self.samples += frame.array.shape[0]


def test_speak_manifest_says_a_line_into_a_wav(remotemedia_cmd, manifests_dir, tmp_path):
    out = tmp_path / "hello.wav"
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "speak.yaml"),
                                  "-i", "text:Hello there", "-o", f"file:{out}", "--json"])
    assert proc.returncode == 0, proc.stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 48000 and 0.4 < len(audio) / rate < 3.0
    assert np.sqrt(np.mean(audio ** 2)) > 0.01          # speech, not silence
    assert len(audio) % 960 == 0


def test_an_empty_text_is_an_empty_wav_and_success(remotemedia_cmd, manifests_dir, tmp_path):
    out = tmp_path / "empty.wav"
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "speak.yaml"),
                                  "-i", "text:", "-o", f"file:{out}"])
    assert proc.returncode == 0, proc.stderr
    info = sf.info(out)
    assert info.frames == 0 and info.samplerate == 48000


def test_a_file_that_is_not_utf8_is_one_line_exit_2_and_writes_nothing(
        remotemedia_cmd, manifests_dir, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Fine line.\nCaf\xe9 au lait.\n".encode("latin-1"))
    out = tmp_path / "out.wav"
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "speak.yaml"),
                                  "-i", f"text:@{bad}", "-o", f"file:{out}"])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"remotemedia: error: text file {bad} is not UTF-8: byte 14 (0xe9) "
                     f"invalid continuation byte"], proc.stderr
    assert not out.exists()


def test_a_missing_voice_is_one_line_exit_2(remotemedia_cmd, tmp_path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: v1\nnodes:\n  - {id: speak, node_type: Speak, params: {engine: espeak, "
        "voice: zz-none}}\nconnections:\n  - {from: input, to: speak}\n"
        "  - {from: speak, to: output}\n")
    out = tmp_path / "out.wav"
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifest), "-i", "text:Hi",
                                  "-o", f"file:{out}"])
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "node 'speak'" in proc.stderr and "zz-none" in proc.stderr
    assert not out.exists()


def test_the_output_cannot_overwrite_the_text(remotemedia_cmd, manifests_dir, tmp_path):
    text = tmp_path / "t.wav"
    text.write_text("Hello.\n")
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "speak.yaml"),
                                  "-i", f"text:@{text}", "-o", f"file:{text}"])
    assert proc.returncode == 2, proc.stderr
    assert text.read_text() == "Hello.\n"


def test_max_chars_is_what_the_source_cuts_at():
    assert max(len(p) for p in sentences("word " * 500)) <= MAX_CHARS


def test_a_paced_text_run_takes_the_time_of_its_audio():
    # Text has no clock: in real time the run is paced by the audio it became (a second ahead
    # for synthesis), not by the number of Text frames.
    from remotemedia.runner import TEXT_LEAD_S
    from remotemedia.testing import MockClock
    pipeline = rm.Pipeline.from_manifest(
        {"version": "v1", "audio": {"sample_rate": 16000, "block_size": 320, "channels": 1},
         "nodes": [{"id": "speak", "node_type": "Speak", "params": {"engine": "espeak"}}],
         "connections": [{"from": "input", "to": "speak"}, {"from": "speak", "to": "output"}]})
    source = make_source("text:One sentence here. And a second one. A third to end.",
                         pipeline.manifest.audio)
    sink = CollectingSink(pipeline.manifest.output_format)
    clock = MockClock(320 / 16000)
    StreamRunner(pipeline, source, sink, realtime=True, clock=clock).run()
    spoken_s = sum(f.array.shape[0] for f in sink.frames) / 16000
    assert spoken_s > 3 * TEXT_LEAD_S
    assert clock.now() == pytest.approx(spoken_s - TEXT_LEAD_S, abs=1e-9)


@pytest.mark.parametrize("spec", ["text:see a/b.", "text:@notes/today.txt", "text:v1.2"])
def test_a_text_spec_is_never_taken_for_a_bare_file_path(spec):
    from remotemedia.io.spec import bare_path
    assert bare_path(spec) == spec
