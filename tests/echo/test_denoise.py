"""Denoise: a lower word error rate in noise at 5 dB SNR than without it (Transcribe, jiwer),
silence stays silent (no musical noise a VAD reads as speech), the speech probability is
there for a VAD, non-finite samples are contained, wrong formats are refused."""

from __future__ import annotations

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import ManifestError
from remotemedia.engine.node import AudioFormat, NodeContext
from remotemedia.nodes.denoise import Denoise
from remotemedia.testing import one_node, run_blocks

from ..speech.speech_audio import needs_espeak, needs_model
from .room_audio import BLOCK, RATE, level, needs_echo
from .speech_in_noise import noisy_graph, sentences_signal, word_error_rate

pytestmark = needs_echo


def node(**params) -> Denoise:
    d = Denoise("dn", **params)
    d.bind(NodeContext("dn", AudioFormat(RATE, 1, BLOCK)))
    d.setup()
    return d


@pytest.mark.slow
@needs_model
@needs_espeak
@pytest.mark.parametrize("noise", ["white", "babble"])
def test_at_5_db_snr_the_word_error_rate_is_lower_with_denoise(noise):
    x = sentences_signal()
    without, texts0 = word_error_rate(run_blocks(noisy_graph(noise, 5.0, None), x))
    res = run_blocks(noisy_graph(noise, 5.0, "webrtc"), x)
    with_, texts1 = word_error_rate(res)
    print(f"{noise} 5 dB: WER without {without:.3f} {texts0}, with {with_:.3f} {texts1}")
    assert with_ < without and with_ <= 0.3
    assert res.stats["serialization_events"] == 0 and res.stats["copies"]["engine"] == 0


@pytest.mark.parametrize("engine", ["webrtc", "rnnoise"])
@pytest.mark.parametrize("noise", ["none", "white", "pink"])
def test_silence_and_quiet_noise_stay_silent_for_the_vad(engine, noise):
    """No musical noise: 6 s of noise alone (40 dB below speech) through Denoise, then Silero:
    no speech_start, and the output no louder than what went in."""
    x = np.zeros((RATE * 6, 2), np.float32)
    res = run_blocks(noisy_graph(noise, 40.0, engine, tail="vad"), x)
    starts = [e for e in res.events if e.kind == "json"
              and e.value.get("type") == "speech_start"]
    assert starts == []
    y = res.audio.reshape(-1).astype(np.float64)
    if noise == "none":
        assert not y.any()                         # digital silence stays digital silence
    else:
        assert 10 * np.log10(np.mean(y[16000:] ** 2)) < -26.0 - 40.0 + 0.5


@pytest.mark.parametrize("engine", ["webrtc", "rnnoise"])
def test_the_speech_probability_is_in_each_blocks_metadata_and_higher_in_speech(engine):
    x = sentences_signal()
    res = run_blocks(noisy_graph("white", 20.0, engine, tail=None), x)
    p = np.array([f.metadata["speech_probability"] for f in res.frames])
    speech = np.array([np.sqrt(np.mean(x[i * BLOCK:(i + 1) * BLOCK, 1] ** 2)) > 0.01
                       for i in range(p.shape[0])])
    assert p.min() >= 0.0 and p.max() <= 1.0
    assert p[speech].mean() > p[~speech].mean() + 0.2


def test_events_true_emits_one_speech_probability_event_per_block():
    m = one_node("Denoise", node_id="dn", audio={"sample_rate": RATE, "block_size": BLOCK,
                                                "channels": 1}, events=True)
    res = run_blocks(m, np.zeros(BLOCK * 5, np.float32))
    ev = [e.value for e in res.events if e.value.get("type") == "speech_probability"]
    assert [e["pts"] for e in ev] == [k * BLOCK for k in range(5)]


@pytest.mark.parametrize("engine", ["webrtc", "rnnoise"])
def test_non_finite_samples_are_zeroed_and_counted(engine):
    d = node(engine=engine)
    x = level(np.random.default_rng(0).standard_normal(BLOCK), -30.0)
    x[3], x[7] = np.nan, -np.inf
    out = d.process(NumpyData(x, pts=0))
    assert d.non_finite == 2 and np.isfinite(out.array).all()
    out = d.process(NumpyData(level(np.ones(BLOCK, np.float32), -30.0), pts=BLOCK))
    assert np.isfinite(out.array).all()


@pytest.mark.parametrize("engine, audio, words", [
    ("rnnoise", {"sample_rate": 16000, "block_size": 320}, ["48000", "webrtc"]),
    ("webrtc", {"sample_rate": 44100, "block_size": 441}, ["44100"]),
    ("webrtc", {"sample_rate": 48000, "block_size": 1000}, ["1000", "10 ms"]),
    ("webrtc", {"sample_rate": 48000, "block_size": 960, "channels": 2}, ["mono"]),
])
def test_a_format_the_engine_cannot_take_is_refused_at_load(engine, audio, words):
    with pytest.raises(ManifestError) as err:
        rm.Pipeline.from_manifest(one_node("Denoise", audio=audio, engine=engine))
    assert all(w in str(err.value) for w in words), str(err.value)


def test_on_a_thread_executor_denoise_gives_the_same_samples_and_serializes_nothing():
    x = level(np.random.default_rng(2).standard_normal(BLOCK * 20), -30.0)
    audio = {"sample_rate": RATE, "block_size": BLOCK, "channels": 1}
    inline = run_blocks(one_node("Denoise", audio=audio), x)
    m = one_node("Denoise", audio=audio)
    m["nodes"][0]["executor"] = "thread"
    threaded = run_blocks(m, x)
    assert np.array_equal(inline.audio, threaded.audio)
    assert threaded.stats["serialization_events"] == 0
    assert threaded.stats["copies"]["engine"] == 0
