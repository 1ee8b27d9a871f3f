"""Double talk in the issue's room: the user's sentence spoken over the bot's reply, after the
canceller has heard `bot_s` seconds of the bot, against the same sentence spoken alone (the bot
silent), each through the room (EchoPath: 100 ms delay, -6 dB echo, RT60 300 ms, babble at
20 dB SNR) and the canceller, then transcribed by Whisper (tiny.en, beam 1) from the
canceller's output over the sentence's span.

Used by tests/echo/test_double_talk.py and benchmarks/bench_echo.py."""

from __future__ import annotations

import numpy as np
import soxr

from remotemedia.engine.data import NumpyData
from remotemedia.engine.node import AudioFormat, NodeContext

from ..speech.speech_audio import espeak, wer
from .room_audio import BLOCK, RATE, bot_speech, level

#: the user's sentence: 11 words, one word wrong is 9 points of WER (the conversation test's)
SENTENCE = "Please tell me what time it is in London right now."
USER_DBFS = -26.0
#: the issue's room
ROOM = {"delay_ms": 100.0, "gain_db": -6.0, "rt60_ms": 300.0, "noise": "babble",
        "snr_db": 20.0, "seed": 7}
#: audio transcribed before the sentence starts and after it ends (s)
PAD_S = (0.3, 0.6)
_cache: dict = {}


def user_speech() -> np.ndarray:
    """SENTENCE by espeak-ng (en-us, 130 words/min) at 48 kHz, USER_DBFS, float32."""
    if "user" not in _cache:
        _cache["user"] = level(espeak(SENTENCE, RATE, 130), USER_DBFS)
    return _cache["user"]


def _bind(node):
    node.bind(NodeContext(node.node_id, AudioFormat(RATE, 1, BLOCK)))
    node.setup()
    return node


def through_room(bot_s: float | None, canceller: dict, stop_after_s: float | None = None,
                 counts: dict | None = None, room: dict | None = None
                 ) -> tuple[np.ndarray, int, int]:
    """The canceller's output (float32 at 48 kHz) for the user's sentence starting `bot_s`
    seconds into the bot's speech (None: the bot silent throughout), and the sentence's
    [start, end) samples in it. `canceller`: EchoCancel's params. `stop_after_s`: the bot
    stops that long after the user starts (a barge-in; None: it talks on). `counts`, when
    given, gets the node's double_talk_blocks before the sentence ("before"), at the end
    ("after") and in its stats ("stats"). `room`: EchoPath params over ROOM's (e.g.
    {"gain_db": -120.0}: no echo)."""
    from remotemedia.nodes.echo import EchoCancel
    from remotemedia.nodes.room import EchoPath
    user = user_speech()
    start = int(round((bot_s or 3.0) * RATE)) // BLOCK * BLOCK
    total = (start + user.shape[0] + int(PAD_S[1] * RATE)) // BLOCK * BLOCK + BLOCK
    far = np.zeros(total, np.float32)
    if bot_s is not None:
        bot = bot_speech(repeat=2)
        far[:min(total, bot.shape[0])] = bot[:total]
        if stop_after_s is not None:
            far[start + int(stop_after_s * RATE):] = 0.0
    near = np.zeros(total, np.float32)
    near[start:start + user.shape[0]] = user
    room = _bind(EchoPath("room", **EchoPath.check_params({**ROOM, **(room or {})})))
    aec = _bind(EchoCancel("aec", **EchoCancel.check_params({"report_blocks": 0,
                                                             **canceller})))
    out = np.zeros(total, np.float32)
    for k in range(0, total, BLOCK):
        if k == start and counts is not None:
            counts["before"] = aec.double_talk_blocks
        mic = room.process({"far": NumpyData(far[k:k + BLOCK], pts=k),
                            "near": NumpyData(near[k:k + BLOCK], pts=k)})
        res = aec.process({"mic": mic, "reference": NumpyData(far[k:k + BLOCK], pts=k)})
        out[k:k + BLOCK] = res.array
    if counts is not None:
        counts["after"] = aec.double_talk_blocks
        counts["stats"] = aec.executor_stats()["echo"]["double_talk_blocks"]
    aec.teardown()
    return out, start, start + user.shape[0]


def heard(bot_s: float | None, canceller: dict, stop_after_s: float | None = None,
          room: dict | None = None) -> tuple[float, str]:
    """(WER, text) of the sentence as Whisper hears it in the canceller's output (through_room's
    arguments)."""
    from remotemedia.nodes import whisper
    out, a, b = through_room(bot_s, canceller, stop_after_s, room=room)
    seg = out[max(0, a - int(PAD_S[0] * RATE)):b + int(PAD_S[1] * RATE)]
    audio = soxr.resample(seg, RATE, 16000).astype(np.float32)
    model = whisper.load_model(whisper.default_model_dir())
    segments, _ = whisper.transcribe(model, audio, language="en", beam_size=1)
    text = " ".join(s.text.strip() for s in segments)
    return wer([SENTENCE], [text]), text
