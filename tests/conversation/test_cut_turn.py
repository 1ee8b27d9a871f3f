"""A conversation stopped (a signal) while the user is still speaking: that turn is reported
as cut, with no WER (it read 1.0: the words not yet said were scored as misheard)."""

from __future__ import annotations

import os

import pytest

from remotemedia.conversation import ConversationRun
from remotemedia.converse import _Sim

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")


@pytest.mark.slow
def test_a_turn_cut_by_a_stop_has_no_wer_and_says_it_was_cut():
    run = ConversationRun(ASSISTANT, {"turns": [{"say": "Hello there, how are you doing today?"}]})

    class StopsMidSentence(_Sim):
        def tick(self, t):
            if t >= 1.0:                  # the user began at 0.5 s and speaks for ~2 s
                run.stop("interrupted")   # as the signal handler does
            return super().tick(t)

    run.sim_class = StopsMidSentence
    report = run.run()
    assert report["stop_reason"] == "interrupted" and report["passed"] is False
    (turn,) = report["turns"]
    assert turn["cut"] is True and turn["wer"] is None
