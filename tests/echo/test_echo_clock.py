"""EchoCancel against a PlayClock (engine/playclock.py) without a device: a fake clock that
says when each output frame played lets the tests place every reference block exactly; and the
convergence tracker's loss and recovery rules, as properties over any sequence of windows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.engine.data import NumpyData
from remotemedia.nodes.echo import LEAD_MS, ConvergenceTracker, EchoCancel

from .room_audio import BLOCK, RATE, bot_speech, needs_echo

pytestmark = needs_echo
LEAD = int(LEAD_MS * RATE / 1000)


class FakeClock:
    """Output frame seq s plays at near pts `at[s]` once `played` holds it."""

    def __init__(self):
        self.at: dict[int, float] = {}

    def played_at(self, seq):
        return self.at.get(seq)


def bound(clock=None, **params) -> EchoCancel:
    node = EchoCancel("aec", **params)
    node.bind(rm.engine.node.NodeContext("aec", rm.engine.node.AudioFormat(RATE, 1, BLOCK)))
    node.setup()
    node.play_clock = clock
    return node


def near(k: int, x=None) -> dict:
    a = np.zeros(BLOCK, np.float32) if x is None else x
    return {"mic": NumpyData(a, pts=k * BLOCK, seq=k)}


def test_with_a_play_clock_each_reference_block_goes_where_it_played_less_the_lead():
    clock = FakeClock()
    node = bound(clock, report_blocks=0)
    far = bot_speech()[:6 * BLOCK]
    node.process(near(0))
    # output frames 0..5 (their own seq and pts, a synthesizer's) arrive now, play later
    for s in range(6):
        node.feedback("reference", NumpyData(far[s * BLOCK:(s + 1) * BLOCK], pts=77 + s,
                                             seq=100 + s))
    assert node._p_count == 6 and node._ref_end is None        # held until played
    for s in range(3):
        clock.at[100 + s] = 3 * BLOCK + 17 + s * BLOCK          # they played from pts 2897
    node.process(near(1))
    assert node._p_count == 3
    start = 3 * BLOCK + 17 - LEAD
    out = np.zeros(3 * BLOCK, np.float32)
    assert node._reference_at(start, out) == 0
    assert np.array_equal(out, far[:3 * BLOCK])
    # the measured delay: from where it arrived (pts 960, after near block 0) to where it played
    assert node.delay_used_ms == round((3 * BLOCK + 17 + 2 * BLOCK - BLOCK) * 1000 / RATE, 1)
    assert node._mode == "device clocks" and node.reference_missing == 0


def test_a_reference_block_the_output_never_played_is_let_go_and_counted():
    clock = FakeClock()
    node = bound(clock, report_blocks=0)
    node.process(near(0))
    far = bot_speech()[:3 * BLOCK]
    for s in range(3):
        node.feedback("reference", NumpyData(far[s * BLOCK:(s + 1) * BLOCK], seq=s))
    clock.at[1] = 5 * BLOCK      # frame 0 was dropped at the output (barge-in); 1 played
    node.process(near(1))
    assert node.reference_unplayed == BLOCK and node._p_count == 1
    out = np.zeros(BLOCK, np.float32)
    node._reference_at(5 * BLOCK - LEAD, out)
    assert np.array_equal(out, far[BLOCK:2 * BLOCK])


def test_a_long_reference_frame_takes_several_held_slots_and_stays_whole():
    clock = FakeClock()
    node = bound(clock, report_blocks=0)
    node.process(near(0))
    far = bot_speech()[:5 * BLOCK + 480]
    node.feedback("reference", NumpyData(far, seq=9))
    assert node._p_count == 6
    clock.at[9] = 2 * BLOCK + LEAD
    node.process(near(1))
    out = np.zeros(far.shape[0], np.float32)
    assert node._reference_at(2 * BLOCK, out) == 0 and np.array_equal(out, far)


def test_the_delay_and_its_source_are_in_every_echo_event():
    clock = FakeClock()
    evs = {}
    for name, node in (("device", bound(clock, report_blocks=2)),
                       ("param_on_device", bound(clock, report_blocks=2, delay_ms=30.0)),
                       ("param", bound(None, report_blocks=2, delay_ms=30.0)),
                       ("estimated", bound(None, report_blocks=2))):
        out = []
        for k in range(4):
            r = node.process(near(k))
            out += [r[1].value] if isinstance(r, list) else []
            node.feedback("reference", NumpyData(np.zeros(BLOCK, np.float32), pts=k * BLOCK,
                                                 seq=k))
            clock.at[k] = (k + 3) * BLOCK
        evs[name] = out
    assert [(e["delay_source"], e["delay_ms"]) for e in evs["device"]] == [
        ("device clocks", 40.0), ("device clocks", 40.0)]   # arrived at k+1, played at k+3
    assert {(e["delay_source"], e["delay_ms"]) for e in evs["param_on_device"]} == {
        ("param", 30.0)}
    assert {(e["delay_source"], e["delay_ms"]) for e in evs["param"]} == {("param", 30.0)}
    assert {(e["delay_source"], e["delay_ms"]) for e in evs["estimated"]} == {
        ("estimated", None)}


def test_align_pts_ignores_the_play_clock():
    node = bound(FakeClock(), report_blocks=0, align="pts")
    node.process(near(0))
    node.feedback("reference", NumpyData(np.ones(BLOCK, np.float32), pts=BLOCK, seq=1))
    assert node._mode == "estimated" and node._p_count == 0 and node._ref_end == 2 * BLOCK


def test_a_reply_whose_last_window_reads_low_is_not_left_lost_once_the_bot_goes_quiet():
    """The bug: converged, the reply's last window reads low (here the echo's delay jumps by
    40 ms a few blocks before the reply ends), and then the far end is silent: the events
    said lost_at_s to the end of the run, and no window could ever say it recovered."""
    far = bot_speech()
    n = far.shape[0] // BLOCK // 25 * 25     # the reply ends with a report window
    far = np.concatenate([far[:n * BLOCK], np.zeros(150 * BLOCK, np.float32)])
    echo = np.zeros_like(far)                # 20 ms late, then 60 ms from block n - 20 on
    jump = (n - 20) * BLOCK
    echo[BLOCK:jump] = 0.5 * far[:jump - BLOCK]
    echo[jump:] = 0.5 * far[jump - 3 * BLOCK:-3 * BLOCK]
    node = bound(None, delay_ms=20.0, report_blocks=25)
    events = []
    for k in range(n + 150):
        r = node.process({"mic": NumpyData(echo[k * BLOCK:(k + 1) * BLOCK], pts=k * BLOCK),
                          "reference": NumpyData(far[k * BLOCK:(k + 1) * BLOCK],
                                                 pts=k * BLOCK)})
        if isinstance(r, list):
            events.append(r[1].value)
    at_end = next(e for e in events if e["time_s"] == n * BLOCK / RATE)
    assert at_end["erle_db"] is not None and not at_end["converged"], at_end
    assert at_end["lost_at_s"] == at_end["time_s"]      # said at once
    last = events[-1]
    assert last["erle_db"] is None                      # the bot is quiet
    assert last["converged"] and last["lost_at_s"] is None, last
    assert node.tracker.withdrawn == 1


windows = st.lists(st.one_of(st.none(), st.floats(0.0, 80.0)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(before=windows, low=st.floats(0.0, 19.9), quiet=st.integers(1, 10))
def test_a_low_window_followed_by_silence_never_leaves_a_loss_behind(before, low, quiet):
    t = ConvergenceTracker(20.0, 10.0)
    for i, e in enumerate(before):
        t.update(e, i * 0.5)
    state = (t.converged, t.lost_at_s, t.recovered_at_s)
    if not t.converged:
        return
    t.update(low, 100.0)
    assert not t.converged and t.lost_at_s == 100.0
    for i in range(quiet):
        t.update(None, 100.5 + i * 0.5)
    assert (t.converged, t.lost_at_s, t.recovered_at_s) == state


@settings(max_examples=300, deadline=None)
@given(before=windows, level=st.floats(21.5, 40.0), jitter=st.floats(-1.5, 1.5))
def test_after_a_loss_two_windows_at_a_new_steady_level_always_recover(before, level, jitter):
    t = ConvergenceTracker(20.0, 10.0)
    t.update(70.0, 0.0)
    for i, e in enumerate(before):
        t.update(e, 0.5 + i * 0.5)
    t.update(5.0, 50.0)
    t.update(5.0, 50.5)                      # lost, confirmed
    assert not t.converged and t.lost_at_s is not None
    lost = t.lost_at_s
    t.update(level, 51.0)
    t.update(level + jitter, 51.5)
    assert t.converged and t.lost_at_s == lost and t.recovered_at_s in (51.0, 51.5)


def test_on_a_device_per_block_the_canceller_allocates_only_the_output_the_binding_returns():
    import tracemalloc
    clock = FakeClock()
    node = bound(clock, report_blocks=0)
    far = bot_speech()
    refs = [NumpyData(far[k * BLOCK:(k + 1) * BLOCK], pts=k * BLOCK, seq=k) for k in range(14)]
    nears = [near(k, far[k * BLOCK:(k + 1) * BLOCK]) for k in range(14)]
    for k in range(14):
        clock.at[k] = (k + 2) * BLOCK                # each plays two blocks after it is made
    for k in range(11):
        node.process(nears[k])
        node.feedback("reference", refs[k])
    assert node._p_count == 1 and node._mode == "device clocks"
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    node.process(nears[11])
    node.feedback("reference", refs[11])
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak < BLOCK * 4 + 2048, peak


def test_timestamp_jitter_leaves_no_seam_and_a_real_gap_is_kept():
    """Device timestamps jitter by a few ms (JACK's dummy driver): a block that plays on from
    the one before goes right after it; a gap of a block or more (an underflow, a pause) is
    where the clocks say."""
    clock = FakeClock()
    node = bound(clock, report_blocks=0)
    node.process(near(0))
    far = bot_speech()[:4 * BLOCK]
    for s in range(4):
        node.feedback("reference", NumpyData(far[s * BLOCK:(s + 1) * BLOCK], seq=s))
    base = 10 * BLOCK
    for s, jitter in enumerate((0, 150, -200, 0)):
        clock.at[s] = base + s * BLOCK + jitter
    clock.at[3] += 2 * BLOCK                    # the output ran dry for two blocks
    node.process(near(1))
    out = np.zeros(3 * BLOCK, np.float32)
    assert node._reference_at(base - LEAD, out) == 0
    assert np.array_equal(out, far[:3 * BLOCK])             # no seam at 150 or -200
    out = np.zeros(BLOCK, np.float32)
    node._reference_at(base + 5 * BLOCK - LEAD, out)
    assert np.array_equal(out, far[3 * BLOCK:])             # the gap kept
    node._reference_at(base + 3 * BLOCK - LEAD, out)
    assert not out.any()                                    # silence in it


def test_the_runner_hands_a_sinks_play_clock_to_the_canceller_and_none_without_one():
    """StreamRunner gives `sink.play_clock()` to the nodes that ask (uses_play_clock) before
    the first block; a sink without one (a file, null) leaves them on their pts."""
    from remotemedia.io.synth import NoiseSource
    from remotemedia.io.virtual import NullSink
    from remotemedia.runner import StreamRunner

    clock = FakeClock()

    class ClockedSink(NullSink):
        def play_clock(self):
            return clock

    m = {"version": "v1", "metadata": {"name": "aec"},
         "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
         "nodes": [{"id": "aec", "node_type": "EchoCancel", "params": {"report_blocks": 5}},
                   {"id": "gain", "node_type": "Gain", "params": {"db": -6.0}}],
         "connections": [{"from": "input", "to": "aec", "input": "mic"},
                         {"from": "aec", "to": "gain"}, {"from": "gain", "to": "output"},
                         {"from": "gain", "to": "aec", "input": "reference"}]}
    for sink_class, source in ((ClockedSink, "device clocks"), (NullSink, "estimated")):
        pipeline = rm.Pipeline.from_manifest(m)
        fmt = pipeline.manifest.audio
        events = []
        runner = StreamRunner(pipeline, NoiseSource(fmt), sink_class(fmt), duration=0.2,
                              on_event=lambda e: events.append(e.value))
        runner.run()
        echo = [e for e in events if e.get("type") == "echo"]
        assert echo and {e["delay_source"] for e in echo} == {source}, echo
