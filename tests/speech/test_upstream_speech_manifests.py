"""The upstream's transcribe manifests (copies in tests/data/upstream-speech) run unchanged with
`remotemedia stream` on a WAV: valid SubRip read back by a parser, cues inside the speech, one
warning for the model they name, nothing serialized or copied by the engine; bad inputs give
one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import srt
import yaml

from remotemedia.engine.manifest import load_manifest

from .speech_audio import ALSA, UPSTREAM, needs_alsa, needs_model, two_phrases_wav

pytestmark = [needs_model, pytest.mark.slow]   # each runs the CLI and the model
TOL_S = 0.15
MANIFESTS = ["transcribe.yaml", "transcribe-srt.yaml", "transcribe-srt-mic-input.yaml",
             "transcribe-word-timestamps.yaml"]


def cli(*args, timeout=300, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL", "LANGUAGE", "THREADS")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "remotemedia", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "two phrases.wav"
    return path, two_phrases_wav(path, rate=48000, channels=2)


@pytest.mark.parametrize("name", MANIFESTS)
def test_upstream_manifest_writes_valid_srt_with_cues_inside_the_speech(name, speech_wav,
                                                                       tmp_path):
    wav, edges = speech_wav
    out = tmp_path / "subtitles.srt"
    proc = cli("stream", "-m", UPSTREAM / name, "-i", f"file:{wav}", "-o", f"file:{out}",
               "--json")
    assert proc.returncode == 0, proc.stderr
    subs = list(srt.parse(out.read_text(encoding="utf-8")))
    assert len(subs) >= 2, out.read_text()
    for sub in subs:
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        assert any(a - TOL_S <= start <= end <= b + TOL_S for a, b in edges), (sub, edges)
        assert all(len(line.encode()) <= 42 for line in sub.content.splitlines())
    text = " ".join(" ".join(s.content for s in subs).split()).lower()
    assert "lazy dog" in text and "detection" in text
    # one warning: the model they name ships in no package, the packaged tiny.en runs instead
    warned = [line for line in proc.stderr.splitlines() if "is not installed here" in line]
    assert len(warned) == 1, proc.stderr
    assert "running the packaged Whisper tiny.en" in warned[0]
    lines = proc.stdout.splitlines()
    stats = json.loads(lines[-1])
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
    assert stats["transcripts"]["written"] == 2
    events = [json.loads(line) for line in lines[:-1]]
    assert sum(1 for e in events if e.get("type") == "transcript" and e["final"]) == 2


def test_the_model_asked_for_in_the_environment_needs_no_warning(speech_wav, tmp_path):
    wav, _ = speech_wav
    proc = cli("stream", "-m", UPSTREAM / "transcribe-srt.yaml", "-i", f"file:{wav}", "-o",
               f"file:{tmp_path / 'a.txt'}", env_extra={"MODEL": "tiny.en"})
    assert proc.returncode == 0, proc.stderr
    assert "not installed" not in proc.stderr
    assert len((tmp_path / "a.txt").read_text().splitlines()) == 2


@needs_alsa
def test_a_file_of_noise_gives_an_empty_transcript_and_exit_0(tmp_path):
    out = tmp_path / "noise.srt"
    proc = cli("stream", "-m", UPSTREAM / "transcribe.yaml", "-i",
               f"file:{ALSA / 'Noise.wav'}", "-o", f"file:{out}")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == ""
    assert '"transcript"' not in proc.stdout


def test_a_wav_output_of_a_graph_that_only_emits_text_is_one_line_exit_2(speech_wav, tmp_path):
    wav, _ = speech_wav
    out = tmp_path / "out.wav"
    proc = cli("stream", "-m", UPSTREAM / "transcribe-srt.yaml", "-i", f"file:{wav}", "-o",
               f"file:{out}")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "only text" in errors[0] and ".srt" in errors[0]
    assert not out.exists()


@pytest.mark.parametrize("params, words", [
    ({"model": "base.en"}, "would need a download"),
    ({"model": "/no/such/model"}, "does not exist"),
])
def test_a_missing_model_is_one_line_and_exit_2(params, words, tmp_path, speech_wav):
    wav, _ = speech_wav
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({
        "version": "v1", "nodes": [{"id": "stt", "node_type": "Transcribe", "params": params}],
        "connections": [{"from": "input", "to": "stt"}, {"from": "stt", "to": "output"}]}))
    out = tmp_path / "x.srt"
    proc = cli("stream", "-m", m, "-i", f"file:{wav}", "-o", f"file:{out}")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize("name", MANIFESTS)
def test_convert_manifest_writes_a_native_form_that_loads(name, tmp_path):
    proc = cli("convert-manifest", UPSTREAM / name, timeout=120)
    assert proc.returncode == 0, proc.stderr
    native = yaml.safe_load(proc.stdout)
    types = {n["node_type"] for n in native["nodes"]}
    assert types <= {"Transcribe", "Resample", "SrtOutput", "PassThrough"}, types
    path = tmp_path / "native.yaml"
    path.write_text(proc.stdout)
    m = load_manifest(path)
    assert m.shape == "native" and "Transcribe" in {s.node_type for s in m.nodes}


def test_the_ready_to_run_transcribe_manifest_writes_subtitles_of_a_file(tmp_path):
    wav = tmp_path / "talk.wav"
    two_phrases_wav(wav, rate=16000, channels=1)
    manifest = UPSTREAM.parents[2] / "manifests" / "transcribe.yaml"
    out = tmp_path / "talk.vtt"
    proc = cli("stream", "-m", manifest, "-i", f"file:{wav}", "-o", f"file:{out}")
    assert proc.returncode == 0, proc.stderr
    assert "not installed" not in proc.stderr
    text = out.read_text()
    assert text.startswith("WEBVTT") and text.count(" --> ") >= 2


def test_a_graph_that_also_plays_audio_may_write_a_wav(speech_wav, tmp_path):
    # transcribe-srt-mic-input.yaml sends the microphone's audio to the output beside the SRT
    wav, _ = speech_wav
    out = tmp_path / "mic.wav"
    proc = cli("stream", "-m", UPSTREAM / "transcribe-srt-mic-input.yaml", "-i", f"file:{wav}",
               "-o", f"file:{out}")
    assert proc.returncode == 0, proc.stderr
    import soundfile as sf
    assert sf.info(out).frames == sf.info(wav).frames
