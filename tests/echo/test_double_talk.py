"""Double talk in the issue's room (tests/echo/double_talk.py): the user's sentence spoken over
the bot's reply, early in the reply (5 s of the bot: AEC3's suppressor still young), is heard
by Whisper (tiny.en, the project's model) within 10 WER points of the same sentence alone; the
canceller says in its counter and events how many blocks it took for double talk, and takes
none in single talk."""

from __future__ import annotations

import pytest

from remotemedia.engine.data import NumpyData

from ..speech.speech_audio import needs_espeak, needs_model
from .double_talk import heard, through_room
from .room_audio import needs_echo, room_manifest, run_room, settled, stereo, bot_speech

pytestmark = [needs_echo, needs_espeak]


@pytest.mark.slow
@needs_model
def test_early_in_the_bots_reply_the_users_sentence_is_heard_as_well_as_alone():
    alone, text_alone = heard(None, {})
    over, text_over = heard(5.0, {})
    assert over <= alone + 0.10, (text_over, text_alone)


def test_double_talk_blocks_count_the_users_voice_over_the_bot_and_only_that():
    from remotemedia.nodes.echo import EchoCancel
    out, a, b = through_room(5.0, {})
    del out
    # the same run, read through the node's counter: through_room's node is internal, so
    # run the room again and keep the node
    import remotemedia.engine.node as node_mod
    import numpy as np
    from remotemedia.nodes.room import EchoPath
    from .double_talk import ROOM, user_speech
    from .room_audio import BLOCK, RATE
    ctx = node_mod.NodeContext
    fmt = node_mod.AudioFormat(RATE, 1, BLOCK)
    room = EchoPath("room", **EchoPath.check_params(dict(ROOM)))
    room.bind(ctx("room", fmt))
    room.setup()
    aec = EchoCancel("aec", **EchoCancel.check_params({"report_blocks": 0}))
    aec.bind(ctx("aec", fmt))
    aec.setup()
    far = bot_speech(repeat=2)[:b + RATE]
    near = np.zeros_like(far)
    near[a:b] = user_speech()
    talk_before = None
    for k in range(0, far.shape[0] - BLOCK + 1, BLOCK):
        if k == a:
            talk_before = aec.double_talk_blocks
        mic = room.process({"far": NumpyData(far[k:k + BLOCK], pts=k),
                            "near": NumpyData(near[k:k + BLOCK], pts=k)})
        aec.process({"mic": mic, "reference": NumpyData(far[k:k + BLOCK], pts=k)})
    assert talk_before == 0                       # the bot alone: none
    assert aec.double_talk_blocks >= 20           # the user over it: taken
    assert aec.executor_stats()["echo"]["double_talk_blocks"] == aec.double_talk_blocks


@pytest.mark.parametrize("noise", ["none", "babble"])
def test_in_single_talk_no_block_is_taken_for_double_talk_and_erle_holds(noise):
    events, _ = run_room(room_manifest(noise=noise, snr_db=20.0), stereo(bot_speech(repeat=2)))
    assert sum(e["double_talk_blocks"] for e in events) == 0
    assert min(settled(events, 3.0)) >= (30.0 if noise == "none" else 18.0)


def test_double_talk_off_leaves_the_linear_canceller_out():
    from remotemedia.nodes.echo import EchoCancel
    node = EchoCancel("aec", **EchoCancel.check_params({"double_talk": "off"}))
    import remotemedia.engine.node as node_mod
    from .room_audio import BLOCK, RATE
    node.bind(node_mod.NodeContext("aec", node_mod.AudioFormat(RATE, 1, BLOCK)))
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
