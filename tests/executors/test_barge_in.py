"""Barge-in in a live-style session: a voice detector's speech_start while the reply node works
on its thread interrupts it; its queued audio is dropped and counted, its generator stops; a
burst shorter than min_speech_ms does not interrupt. And a node on a thread that is not called
every block hands on its outputs as they are made (the engine polls it after each push)."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.engine.data import JsonData, NumpyData, TextData
from remotemedia.io.ring import OutputQueue
from remotemedia.testing import isolated_registry, wait_until

RATE, BLOCK = 48000, 960


class Heard(rm.Node):
    """Stands in for a transcriber: Text 'go' at each speech_end (emits_text: the nodes after
    it make the reply)."""

    node_type = "HeardForBargeInTests"
    accepts = frozenset({"numpy", "json"})
    emits_text = True

    def process(self, data):
        if type(data) is JsonData and data.value.get("type") == "speech_end":
            return TextData("go")
        return None


class Talker(rm.Node):
    """Stands in for Speak: a long reply, one block at a time, a little slower than the test
    pushes; says whether its generator was closed and which control events it saw."""

    node_type = "TalkerForBargeInTests"
    accepts = frozenset({"text"})

    def setup(self):
        self.closed = threading.Event()
        self.made = 0
        self.controls: list = []

    def process(self, data):
        try:
            for k in range(5000):
                self.made += 1
                yield NumpyData(np.full(BLOCK, 0.1, np.float32), sample_rate=RATE, pts=k * BLOCK)
                threading.Event().wait(0.001)
        except GeneratorExit:
            self.closed.set()
            raise

    def on_control(self, event):
        self.controls.append(event.event)


MANIFEST = {
    "version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
    "nodes": [
        {"id": "vad", "node_type": "EnergyVAD",
         "params": {"threshold_dbfs": -30, "min_speech_ms": 100, "min_silence_ms": 60}},
        {"id": "stt", "node_type": "HeardForBargeInTests"},
        {"id": "tts", "node_type": "TalkerForBargeInTests", "executor": "thread"},
    ],
    "connections": [{"from": "input", "to": "vad"}, {"from": "vad", "to": "stt"},
                    {"from": "stt", "to": "tts"}, {"from": "tts", "to": "output"}],
}


def loud(n):
    return [np.full(BLOCK, 0.3, np.float32) for _ in range(n)]


def quiet(n):
    return [np.zeros(BLOCK, np.float32) for _ in range(n)]


def push_all(s, blocks):
    out = []
    for b in blocks:
        out += s.push(b)
    return out


def session():
    reg = isolated_registry()
    reg.register(Heard)
    reg.register(Talker)
    return rm.Pipeline.from_manifest(MANIFEST, registry=reg).session()


def test_speech_over_the_reply_interrupts_it_and_drops_its_queued_audio():
    with session() as s:
        sched = s.schedule
        talker = s.node("tts")
        # The user's first turn: speech, then the silence that ends it; the bot is silent, so
        # its speech_start interrupts nothing.
        push_all(s, loud(10) + quiet(6))
        stats = s.stats()["barge_in"]
        assert stats["speech_starts"] == 1 and stats["interrupts"] == 0, stats
        inst = talker.instance
        wait_until(lambda: inst.made > 20, "the reply being made", timeout=30)
        # No new text reaches the talker, yet its audio leaves with the next pushes (polled).
        got = push_all(s, quiet(3))
        assert any(type(o) is NumpyData for o in got), got
        # "mm-hmm": one block (20 ms) of speech, shorter than min_speech_ms: no interrupt.
        push_all(s, loud(1) + quiet(4))
        assert s.stats()["barge_in"]["speech_starts"] == 1
        # The output is full (a device that has not played yet): the reply piles up at the
        # worker, where the barge-in finds it.
        sched.poll_room = lambda: 0
        made = inst.made
        wait_until(lambda: inst.made > made + 10, "audio made ahead", timeout=30)
        push_all(s, loud(8))
        stats = s.stats()["barge_in"]
        assert stats["interrupts"] == 1 and stats["speech_starts"] == 2, stats
        assert stats["dropped_blocks"] >= 10, stats
        assert stats["dropped_samples"] == stats["dropped_blocks"] * BLOCK, stats
        assert talker.interrupts == 1
        # The worker stopped making the reply, and the node saw the interrupt on its thread.
        assert inst.closed.wait(30)
        wait_until(lambda: inst.controls == ["interrupt"], "the interrupt seen", timeout=30)
        sched.poll_room = lambda: None
        made = inst.made
        # While the user goes on speaking, nothing of the cut reply comes out.
        after = push_all(s, loud(3))
        assert not [o for o in after if type(o) is NumpyData], after
        assert inst.made == made
        # The user's turn ends: the bot answers it, a new reply from its start.
        got = push_all(s, quiet(6))
        wait_until(lambda: inst.made > made, "the next reply", timeout=30)
        got += push_all(s, quiet(2))
        wait_until(lambda: talker.transport.ready(), "its audio", timeout=30)
        got += push_all(s, quiet(1))
        assert [o.pts for o in got if type(o) is NumpyData][:1] == [0], got
        assert s.stats()["barge_in"]["interrupts"] == 1


def test_a_graph_without_a_detector_has_no_barge_in():
    m = dict(MANIFEST, nodes=MANIFEST["nodes"][1:],
             connections=[{"from": "input", "to": "stt"}, {"from": "stt", "to": "tts"},
                          {"from": "tts", "to": "output"}])
    reg = isolated_registry()
    reg.register(Heard)
    reg.register(Talker)
    with rm.Pipeline.from_manifest(m, registry=reg).session() as s:
        assert "barge_in" not in s.stats()


def test_the_output_queue_drops_what_a_barge_in_asked_for_and_counts_it():
    q = OutputQueue(8)
    for k in range(5):
        assert q.put(np.zeros((BLOCK, 1), np.float32), k)
    q.consumed, q.offset = 1, 100        # one played, the next partly
    q.drop_queued()
    assert q.put(np.zeros((BLOCK, 1), np.float32), 5)   # written after the request: kept
    q.consumer_drop()
    assert (q.dropped_blocks, q.dropped_samples) == (4, 4 * BLOCK - 100)
    assert q.consumed == 5 and q.offset == 0 and q.pending == 1
    q.consumer_drop()                    # asked once, dropped once
    assert q.dropped_blocks == 4


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "play", "ask", "drop"]),
                          st.integers(1, 3 * BLOCK)), max_size=60))
def test_every_queued_frame_is_played_dropped_or_still_queued(ops):
    # The kind: audio queued for the output after a barge-in is either played or dropped and
    # counted, whatever the order of puts, plays, drop requests and drops (never both, never
    # lost), and a drop never reaches what was written after it was asked for.
    q = OutputQueue(8)
    written = played = 0
    for op, n in ops:
        if op == "put":
            if q.put(np.zeros((n, 1), np.float32), 0):
                written += n
        elif op == "play":            # the callback takes up to n frames, as _play does
            while n and q.consumed < q.written:
                item = q.items[q.consumed % q.capacity]
                take = min(n, item.shape[0] - q.offset)
                n -= take
                played += take
                if q.offset + take == item.shape[0]:
                    q.offset, q.consumed = 0, q.consumed + 1
                else:
                    q.offset += take
        elif op == "ask":
            q.drop_queued()
        else:
            asked = q.drop_to
            q.consumer_drop()
            assert q.consumed == max(asked, q.consumed)
        left = sum(q.items[k % q.capacity].shape[0] for k in range(q.consumed, q.written))
        assert written == played + q.dropped_samples + left - q.offset


def test_the_output_callback_drops_the_queue_a_barge_in_asked_for_and_reports_it():
    from remotemedia.engine.node import AudioFormat
    from remotemedia.io.device_stream import DeviceStream
    from remotemedia.io.portaudio import DeviceInfo
    dev = DeviceInfo(0, "test", "JACK Audio Connection Kit", 0, 2, float(RATE), False, True)
    stream = DeviceStream(AudioFormat(RATE, 1, BLOCK), output_device=dev, output_channels=1)
    for k in range(4):
        assert stream.outq.put(np.full((BLOCK, 1), 0.5, np.float32), k)
    out = np.zeros((BLOCK, 1), np.float32)
    stream._play(out, BLOCK, 0.0, 0)           # the first block plays
    assert out[0, 0] == 0.5
    stream.outq.drop_queued()                  # the engine's side: a barge-in
    stream._play(out, BLOCK, 0.02, 1)          # the callback drops the rest: silence
    assert not out.any()
    assert stream.report()["interrupt_dropped"] == {"blocks": 3, "samples": 3 * BLOCK}
    assert stream.played == 1 and stream.outq.pending == 0
