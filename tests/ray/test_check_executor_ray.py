"""`executor: ray` keeps every rule of remotemedia.testing.check_executor, on the running head."""

import pytest

from remotemedia.testing import check_executor
from remotemedia.testing.executor_checks import RULES

pytestmark = pytest.mark.usefixtures("ray_cluster")


def test_the_ray_executor_keeps_every_rule():
    report = check_executor("ray")
    assert report.ok and report.passed == list(RULES)
