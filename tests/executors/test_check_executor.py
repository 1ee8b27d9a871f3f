"""`remotemedia.testing.check_executor`: the thread executor keeps every rule, and an executor
broken in one way fails the rule that says so (process and Ray: tests/ipc, tests/ray)."""

from __future__ import annotations

import pytest

from remotemedia.engine.errors import ExecutorStartError
from remotemedia.executors.base import Reply, executor_factory
from remotemedia.executors.thread import ThreadNode, ThreadTransport
from remotemedia.testing import check_executor
from remotemedia.testing.executor_checks import RULES


def test_the_thread_executor_keeps_every_rule():
    report = check_executor("thread")
    assert report.ok and report.passed == list(RULES)


def inline(spec):
    """No executor at all: the node itself, called on the pushing thread."""
    return spec.node_class(spec.id, **spec.params)


class ShiftsPts(ThreadTransport):
    def receive(self, requests, counters):
        for reply in super().receive(requests, counters):
            yield Reply(reply.rid, [o.with_array(o.array, pts=(o.pts or 0) + 1)
                                    for o in reply.outputs], reply.error, reply.cause,
                        reply.last)


class BrokenOrder(ThreadNode):
    transport_class = ShiftsPts


class NeverDrops(ThreadNode):
    def __init__(self, spec):
        super().__init__(spec)
        self._policy = "block"


class SwallowsErrors(ThreadNode):
    def _node_raised(self, request, reply, counters):
        pass


class NeverRestarts(ThreadNode):
    def _start(self):
        if self.restarts:
            raise ExecutorStartError("no second worker")
        super()._start()


class NoStats(ThreadNode):
    def executor_stats(self):
        return {}


class TeardownOnce(ThreadNode):
    torn = False

    def teardown(self):
        if self.torn:
            raise RuntimeError("torn down twice")
        self.torn = True
        super().teardown()


class DoesNotDrain(ThreadNode):
    def on_control(self, event, _retry=True):
        counters = self.context.counters
        self._send(event, counters)
        out: list = []
        self._collect(out, counters)
        return out


BROKEN = {
    "order": BrokenOrder, "drops": NeverDrops, "errors": SwallowsErrors,
    "restart": NeverRestarts, "stats": NoStats, "close": TeardownOnce, "drain": DoesNotDrain,
}


@pytest.mark.parametrize("rule", RULES)
def test_a_broken_executor_fails_the_rule(rule):
    factory = executor_factory(BROKEN[rule], "Broken", where=None)
    report = check_executor(factory, raise_on_failure=False)
    assert rule in {f.split(":", 1)[0] for f in report.failures}, report.failures
    assert rule not in report.passed


def test_no_executor_at_all_fails_drops_errors_restart_and_stats():
    report = check_executor(inline, raise_on_failure=False)
    failed = {f.split(":", 1)[0] for f in report.failures}
    assert {"drops", "errors", "restart", "stats"} <= failed
    assert {"order", "close", "drain"} <= set(report.passed)
    with pytest.raises(AssertionError, match="breaks 4 rule"):
        check_executor(inline)


def test_a_temporary_executor_is_gone_after_the_check():
    from remotemedia.engine.executors import executors
    before = executors.names()
    check_executor(inline, raise_on_failure=False, skip=RULES)
    assert executors.names() == before
