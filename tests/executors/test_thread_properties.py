"""The thread executor's accounting as a property: for any queue size, policy, node timing and
a failing block under skip, every block is an output or one counted drop, outputs keep their
order, the node's drops equal the session's, and every reader slot comes back."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotemedia import Pipeline, RuntimeData
from remotemedia.engine.data import NumpyData
from remotemedia.testing import manifest

ALLOW = ["tests.executors.nodes"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.sampled_from(["block", "drop_oldest", "drop_newest"]),
       queue_size=st.integers(1, 4),
       delays=st.lists(st.sampled_from([0.0, 0.3, 2.0, -1.0]), min_size=1, max_size=12))
def test_every_block_is_an_output_or_a_counted_drop(policy, queue_size, delays):
    node = {"id": "t", "node_type": "tests.executors.nodes:Scripted", "executor": "thread",
            "queue_size": queue_size, "queue_policy": policy, "on_error": "skip"}
    m = manifest([node], [{"from": "input", "to": "t"}, {"from": "t", "to": "output"}])
    frames = [RuntimeData.Numpy(np.full(960, d, np.float32), seq=i, pts=960 * i)
              for i, d in enumerate(delays)]
    with Pipeline.from_manifest(m, allow_import=ALLOW).session() as s:
        outs = [o for f in frames for o in s.push(f)] + s.end_of_stream()
        stats = s.stats()
    got = [o for o in outs if isinstance(o, NumpyData)]
    seqs = [o.seq for o in got]
    failing = sum(1 for d in delays if d < 0)
    assert seqs == sorted(set(seqs))
    assert not any(delays[i] < 0 for i in seqs)
    assert len(got) + stats["drops"] == len(frames)
    assert stats["nodes"]["t"]["drops"] == stats["drops"]
    assert stats["errors"] <= failing
    if policy == "block":
        assert stats["drops"] == failing and stats["errors"] == failing
    for f in frames:
        assert f._ownership.readers == sum(1 for o in got if o is f)
