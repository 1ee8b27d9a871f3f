"""How a run's audio format is decided: one precedence, for every command.

A run has one sample rate, channel count and block size at its input. Each is decided on its own
by the first of these that gives it:

    1. "command line"   --block-size (and `audio` / `audio_overrides` in the Python API)
    2. "audio block"    the manifest's `audio:` block
    3. "input file"     the input file's own header (rate and channels; a file has no blocks)
    4. "nodes"          what the nodes that receive the input unchanged declare they need
                        (Node.declared_input: a resampler's source rate, the VAD's 16 kHz mono)
    5. "cli_defaults"   an upstream manifest's `metadata.cli_defaults` (sample_rate, channels,
                        chunk_size)
    6. "default"        48 kHz mono in 960-sample blocks; for a manifest in the upstream shape
                        the upstream CLI's 16 kHz mono in 4000-sample blocks

What a lower layer says that disagrees with the decision is not silently dropped: a file at
another rate or channel count than layers 1-2 decided is converted on its way in, with a note
(or refused when the caller asks for the exact format), never reinterpreted; and a node that
cannot take the decided format fails validation naming the node and where the format came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .node import AudioFormat

LAYERS = ("command line", "audio block", "input file", "nodes", "cli_defaults", "default")
KEYS = ("sample_rate", "channels", "block_size")
#: the layers at and below which a file input's own format still decides (Manifest.weak_audio)
REPLACEABLE = frozenset(LAYERS[LAYERS.index("input file"):])


@dataclass(frozen=True)
class Decision:
    """The decided format (every key set) and, per key, the layer that decided it."""

    format: AudioFormat
    origin: Mapping[str, str] = field(default_factory=dict)

    def describe(self, key: str) -> str:
        """'16000 Hz from the default', for messages."""
        unit = {"sample_rate": " Hz", "channels": " ch", "block_size": "-sample blocks"}[key]
        return f"{getattr(self.format, key)}{unit} from the {self.origin[key]}"


def decide(layers: Mapping[str, Mapping[str, int | None] | None]) -> Decision:
    """Each key of KEYS from the first layer (in LAYERS order) that gives it a value. `layers`
    maps a layer name to its values (None or a missing key: that layer says nothing). The
    "default" layer must give every key. ValueError for an unknown layer name."""
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown format layer(s): {', '.join(sorted(unknown))}")
    values: dict[str, int] = {}
    origin: dict[str, str] = {}
    for name in LAYERS:
        for key, value in (layers.get(name) or {}).items():
            if key in KEYS and value is not None and key not in values:
                values[key] = value
                origin[key] = name
    return Decision(AudioFormat(**values), MappingProxyType(origin))
