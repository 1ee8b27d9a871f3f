"""remotemedia.testing: the harness remotemedia's own tests use, shipped for users.

Scripted streaming verification in simulated time, without devices or sleeps:

    from remotemedia.testing import chain, run_blocks, assert_audio_close
    result = run_blocks(chain(("g", "Gain", {"db": -6})), signal)
    assert_audio_close(result.audio, signal * 10 ** (-6 / 20), snr_db_min=120)

- MockClock: simulated time with `rate` and `jump()` (trio's MockClock, for audio blocks)
- ListSource, CollectingSink: a source of given blocks and a sink that keeps what arrives
- run_blocks / RunResult / blocks_of: a manifest over blocks through the real StreamRunner
- manifest, chain, one_node, to_yaml: manifest builders (to_yaml: text for the CLI)
- isolated_registry, registered: node registries a test may change freely
- snr_db, align, assert_audio_close, Golden: assertions and golden files
- check_node / ConformanceReport: the conformance kit for node authors
- check_source / check_sink: the conformance kit for source and sink authors
- check_executor: the conformance kit for executors (queue, failure policy, stats, drain)
- wait_until: wait for a condition another thread brings about, never a fixed sleep
- Conversation: a scripted user against a voice manifest in simulated time (assert_passed)

Loaded as a pytest plugin (entry point `pytest11`: remotemedia), it adds fixtures
`rm_clock`, `rm_registry`, `rm_run` and `golden`, and the option `--update-golden`.
"""

from .audio import Golden, align, assert_audio_close, snr_db
from .check_ends import check_sink, check_source
from .clock import MockClock
from .conformance import ConformanceReport, check_node
from .conversation import Conversation
from .ends import CollectingSink, ListSource
from .executor_checks import check_executor
from .manifests import chain, manifest, one_node, to_yaml
from .registry import isolated_registry, registered
from .run import RunResult, blocks_of, run_blocks
from .wait import wait_until

__all__ = [
    "CollectingSink", "ConformanceReport", "Conversation", "Golden", "ListSource", "MockClock",
    "RunResult",
    "align", "assert_audio_close", "blocks_of", "chain", "check_executor", "check_node",
    "check_sink", "check_source", "isolated_registry", "manifest", "one_node", "registered",
    "run_blocks", "snr_db", "to_yaml", "wait_until",
]
