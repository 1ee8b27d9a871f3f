"""VAD (Silero through onnxruntime) and EnergyVAD on real speech, silence and synthetic bursts.

The speech is made by espeak-ng at test time; where espeak-ng is not installed, the same two
phrases are read from tests/data (made with espeak-ng 1.51, `-s 150`, resampled to 16 kHz int16).
True edges come from the clean signal itself: exact-zero padding added here, and the first and
last sample above 1% of the peak.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import remotemedia as rm
from remotemedia.testing import one_node
from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import ManifestError
from remotemedia.nodes import vad as vad_module

DATA = Path(__file__).resolve().parent.parent / "data"
MANIFESTS = Path(__file__).resolve().parent.parent.parent / "manifests"
PHRASES = {"fox": "The quick brown fox jumps over the lazy dog",
           "voice": "Voice activity detection finds speech"}
RATE = 16000
TOLERANCE = int(0.100 * RATE)     # 100 ms, in samples at 16 kHz


def _model_skip_reason() -> str | None:
    try:
        path = vad_module.silero_model_path()
        vad_module.load_silero_session(path)
    except vad_module.ModelUnavailable as exc:
        return f"Silero VAD model unavailable: {exc}"
    return None


MODEL_SKIP = _model_skip_reason()
needs_model = pytest.mark.skipif(MODEL_SKIP is not None, reason=MODEL_SKIP or "")


def speak(name: str) -> np.ndarray:
    """One phrase as 16 kHz float32."""
    if shutil.which("espeak-ng"):
        wav = subprocess.run(["espeak-ng", "--stdout", "-s", "150", PHRASES[name]],
                             capture_output=True, check=True, timeout=60).stdout
        x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    else:
        x, rate = sf.read(DATA / f"speech_{name}_16k.wav", dtype="float32")
    return soxr.resample(x, rate, RATE, "VHQ") if rate != RATE else x


@pytest.fixture(scope="module")
def speech():
    """Two utterances in exact silence: (signal at 16 kHz, [(start, end), ...] true edges)."""
    gap = lambda s: np.zeros(int(s * RATE), dtype=np.float32)  # noqa: E731
    parts, edges, pos = [], [], 0
    for piece in (gap(1.0), speak("fox"), gap(1.5), speak("voice"), gap(1.0)):
        if piece.any():
            loud = np.flatnonzero(np.abs(piece) > 0.01 * np.abs(piece).max())
            edges.append((pos + loud[0], pos + loud[-1] + 1))
        parts.append(piece)
        pos += piece.shape[0]
    return np.concatenate(parts), edges


def run_events(m, signal, rate, block, pts0=0):
    """Push `signal` through manifest `m`; return (audio frames, Json events)."""
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = []
        for i in range(0, signal.shape[0], block):
            outs += s.push(NumpyData(signal[i:i + block], sample_rate=rate, pts=pts0 + i))
        outs += s.end_of_stream()
    return ([o for o in outs if o.kind == "numpy"],
            [o.value for o in outs if o.kind == "json" and o.value["type"].startswith("speech")])


def vad_manifest(node_type="VAD", params=None, rate=RATE, block=320):
    return one_node(node_type, node_id="vad", audio={"sample_rate": rate, "block_size": block},
                    **(params or {}))


def assert_edges(events, edges, rate_scale=1):
    kinds = [e["type"] for e in events]
    assert kinds == ["speech_start", "speech_end"] * len(edges), events
    for (start, end), on, off in zip(edges, events[0::2], events[1::2]):
        assert abs(on["pts"] - start * rate_scale) <= TOLERANCE * rate_scale, (on, start)
        assert abs(off["pts"] - end * rate_scale) <= TOLERANCE * rate_scale, (off, end)
        assert off["duration_s"] == pytest.approx((off["pts"] - on["pts"]) / on["sample_rate"],
                                                  abs=1e-3)


# -- the Silero model ------------------------------------------------------------------------------

@needs_model
def test_model_comes_from_the_package_with_the_signature_the_node_feeds():
    path = vad_module.silero_model_path()
    assert "silero_vad" in path and path.endswith(".onnx")
    session = vad_module.load_silero_session(path)
    ins = {i.name: i for i in session.get_inputs()}
    assert set(ins) == {"input", "state", "sr"}
    assert ins["state"].shape[0] == 2 and ins["state"].shape[2] == 128
    assert [o.name for o in session.get_outputs()] == ["output", "stateN"]
    x = np.zeros((1, vad_module.CONTEXT + vad_module.WINDOW), np.float32)
    prob, state = session.run(None, {"input": x, "state": np.zeros(vad_module.STATE_SHAPE,
                                                                    np.float32),
                                     "sr": np.array(16000, np.int64)})
    assert prob.shape == (1, 1) and state.shape == vad_module.STATE_SHAPE
    assert "torch" not in sys.modules      # the package (which imports torch) was never imported


@needs_model
def test_vad_finds_both_utterances_within_100_ms(speech):
    signal, edges = speech
    audio, events = run_events(vad_manifest(), signal, RATE, 320)
    assert_edges(events, edges)
    assert all(e["sample_rate"] == RATE and e["node"] == "vad" for e in events)
    # The audio passes on untouched, frame for frame.
    assert sum(f.array.shape[0] for f in audio) == signal.shape[0]
    assert np.array_equal(np.concatenate([f.array for f in audio]), signal)


@needs_model
def test_voice_manifest_at_48k_finds_the_speech(speech):
    """The shipped voice.yaml: 48 kHz in, Resample to 16 kHz, VAD; events in 16 kHz pts, the
    48 kHz audio out unchanged."""
    signal, edges = speech
    signal48 = soxr.resample(signal, RATE, 48000, "VHQ")
    audio, events = run_events(str(MANIFESTS / "voice.yaml"), signal48, 48000, 960)
    assert_edges(events, edges)
    assert all(f.sample_rate == 48000 for f in audio)
    assert np.array_equal(np.concatenate([f.array for f in audio]), signal48)


@needs_model
@pytest.mark.parametrize("kind", ["digital silence", "noise at -60 dBFS", "hum at -40 dBFS"])
def test_vad_silence_gives_no_event(kind):
    n = 5 * RATE
    if kind == "digital silence":
        x = np.zeros(n, np.float32)
    elif kind.startswith("noise"):
        x = (1e-3 * np.random.default_rng(3).standard_normal(n)).astype(np.float32)
    else:
        x = (0.01 * np.sin(2 * np.pi * 50 * np.arange(n) / RATE)).astype(np.float32)
    _, events = run_events(vad_manifest(), x, RATE, 320)
    assert events == []


@needs_model
def test_vad_loads_the_model_once_in_setup(monkeypatch, speech):
    import onnxruntime
    made = []
    real = onnxruntime.InferenceSession

    def counting(*args, **kwargs):
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    p = rm.Pipeline.from_manifest(vad_manifest())
    assert made == []                       # validating a manifest loads nothing
    with p.session() as s:
        assert len(made) == 1
        for i in range(0, 3 * RATE, 320):
            s.push(NumpyData(speech[0][i:i + 320], sample_rate=RATE, pts=i))
        s.end_of_stream()
    assert len(made) == 1


@needs_model
def test_vad_accepts_int16_and_frames_of_any_size(speech):
    signal, edges = speech
    pcm = np.round(signal * 32767).astype(np.int16)
    _, events = run_events(vad_manifest(), pcm, RATE, 777)
    assert_edges(events, edges)


@needs_model
def test_vad_pass_audio_false_emits_only_events(speech):
    signal, edges = speech
    audio, events = run_events(vad_manifest(params={"pass_audio": False}), signal, RATE, 320)
    assert audio == []
    assert_edges(events, edges)


def test_vad_rejects_what_the_model_cannot_take():
    with pytest.raises(ManifestError, match="16000 Hz input, got 48000"):
        rm.Pipeline.from_manifest(vad_manifest(rate=48000))
    m = vad_manifest()
    m["audio"]["channels"] = 2
    with pytest.raises(ManifestError, match="mono"):
        rm.Pipeline.from_manifest(m)
    with pytest.raises(ManifestError, match="threshold"):
        rm.Pipeline.from_manifest(vad_manifest(params={"threshold": 1.5}))


def test_vad_without_onnxruntime_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # makes `import onnxruntime` fail
    with pytest.raises(rm.NodeError, match="node '.*' failed in setup: ModelUnavailable: "
                                           "onnxruntime is not installed") as info:
        with rm.Pipeline.from_manifest(vad_manifest()).session():
            pass
    assert isinstance(info.value.__cause__, vad_module.ModelUnavailable)


def test_missing_model_is_reported_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setattr(vad_module, "SHIPPED_MODEL", str(tmp_path / "gone.onnx"))
    monkeypatch.setattr(vad_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(vad_module.ModelUnavailable, match="silero-vad package is not installed"):
        vad_module.silero_model_path()


def test_the_model_ships_inside_remotemedia_and_needs_no_silero_package(monkeypatch):
    # `pip install remotemedia[voice]` alone must give a working VAD: no silero-vad, no torch.
    monkeypatch.setattr(vad_module.importlib.util, "find_spec", lambda name: None)
    path = vad_module.silero_model_path()
    assert Path(path).is_file()
    assert Path(path).resolve().is_relative_to(Path(vad_module.__file__).resolve().parent)
    session = vad_module.load_silero_session(path)
    assert {i.name for i in session.get_inputs()} == {"input", "state", "sr"}


# -- EnergyVAD: no model -----------------------------------------------------------------------

def test_energy_vad_runs_without_onnxruntime_and_finds_the_speech(monkeypatch, speech):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    signal, edges = speech
    signal48 = soxr.resample(signal, RATE, 48000, "VHQ")
    _, events = run_events(vad_manifest("EnergyVAD", rate=48000, block=960), signal48, 48000,
                           960)
    assert_edges(events, edges, rate_scale=3)
    assert all(e["sample_rate"] == 48000 for e in events)


def test_energy_vad_silence_and_low_noise_give_no_event():
    x = np.concatenate([np.zeros(48000, np.float32),
                        (1e-3 * np.random.default_rng(5).standard_normal(4 * 48000))
                        .astype(np.float32)])
    _, events = run_events(vad_manifest("EnergyVAD", rate=48000, block=960), x, 48000, 960)
    assert events == []


def bursts(spec, rate=48000, amplitude=0.3):
    """Tone bursts: spec is a list of (start_s, end_s) in a signal as long as the last end + 1 s."""
    n = int((spec[-1][1] + 1.0) * rate)
    x = np.zeros(n, np.float32)
    t = np.arange(n) / rate
    for a, b in spec:
        sl = slice(int(a * rate), int(b * rate))
        x[sl] = amplitude * np.sin(2 * np.pi * 300 * t[sl])
    return x


def energy(x, **params):
    return run_events(vad_manifest("EnergyVAD", params=params, rate=48000, block=960), x, 48000,
                      960)[1]


def test_gate_edges_are_exact_on_clean_bursts_and_padded():
    events = energy(bursts([(1.0, 2.0)]), pad_ms=0)
    assert [(e["type"], e["pts"]) for e in events] == [("speech_start", 48000),
                                                      ("speech_end", 96000)]
    padded = energy(bursts([(1.0, 2.0)]), pad_ms=50)
    assert [e["pts"] for e in padded] == [48000 - 2400, 96000 + 2400]
    # edge_pts: the same edges unpadded (the first speech sample, one past the last)
    assert [e["edge_pts"] for e in padded] == [48000, 96000]
    # Padding never reaches before the stream's start.
    early = energy(bursts([(0.02, 1.0)]), pad_ms=100)
    assert early[0]["pts"] == 0


def test_gate_min_speech_drops_short_bursts():
    assert energy(bursts([(1.0, 1.1)]), min_speech_ms=250) == []
    assert len(energy(bursts([(1.0, 1.1)]), min_speech_ms=50)) == 2


def test_gate_min_silence_bridges_short_pauses():
    spec = [(1.0, 1.5), (1.58, 2.0)]               # an 80 ms pause inside speech
    one = energy(bursts(spec), min_silence_ms=200, pad_ms=0)
    assert [e["pts"] for e in one] == [48000, 96000]
    two = energy(bursts(spec), min_silence_ms=50, pad_ms=0)
    assert [e["pts"] for e in two] == [48000, 72000, int(1.58 * 48000), 96000]
    # A short word then a pause shorter than min_silence still counts toward min_speech.
    word = energy(bursts([(1.0, 1.1), (1.15, 1.3)]), min_speech_ms=250, min_silence_ms=100,
                  pad_ms=0)
    assert [e["pts"] for e in word] == [48000, int(1.3 * 48000)]


def test_end_of_stream_closes_open_speech():
    x = bursts([(1.0, 3.0)])[: int(2.0 * 48000)]    # cut off while speaking
    events = energy(x, pad_ms=0)
    assert [(e["type"], e["pts"]) for e in events] == [("speech_start", 48000),
                                                      ("speech_end", x.shape[0])]


def test_events_carry_pts_of_a_stream_that_starts_late():
    x = bursts([(1.0, 2.0)])
    _, events = run_events(vad_manifest("EnergyVAD", params={"pad_ms": 0}, rate=48000,
                                        block=960), x, 48000, 960, pts0=480000)
    assert [e["pts"] for e in events] == [480000 + 48000, 480000 + 96000]
    assert events[0]["time_s"] == pytest.approx(11.0)


@needs_model
def test_vad_speech_cut_off_by_end_of_stream_still_ends(speech):
    signal, edges = speech
    cut = edges[0][0] + RATE                       # one second into the first phrase
    _, events = run_events(vad_manifest(), signal[:cut], RATE, 320)
    assert [e["type"] for e in events] == ["speech_start", "speech_end"]
    assert abs(events[0]["pts"] - edges[0][0]) <= TOLERANCE
    assert events[1]["pts"] <= cut and cut - events[1]["pts"] <= TOLERANCE


@needs_model
def test_vad_reset_forgets_the_model_state(speech):
    """After `reset` the same audio gives the same events as a fresh session."""
    from remotemedia.engine.data import ControlData
    signal, _ = speech
    piece = signal[: 5 * RATE]
    _, fresh = run_events(vad_manifest(), piece, RATE, 320)
    with rm.Pipeline.from_manifest(vad_manifest()).session() as s:
        for i in range(0, 2 * RATE, 320):
            s.push(NumpyData(signal[3 * RATE + i:3 * RATE + i + 320], sample_rate=RATE, pts=i))
        s.push(ControlData("reset"))
        outs = []
        for i in range(0, piece.shape[0], 320):
            outs += s.push(NumpyData(piece[i:i + 320], sample_rate=RATE, pts=i))
        outs += s.end_of_stream()
    again = [o.value for o in outs if o.kind == "json"]
    assert fresh and again == fresh


@pytest.mark.parametrize("node_type", ["VAD", "EnergyVAD"])
def test_an_utterance_the_stream_ends_says_so_and_one_silence_ends_does_not(speech, node_type):
    """The end of the stream closes an open utterance (speech_end `closed_by`
    "end_of_stream"): no endpoint was decided, so a turn meter measures no voice-to-voice from
    it. An utterance silence ended has no `closed_by`."""
    if node_type == "VAD" and _model_skip_reason():
        pytest.skip(_model_skip_reason())
    signal, edges = speech
    cut = edges[1][0] + (edges[1][1] - edges[1][0]) // 2     # in the middle of "voice"
    _, events = run_events(vad_manifest(node_type), signal[:cut], RATE, 320)
    ends = [e for e in events if e["type"] == "speech_end"]
    assert len(ends) == 2
    assert "closed_by" not in ends[0] and ends[1]["closed_by"] == "end_of_stream"
