"""remotemedia.testing is part of the product: each piece does what it says, the conformance kit
catches each kind of broken node, and the pytest plugin reaches a user's own suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import JsonData
from remotemedia.engine.node import Node, registry
from remotemedia.testing import (CollectingSink, Golden, ListSource, MockClock, align,
                                 assert_audio_close, chain, check_node, isolated_registry,
                                 one_node, registered, run_blocks, snr_db)
from remotemedia.testing.conformance import ConformanceReport


def tone(seconds=0.2, rate=48000, freq=440.0, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32)


def test_run_blocks_runs_a_chain_in_simulated_time():
    x = tone(1.0)
    result = run_blocks(chain(("g", "Gain", {"db": -6}), ("m", "LevelMeter", {"every": 10})), x)
    assert_audio_close(result.audio, x * 10 ** (-6 / 20), snr_db_min=120)
    assert result.stats["frames_in"] == 50 and result.stats["frames_out"] == 50
    assert len(result.event_values("level")) == 5
    assert result.stats["serialization_events"] == 0


def test_list_source_copies_unless_told_to_hand_over():
    block = np.ones(960, np.float32)
    src = ListSource([block])
    out = src.read()
    assert not np.shares_memory(out, block) and src.read() is None
    assert ListSource([block], transfer=True).read() is block


def test_collecting_sink_repairs_when_asked():
    sink = CollectingSink(repair=True)
    from remotemedia.engine.data import NumpyData
    sink.write(NumpyData(np.array([np.nan, 0.5], np.float32)))
    assert sink.audio().tolist() == [0.0, 0.5] and sink.repair_report()["non_finite"] == 1


def test_mock_clock_jumps_and_runs_at_a_rate():
    clock = MockClock(0.02)
    clock.start()
    assert clock.wait_for_frame(500) == 0.0 and clock.now() == pytest.approx(10.0)
    clock.jump(5)
    assert clock.now() == pytest.approx(15.0)
    assert clock.wait_for_frame(10) == pytest.approx(14.8)     # 14.8 s late
    with pytest.raises(ValueError):
        clock.jump(-1)
    clock.rate = 1000.0
    clock.autojump = False
    t0 = clock.now()
    clock.wait_for_frame(int((t0 + 0.5) / 0.02) + 1)          # 0.5 simulated s at 1000x
    assert clock.now() >= t0 + 0.5


def test_manifest_builders():
    m = chain("Gain", "Gain", ("meter", "LevelMeter", {"every": 2}))
    assert [n["id"] for n in m["nodes"]] == ["gain", "gain2", "meter"]
    assert m["connections"][0] == {"from": "input", "to": "gain"}
    assert m["connections"][-1] == {"from": "meter", "to": "output"}
    o = one_node("Resample", rate=16000, audio={"sample_rate": 48000})
    assert o["nodes"][0]["params"] == {"rate": 16000}
    assert rm.Pipeline.from_manifest(o).manifest.output_format.sample_rate == 16000


def test_isolated_registry_leaves_the_default_alone():
    class Local(Node):
        node_type = "LocalOnly"

        def process(self, frame):
            return frame
    with registered(Local) as reg:
        assert "LocalOnly" in reg.names() and "Gain" in reg.names()
        run_blocks(one_node("LocalOnly"), tone(), registry=reg)
    assert "LocalOnly" not in registry.names()
    assert "LocalOnly" not in isolated_registry().names()


def test_snr_align_and_assert_audio_close():
    x = tone(0.5)
    noisy = x + np.random.default_rng(0).normal(0, 1e-3, x.shape).astype(np.float32)
    assert 45 < snr_db(noisy, x) < 55
    assert snr_db(x, x) == float("inf")
    late = np.concatenate((np.zeros(37, np.float32), x))
    assert align(late, x, max_lag=200) == 37
    assert_audio_close(late, x, align_max_lag=200, snr_db_min=100)
    with pytest.raises(AssertionError, match=r"SNR .* dB < 60 dB .*first differing sample"):
        assert_audio_close(noisy, x, snr_db_min=60)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_audio_close(late, x)


def test_golden_files_compare_and_update(tmp_path):
    g = Golden(tmp_path, update=False)
    with pytest.raises(AssertionError, match="no golden file .*--update-golden"):
        g.check_json("report", {"a": 1})
    Golden(tmp_path, update=True).check_json("report", {"a": 1, "b": float("nan")})
    g.check_json("report", {"b": float("nan"), "a": 1})
    with pytest.raises(AssertionError, match="differs"):
        g.check_json("report", {"a": 2})
    x = tone()
    Golden(tmp_path, update=True).check_audio("tone", x, 48000)
    g.check_audio("tone", x, 48000)
    with pytest.raises(AssertionError, match="SNR"):
        g.check_audio("tone", x * 1.01, 48000)
    g.check_audio("tone", x * 1.0001, 48000, snr_db_min=60)


# -- the conformance kit ----------------------------------------------------------------------------

BUILTIN_PARAMS = {"Resample": {"rate": 16000}, "Reframe": {"size": 480},
                  "RustWhisperNode": {"model_source": "tiny.en"}}


@pytest.mark.parametrize("node_type", [n for n, c in registry.types().items()
                                       if c.inputs == "one"
                                       and c.__module__.startswith("remotemedia.")])
def test_every_built_in_node_passes_check_node(node_type):
    cls = registry.resolve(node_type)
    rate = 16000 if node_type in ("VAD", "SileroVADNode") else 48000
    try:
        report = check_node(cls, BUILTIN_PARAMS.get(node_type), sample_rate=rate)
    except rm.NodeError as exc:               # a model that cannot load on this machine
        pytest.skip(str(exc))
    assert report.ok and "memory" in report.passed and "determinism" in report.passed


class Copier(Node):
    node_type = "Copier"

    def process(self, frame):
        return frame.with_array(frame.array.copy())


class InPlaceVandal(Node):
    node_type = "InPlaceVandal"

    def process(self, frame):
        frame._source[:1] = 0           # bypasses writable(): writes the caller's memory
        return frame


class Accumulator(Node):
    node_type = "Accumulator"

    def setup(self):
        self.total = 0.0

    def process(self, frame):
        self.total += float(frame.array.sum())
        return frame


class Forgetful(Node):
    node_type = "Forgetful"

    def process(self, frame):
        return frame.with_array(frame.array * 2, pts=None, metadata={})


class Unstrict(Node):
    node_type = "Unstrict"

    def process(self, frame):
        return (frame, JsonData({"x": float("nan")}))


class Random(Node):
    node_type = "Random"

    def process(self, frame):
        return frame.with_array(frame.array + np.random.random())


class Hoarder(Node):
    node_type = "Hoarder"
    retains_input = True

    def setup(self):
        self.kept = []

    def process(self, frame):
        self.kept.append(frame)
        return None

    def on_control(self, event):
        if event.event == "end_of_stream" and self.kept:
            return [self.kept.pop(0)]     # releases one frame per end_of_stream only
        return None


class BadReturn(Node):
    node_type = "BadReturn"

    def process(self, frame):
        return [frame, 42]


@pytest.mark.parametrize("cls,rule", [
    (Copier, "memory"), (InPlaceVandal, "memory"), (Accumulator, "non_finite"),
    (Forgetful, "timing"), (Forgetful, "metadata"), (Random, "determinism"),
    (Hoarder, "stream_events"), (BadReturn, "outputs"),
])
def test_check_node_catches_each_kind_of_broken_node(cls, rule):
    report = check_node(cls, raise_on_failure=False)
    assert isinstance(report, ConformanceReport) and not report.ok
    assert rule in {f.split(":", 1)[0] for f in report.failures}, report.failures
    with pytest.raises(AssertionError, match=f"{cls.node_type} breaks"):
        check_node(cls)


def test_check_node_accepts_strict_events_only():
    # NaN in an event is written as strict JSON by the program, so the kit accepts it.
    assert check_node(Unstrict, raise_on_failure=False).ok


# -- the pytest plugin, in a user's own suite ---------------------------------------------------------

def test_the_plugin_gives_a_users_suite_its_fixtures(tmp_path):
    (tmp_path / "test_user.py").write_text(textwrap.dedent('''
        import numpy as np
        from remotemedia.testing import chain

        def test_fixtures(rm_run, rm_clock, rm_registry, golden):
            x = np.zeros(1920, np.float32)
            result = rm_run(chain("PassThrough"), x, clock=rm_clock)
            assert result.stats["frames_in"] == 2 and rm_clock.now() > 0
            assert "Gain" in rm_registry.names()
            golden.check_json("stats_keys", sorted(result.stats))
    '''))
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    first = subprocess.run(args + ["--update-golden"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "golden" / "stats_keys.json").exists()
    again = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert again.returncode == 0 and "1 passed" in again.stdout
