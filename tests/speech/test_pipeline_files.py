"""The upstream's voice-assistant pipeline files (va-local, va-hybrid, va-remote) are not
manifests even upstream (no metadata, params under `config`, unregistered node types). What
va-local means runs here: mic at 16 kHz -> VAD -> Whisper -> Ollama -> Kokoro (the Piper
voice) -> 48 kHz; the two that call a remote pipeline over gRPC are refused in one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from remotemedia.engine.manifest import validate_manifest
from remotemedia.engine.pipeline_file import (PIPELINE_FILE_TYPES, is_pipeline_file,
                                              pipeline_file_to_native)
from remotemedia.engine.errors import ManifestError
from tests.conversation.llm_server import ChatServer

DATA = Path(__file__).resolve().parents[1] / "data"
UPSTREAM = DATA / "upstream-speech"


def cli(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.mark.parametrize("name", ["va-hybrid.yaml", "va-remote.yaml"])
@pytest.mark.parametrize("command", [["validate"], ["convert-manifest"],
                                     ["stream", "-i", "silence", "-o", "out.wav", "-d", "1",
                                      "-m"]])
def test_a_remote_pipeline_file_is_refused_in_one_line(name, command, tmp_path):
    proc = cli(*command, str(UPSTREAM / name), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for words in ("RemotePipelineNode", "gRPC", "server_url not set", "executor: process or ray",
                  "manifests/assistant.yaml"):
        assert words in proc.stderr
    assert list(tmp_path.iterdir()) == []      # refused before anything was opened


def test_va_local_validates_as_the_pipeline_its_comments_describe():
    doc = yaml.safe_load((UPSTREAM / "va-local.yaml").read_text())
    assert is_pipeline_file(doc)
    m = validate_manifest(doc, source="va-local.yaml")
    assert list(m.order) == ["mic_input", "vad", "whisper", "llm", "tts", "resample"]
    kinds = {s.id: s.node_class.__name__ for s in m.nodes}
    assert kinds == {"mic_input": "Resample", "vad": "SileroVADNode",
                     "whisper": "RustWhisperNode", "llm": "OllamaLLM", "tts": "KokoroTTSNode",
                     "resample": "Resample"}
    params = {s.id: s.params for s in m.nodes}
    assert params["mic_input"]["rate"] == 16000          # AudioInput's sample_rate
    assert params["resample"]["rate"] == 48000 and params["resample"]["quality"] == "HQ"
    assert params["llm"]["base_url"] == "http://127.0.0.1:11434/v1"   # Ollama's own address
    assert params["llm"]["system"].startswith("You are a helpful voice assistant.")
    said = "\n".join(m.warnings)
    for words in ("'mic_input' (AudioInput): the run's input is --input",
                  "'speaker_output' (AudioOutput) dropped", "executor 'multiprocess' dropped"):
        assert words in said


def pipeline_file(nodes, connections=None):
    return {"name": "p", "version": "1.0", "nodes": nodes, "connections": connections or []}


def failing(problem, node_id=None):
    raise ManifestError(problem, source="p.yaml", node_id=node_id)


@pytest.mark.parametrize("kind", sorted(PIPELINE_FILE_TYPES))
def test_every_pipeline_file_type_translates_and_its_ends_become_the_sessions(kind):
    # any one of the file's types between an AudioInput and an AudioOutput: the ends are the
    # session's, the rest keeps its id and runs as the type it stands for
    nodes = [{"id": "mic", "node_type": "AudioInput", "config": {"source": "microphone"}},
             {"id": "x", "node_type": kind, "config": {}},
             {"id": "spk", "node_type": "AudioOutput", "config": {"destination": "speaker"}}]
    conns = [{"from": "mic", "to": "x"}, {"from": "x", "to": "spk"}]
    native, _ = pipeline_file_to_native(pipeline_file(nodes, conns), failing)
    ids = [n["id"] for n in native["nodes"]]
    if PIPELINE_FILE_TYPES[kind] is None or kind == "AudioInput":   # dropped: an end itself
        assert "x" not in ids
    else:
        assert ids == ["x"] and native["nodes"][0]["node_type"] == PIPELINE_FILE_TYPES[kind]
        assert native["connections"] == [{"from": "input", "to": "x"},
                                         {"from": "x", "to": "output"}]
    assert all(isinstance(n["params"], dict) for n in native["nodes"])


@pytest.mark.parametrize("bad, words", [
    ({"id": "r", "node_type": "RemotePipelineNode", "config": {"server_url": "grpc://h:1"}},
     "server_url grpc://h:1"),
    ({"id": "q", "node_type": "Mystery", "config": {}}, "node type 'Mystery'"),
    ({"id": "c", "node_type": "SileroVAD", "config": [1, 2]}, "'config' must be a mapping"),
])
def test_what_cannot_run_is_refused_naming_the_node(bad, words):
    with pytest.raises(ManifestError) as err:
        pipeline_file_to_native(pipeline_file([bad]), failing)
    assert words in str(err.value) and f"'{bad['id']}'" in str(err.value)


@pytest.mark.slow
def test_va_local_answers_spoken_speech_through_an_ollama_compatible_server(tmp_path):
    # va-local as shipped, with the one edit a user makes to reach their Ollama: its host
    doc = yaml.safe_load((UPSTREAM / "va-local.yaml").read_text())
    with ChatServer(reply="Foxes are quick. Dogs are lazy.") as srv:
        next(n for n in doc["nodes"] if n["id"] == "llm")["config"]["host"] = \
            srv.base_url.removesuffix("/v1")
        (tmp_path / "va.yaml").write_text(yaml.safe_dump(doc))
        proc = cli("stream", "-m", "va.yaml", "-i", str(DATA / "speech_fox_16k.wav"),
                   "-o", "reply.wav", "--events", "events.jsonl", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    replies = [e for e in events if e.get("type") == "reply"]
    assert len(replies) == 1 and "fox" in replies[0]["heard"].lower()
    assert replies[0]["reply"] == "Foxes are quick. Dogs are lazy." and not replies[0].get("error")
    body = srv.requests[0]["body"]
    assert body["model"] == "llama3.2:1b" and body["max_tokens"] == 150
    audio, rate = sf.read(tmp_path / "reply.wav")
    assert rate == 48000                  # resampled as the file asks, not played at 24 kHz
    assert audio.size > rate * 1.0 and abs(audio).max() > 0.05     # a spoken reply


@pytest.mark.parametrize("nodes, conns, words", [
    ([{"id": "v", "config": {}}], [], "missing 'node_type'"),
    ([{"id": "r", "node_type": "AudioResample", "config": {"quality": "fast"}}], [],
     "'quality' must be one of quick, low"),
    ([{"id": "v", "node_type": "SileroVAD", "config": {}},
      {"id": "speaker_output", "node_type": "AudioOutput", "config": {}}],
     [{"from": "v", "to": "speakr_output"}], "did you mean 'speaker_output'?"),
])
def test_a_mistake_in_a_pipeline_file_is_named(nodes, conns, words):
    with pytest.raises(ManifestError, match=re.escape(words)):
        pipeline_file_to_native(pipeline_file(nodes, conns), failing)


def test_converted_va_local_keeps_a_file_inputs_own_format(tmp_path):
    proc = cli("convert-manifest", str(UPSTREAM / "va-local.yaml"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    native = yaml.safe_load(proc.stdout)
    assert "audio" not in native           # as the pipeline file: the input's own rate runs
    assert validate_manifest(native, source="native.yaml").order[0] == "mic_input"
