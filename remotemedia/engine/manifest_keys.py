"""The names a manifest's two shapes are read by: the graph's two ends, the shapes, the keys of a
native node entry, and the upstream's keys, block size and audio defaults. engine/manifest.py
(validation) and engine/upstream_shape.py (translation) both read them; neither imports the
other's constants, so the engine has no import circle."""

from __future__ import annotations

from .node import AudioFormat

INPUT = "input"
OUTPUT = "output"
RESERVED_IDS = frozenset({INPUT, OUTPUT})
NATIVE, UPSTREAM = "native", "upstream"
#: the keys a native node entry may have
NODE_KEYS = frozenset({"id", "node_type", "params", "executor", "on_error", "queue_size",
                       "queue_policy", "description", "resources"})
#: the upstream CLI's and stream-health tools' chunk (its analyzers' thresholds are tuned to it)
UPSTREAM_BLOCK_SIZE = 4000
#: audio defaults of the upstream's CLI (`remotemedia stream --sample-rate 16000 --channels 1`)
UPSTREAM_AUDIO = AudioFormat(sample_rate=16000, channels=1, block_size=UPSTREAM_BLOCK_SIZE)
# The upstream's keys of a node entry. `is_output_node` takes effect here; the others
# are accepted and have none, each said once by a warning.
UPSTREAM_NODE_KEYS = ("is_streaming", "is_output_node", "capabilities", "media_capabilities",
                      "host", "runtime_hint", "execution", "fast_path", "python_deps", "docker")
RUNTIME_HINTS = ("rust_python", "cpython", "cpython_wasm", "auto")
