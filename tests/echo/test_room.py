"""EchoPath: the simulated room is exact where it can be checked (delay, gain, tail decay,
noise level, the convolution against numpy's), seeded and deterministic, and allocates nothing
per block but its output."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.testing import run_blocks
from remotemedia.nodes.room import PartitionedConvolver

from .room_audio import BLOCK, RATE, bot_speech, level



def room(**params) -> dict:
    """input (stereo: far, near) -> EchoPath(params) -> output."""
    return {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 2},
            "nodes": [{"id": "far", "node_type": "ChannelSelect", "params": {"channel": 0}},
                      {"id": "near", "node_type": "ChannelSelect", "params": {"channel": 1}},
                      {"id": "room", "node_type": "EchoPath", "params": params}],
            "connections": [{"from": "input", "to": "far"}, {"from": "input", "to": "near"},
                            {"from": "far", "to": "room", "input": "far"},
                            {"from": "near", "to": "room", "input": "near"},
                            {"from": "room", "to": "output"}]}


def mic(signal: np.ndarray, **params) -> np.ndarray:
    return run_blocks(room(**params), signal).audio.reshape(-1)


def impulse(seconds: float = 1.0) -> np.ndarray:
    x = np.zeros((int(seconds * RATE), 2), dtype=np.float32)
    x[0, 0] = 1.0
    return x


@settings(max_examples=40, deadline=None)
@given(ir_len=st.integers(1, 5000), n=st.sampled_from([16, 64, 160, 960]),
       blocks=st.integers(1, 12), seed=st.integers(0, 2 ** 16))
def test_the_partitioned_convolution_equals_numpys(ir_len, n, blocks, seed):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(ir_len)
    x = rng.standard_normal(n * blocks)
    conv = PartitionedConvolver(h, n)
    out = np.empty(n * blocks)
    for k in range(blocks):
        conv.process(x[k * n:(k + 1) * n], out[k * n:(k + 1) * n])
    assert np.allclose(out, np.convolve(x, h)[:n * blocks], atol=1e-9)


def test_delay_and_gain_of_the_direct_path_are_exact():
    y = mic(impulse(), delay_ms=100.0, gain_db=-6.0, rt60_ms=0.0)
    d = int(0.1 * RATE)
    assert np.argmax(np.abs(y)) == d
    assert y[d] == pytest.approx(10 ** (-6 / 20), rel=1e-5)
    assert np.abs(y[:d]).max() < 1e-6 and np.abs(y[d + 1:]).max() < 1e-6


def test_the_tail_falls_60_db_in_rt60():
    y = mic(impulse(1.5), delay_ms=0.0, gain_db=0.0, rt60_ms=300.0, drr_db=0.0)
    # Schroeder backward integration of the tail's energy
    tail = y[1:int(0.3 * RATE)].astype(np.float64)
    edc = 10 * np.log10(np.cumsum(tail[::-1] ** 2)[::-1] / np.sum(tail ** 2))
    t5, t25 = np.argmax(edc < -5), np.argmax(edc < -25)
    rt60 = 3 * (t25 - t5) / RATE            # T20 extrapolated to 60 dB
    assert rt60 == pytest.approx(0.3, rel=0.15)
    # the direct path's energy over the tail's: drr_db 0
    assert 10 * np.log10(y[0] ** 2 / np.sum(tail ** 2)) == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("kind", ["white", "pink", "babble", "wav"])
def test_noise_sits_snr_db_below_the_speech_level(kind, tmp_path):
    files = None
    if kind == "wav":
        files = [str(tmp_path / "n.wav")]
        sf.write(files[0], np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
                 * 0.1, RATE)
    elif kind == "babble":
        files = [str(tmp_path / "b.wav")]
        sf.write(files[0], bot_speech(), RATE)
    y = mic(np.zeros((RATE * 3, 2), np.float32), noise=kind, snr_db=15.0, speech_dbfs=-26.0,
            noise_files=files)
    dbfs = 10 * np.log10(np.mean(y.astype(np.float64) ** 2))
    assert dbfs == pytest.approx(-41.0, abs=1.5)


def test_the_room_is_seeded_the_same_seed_gives_the_same_microphone_bit_for_bit():
    x = np.zeros((RATE * 2, 2), np.float32)
    x[:, 0] = bot_speech()[:RATE * 2]
    a = mic(x, noise="white", seed=3)
    b = mic(x, noise="white", seed=3)
    c = mic(x, noise="white", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_near_end_is_added_and_marked_as_near_speech():
    x = np.zeros((RATE, 2), np.float32)
    x[RATE // 2:, 1] = level(np.random.default_rng(0).standard_normal(RATE // 2), -30)
    res = run_blocks(room(rt60_ms=0.0), x)
    marks = [f.metadata["near_speech"] for f in res.frames]
    half = len(marks) // 2
    assert not any(marks[:half]) and all(marks[half:])
    assert np.array_equal(res.audio.reshape(-1), x[:, 1])      # no far end: the near end


def test_a_delay_jump_moves_the_echo_at_the_given_time():
    x = np.zeros((RATE * 2, 2), np.float32)
    x[0, 0] = x[RATE, 0] = 1.0
    y = mic(x, delay_ms=100.0, gain_db=0.0, rt60_ms=0.0, jump_at_s=0.5, jump_ms=40.0)
    assert y[4800] == pytest.approx(1.0) and y[RATE + 6720] == pytest.approx(1.0)
    assert np.count_nonzero(np.abs(y) > 1e-6) == 2


def test_per_block_the_room_allocates_only_its_output_block():
    from remotemedia.engine.data import NumpyData
    from remotemedia.engine.node import AudioFormat, NodeContext
    from remotemedia.nodes.room import EchoPath
    node = EchoPath("room", noise="white")
    node.bind(NodeContext("room", AudioFormat(RATE, 1, BLOCK)))
    node.setup()
    far = NumpyData(bot_speech()[:BLOCK], pts=0)
    for _ in range(5):
        node.process({"far": far, "near": far})
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    node.process({"far": far, "near": far})
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak < BLOCK * 4 + 2048, peak       # the output block and small objects


def test_a_missing_noise_file_is_refused_at_load_naming_it(tmp_path):
    from remotemedia.engine.errors import ManifestError
    import remotemedia as rm
    with pytest.raises(ManifestError, match="nope.wav.*is not a file"):
        rm.Pipeline.from_manifest(room(noise="wav", noise_files=[str(tmp_path / "nope.wav")]))
    with pytest.raises(ManifestError, match="noise_files"):
        rm.Pipeline.from_manifest(room(noise="wav"))


def test_babble_without_files_or_espeak_is_refused_at_load(monkeypatch):
    from remotemedia.engine.errors import ManifestError
    from remotemedia.nodes import room as room_module
    import remotemedia as rm
    monkeypatch.setattr(room_module.shutil, "which", lambda name: None)
    with pytest.raises(ManifestError, match="babble needs noise_files"):
        rm.Pipeline.from_manifest(room(noise="babble"))
