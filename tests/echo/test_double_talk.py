"""Double talk in the issue's room (tests/echo/double_talk.py): the user's sentence spoken over
the bot's reply, early in the reply (5 s of the bot: AEC3's suppressor still young), is heard
by Whisper (tiny.en, the project's model) within 10 WER points of the same sentence alone; the
canceller says in its counter and events how many blocks it took for double talk, and takes
none in single talk."""

from __future__ import annotations

import pytest

from remotemedia.engine.node import AudioFormat, NodeContext

from ..speech.speech_audio import needs_espeak, needs_model
from .double_talk import heard, through_room
from .room_audio import (BLOCK, RATE, bot_speech, needs_echo, room_manifest, run_room, settled,
                         stereo)

pytestmark = [needs_echo, needs_espeak]


@pytest.mark.slow
@needs_model
def test_early_in_the_bots_reply_the_users_sentence_is_heard_as_well_as_alone():
    alone, text_alone = heard(None, {})
    over, text_over = heard(5.0, {})
    assert over <= alone + 0.10, (text_over, text_alone)


def test_double_talk_blocks_count_the_users_voice_over_the_bot_and_only_that():
    counts = {}
    through_room(5.0, {}, counts=counts)
    assert counts["before"] == 0                  # the bot alone: none
    assert counts["after"] >= 20                  # the user over it: taken
    assert counts["stats"] == counts["after"]     # the stats report says the same


@pytest.mark.parametrize("noise", ["none", "babble"])
def test_in_single_talk_no_block_is_taken_for_double_talk_and_erle_holds(noise):
    events, _ = run_room(room_manifest(noise=noise, snr_db=20.0), stereo(bot_speech(repeat=2)))
    assert sum(e["double_talk_blocks"] for e in events) == 0
    assert min(settled(events, 3.0)) >= (30.0 if noise == "none" else 18.0)


def test_double_talk_off_leaves_the_linear_canceller_out():
    from remotemedia.nodes.echo import EchoCancel
    node = EchoCancel("aec", **EchoCancel.check_params({"double_talk": "off"}))
    node.bind(NodeContext("aec", AudioFormat(RATE, 1, BLOCK)))
    node.setup()
    assert node._linear is None
    node.teardown()


def test_a_live_report_gets_the_cancellers_erle_from_the_run_stats():
    from remotemedia.conversation_room import live_echo_summary
    _, res = run_room(room_manifest(noise="none"), stereo(bot_speech()))
    room = live_echo_summary(res.stats)
    assert room["canceller"] is True and room["erle_after_convergence_db"] >= 30.0
    assert room["residual_echo_dbfs"] < -60.0 and room["converged_at_s"] is not None
    assert live_echo_summary({"nodes": {"vad": {"calls": 3}}}) is None


def test_without_libspeexdsp_the_manifest_is_refused_naming_the_package(monkeypatch):
    import ctypes

    import remotemedia as rm
    import remotemedia.nodes.echo_linear as el
    from remotemedia.engine.errors import ManifestError

    def missing(*args, **kwargs):
        raise OSError("libspeexdsp.so.1: cannot open shared object file")
    monkeypatch.setattr(el, "_lib", None)
    monkeypatch.setattr(ctypes, "CDLL", missing)
    with pytest.raises(ManifestError) as err:
        rm.Pipeline.from_manifest(room_manifest())
    assert "libspeexdsp1" in str(err.value) and "double_talk: off" in str(err.value)
    m = room_manifest()
    next(n for n in m["nodes"] if n["id"] == "aec")["params"]["double_talk"] = "off"
    rm.Pipeline.from_manifest(m)          # off: the linear stage is not needed


def test_blocks_longer_than_the_format_said_grow_the_linear_stage():
    """A graph whose block size is unknown until the first block (the node set up for 960)."""
    import numpy as np

    from remotemedia.engine.data import NumpyData
    from remotemedia.nodes.echo import EchoCancel
    node = EchoCancel("aec", **EchoCancel.check_params({"report_blocks": 25}))
    node.bind(NodeContext("aec", AudioFormat(RATE, 1, None)))
    node.setup()
    far = bot_speech()
    echo = np.concatenate([np.zeros(RATE // 20, np.float32), far])[:far.shape[0]] * 0.5
    events = []
    for k in range(0, far.shape[0] - 2 * BLOCK, 2 * BLOCK):
        out = node.process({"mic": NumpyData(echo[k:k + 2 * BLOCK], pts=k),
                            "reference": NumpyData(far[k:k + 2 * BLOCK], pts=k)})
        if isinstance(out, list):
            assert out[0].array.shape == (2 * BLOCK,)
            events.append(out[1].value)
    assert node.double_talk_blocks == 0
    assert max(e["echo_erle_db"] or 0.0 for e in events) >= 30.0
    node.teardown()
