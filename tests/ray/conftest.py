"""A real Ray cluster for the tests that need one: the local head run_test.sh starts
(`ray start --head --num-cpus 2`), or one `ray.init()` starts here. Where Ray is missing or
cannot start, those tests skip with the reason (and fail under CI=true, whose scripts install
and start it)."""

from __future__ import annotations

import os

import pytest


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"Ray is needed under CI: {reason}")
    pytest.skip(reason)


# Package scope: the connection closes after the last Ray test, so Ray's threads are gone from
# the pytest process before the device tests run.
@pytest.fixture(scope="package")
def ray_cluster():
    try:
        import ray
    except ImportError:
        _unavailable("Ray is not installed (pip install 'remotemedia[ray]'; run_test.sh does)")
    if not ray.is_initialized():
        import logging
        try:
            ray.init(logging_level=logging.WARNING, include_dashboard=False)
        except Exception as exc:
            _unavailable(f"Ray cannot start here: {type(exc).__name__}: {exc}")
    yield ray
    ray.shutdown()


def manifest(node_type: str, *, params=None, **node_keys) -> dict:
    node = {"id": "remote", "node_type": node_type, "executor": "ray", **node_keys}
    if params:
        node["params"] = params
    return {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
            "nodes": [node],
            "connections": [{"from": "input", "to": "remote"},
                            {"from": "remote", "to": "output"}]}


def inline(m: dict) -> dict:
    keep = {"executor", "resources", "queue_size", "queue_policy"}
    nodes = [{k: v for k, v in n.items() if k not in keep} for n in m["nodes"]]
    return {**m, "nodes": nodes}
