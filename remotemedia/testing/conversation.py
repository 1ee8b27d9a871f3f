"""Conversation tests for pytest: a scripted user against a voice manifest, simulated time.

    from remotemedia.testing import Conversation
    conv = Conversation("manifests/assistant.yaml", {"turns": [{"say": "Hello there",
                        "expect": {"heard": "hello"}}]})
    report = conv.run()
    conv.assert_passed()       # AssertionError listing each failed expectation and why

The runner and the report are remotemedia.conversation's; this adds the assertion.
"""

from __future__ import annotations

from ..conversation import ConversationRun as _Conversation
from ..converse import Costs, ScriptError, UserTurn, load_script


class Conversation(_Conversation):
    """remotemedia.conversation.ConversationRun with `assert_passed()`."""

    def assert_passed(self) -> dict:
        """The report (running the conversation first if it has not run); AssertionError
        naming every failed expectation, turn by turn, with why."""
        report = self.report if self.report is not None else self.run()
        failures = self.failures()
        if failures:
            raise AssertionError("conversation failed:\n  " + "\n  ".join(failures))
        return report


__all__ = ["Conversation", "Costs", "ScriptError", "UserTurn", "load_script"]
