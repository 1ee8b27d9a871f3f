"""`executor: process` keeps every rule of remotemedia.testing.check_executor."""

from remotemedia.testing import check_executor
from remotemedia.testing.executor_checks import RULES


def test_the_process_executor_keeps_every_rule():
    report = check_executor("process")
    assert report.ok and report.passed == list(RULES)
