"""The upstream's tts.yaml and tts-voice-b.yaml run unchanged on a text input: KokoroTTSNode is
Speak with the installed voice and one warning; TextInput, AudioOutput, MicInput and
SpeakerOutput pass data on; nodes the upstream calls `input` and `output` are ordinary nodes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import remotemedia as rm
from remotemedia import ManifestError
from remotemedia.engine.manifest import manifest_shape, native_document

DATA = Path(__file__).resolve().parents[1] / "data" / "upstream-speech"
TTS = ["tts.yaml", "tts-voice-b.yaml"]


def run(cmd, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.mark.parametrize("name", TTS)
def test_upstream_tts_manifest_runs_unchanged_on_a_text(name, remotemedia_cmd, tmp_path):
    out = tmp_path / "speech.wav"
    proc = run(remotemedia_cmd + ["stream", "-m", str(DATA / name), "-i",
                                  "text:Hello, world! This is a test.", "-o", f"file:{out}",
                                  "--json"])
    assert proc.returncode == 0, proc.stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 24000                                 # Kokoro's sample_rate param
    assert 1.0 < len(audio) / rate < 6.0
    assert np.sqrt(np.mean(audio ** 2)) > 0.01
    # one warning, naming the Kokoro voice asked for
    assert proc.stderr.count("Kokoro's weights ship in no package") == 1, proc.stderr
    voice = yaml.safe_load((DATA / name).read_text())["nodes"][1]["params"]["voice"]
    assert f"its voice '{voice}' is spoken by the installed" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_upstream_nodes_named_input_and_output_are_ordinary_nodes():
    doc = yaml.safe_load((DATA / "tts.yaml").read_text())
    assert manifest_shape(doc) == "upstream"
    m = rm.Pipeline.from_manifest(DATA / "tts.yaml").manifest
    assert [s.node_type for s in m.nodes] == ["TextInput", "KokoroTTSNode", "AudioOutput"]
    assert [s.id for s in m.nodes] == ["input_node", "kokoro", "output_node"]
    assert {(c.source, c.target) for c in m.connections} == {
        ("input", "input_node"), ("input_node", "kokoro"), ("kokoro", "output_node"),
        ("output_node", "output")}
    assert any("node 'input' (TextInput) runs as 'input_node'" in w for w in m.warnings)
    assert m.output_format.sample_rate == 24000


def test_a_native_manifest_still_may_not_name_a_node_input(tmp_path):
    # The ends are the session's unless the document declares both as its own nodes.
    doc = {"version": "v1", "nodes": [{"id": "input", "node_type": "PassThrough"}],
           "connections": [{"from": "input", "to": "output"}]}
    assert manifest_shape(doc) == "native"
    with pytest.raises(ManifestError, match="reserved"):
        rm.Pipeline.from_manifest(doc)


def test_a_free_id_is_found_when_input_node_is_taken():
    doc = {"version": "v1", "nodes": [
        {"id": "input", "node_type": "TextInput"},
        {"id": "input_node", "node_type": "PassThrough"}],
        "connections": [{"from": "input", "to": "input_node"}]}
    m = rm.Pipeline.from_manifest(doc).manifest
    assert [s.id for s in m.nodes] == ["input_node_", "input_node"]


def test_kokoro_params_take_effect(tmp_path):
    def seconds(params):
        doc = {"version": "v1", "nodes": [{"id": "k", "node_type": "KokoroTTSNode",
                                           "params": params}], "connections": []}
        pipeline = rm.Pipeline.from_manifest(doc)
        with pipeline.session() as s:
            outs = s.push(rm.RuntimeData.Text("Good <|im_end|>morning to `you`.")) \
                + s.end_of_stream()
        audio = [o for o in outs if o.kind == "numpy"]
        assert {o.sample_rate for o in audio} == {params.get("sample_rate", 24000)}
        return sum(o.array.shape[0] for o in audio) / audio[0].sample_rate
    normal = seconds({"voice": "af_bella"})
    assert seconds({"voice": "af_bella", "speed": 2.0}) < 0.75 * normal
    assert abs(seconds({"sample_rate": 16000}) - normal) < 0.3


def test_kokoro_skip_tokens_are_not_spoken():
    from remotemedia.nodes.upstream.tts import KokoroTTSNode
    from remotemedia.engine.node import AudioFormat, NodeContext
    node = KokoroTTSNode("k", skip_tokens=["<|im_end|>"])
    node.bind(NodeContext("k", AudioFormat(16000, 1, 4000)))
    node.setup()
    said = []
    real = node._engine.synthesize
    node._engine.synthesize = lambda text: said.append(text) or real(text)
    list(node.process(rm.RuntimeData.Text("Hi <|im_end|>there\tyou `x`.")))
    assert said == ["Hi there you 'x'."]


def test_kokoro_converts_to_speak():
    doc, notes = native_document(DATA / "tts-voice-b.yaml")
    assert [n["node_type"] for n in doc["nodes"]] == ["PassThrough", "Speak", "PassThrough"]
    assert doc["nodes"][1]["params"] == {"speed": 1.0, "rate": 24000}
    assert any("Kokoro's weights ship in no package" in n for n in notes)


@pytest.mark.parametrize("node_type", ["MicInput", "SpeakerOutput", "TextInput",
                                       "AudioOutput"])
def test_cli_end_nodes_pass_audio_on_as_the_same_view(node_type):
    doc = {"version": "v1", "nodes": [{"id": "n", "node_type": node_type,
                                       "params": {"sample_rate": 16000} if "Output" in
                                       node_type or node_type == "MicInput" else {}}],
           "connections": []}
    pipeline = rm.Pipeline.from_manifest(doc)
    block = np.arange(4000, dtype=np.float32)
    with pipeline.session() as s:
        outs = s.push(block)
        text = s.push(rm.RuntimeData.Text("hi"))
        st = s.stats()
    assert len(outs) == 1 and np.shares_memory(outs[0].array, block)
    assert text == [rm.RuntimeData.Text("hi")]
    assert st["copies"]["engine"] == 0


def test_an_ill_typed_param_is_an_error_an_unknown_one_a_warning():
    bad = {"version": "v1", "nodes": [{"id": "mic", "node_type": "MicInput",
                                       "params": {"sample_rate": "fast"}}], "connections": []}
    with pytest.raises(ManifestError, match="node 'mic'.*sample_rate"):
        rm.Pipeline.from_manifest(bad)
    odd = {"version": "v1", "nodes": [{"id": "mic", "node_type": "MicInput",
                                       "params": {"gain": 2}}], "connections": []}
    assert any("unknown param 'gain'" in w
               for w in rm.Pipeline.from_manifest(odd).manifest.warnings)
