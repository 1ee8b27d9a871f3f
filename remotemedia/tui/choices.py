"""What the input/output picker offers: the SPECs that remotemedia.io understands.

The SPEC grammar lives in `remotemedia.io.spec` (SOURCE_SPECS, SINK_SPECS); this module turns
its entries into concrete, pickable choices with a line of description each. Templated entries
(`sine:FREQ`, `file:PATH`) become examples; any SPEC can also be typed in the picker.
"""

from __future__ import annotations

import importlib

from .screens import IoChoice

_DESCRIPTIONS = {
    "default": "the system default (the clocked virtual device without a sound card)",
    "virtual": "clocked virtual device, paced in real time",
    "virtual:sine": "virtual device playing a 440 Hz sine",
    "sine:440": "440 Hz sine at -6 dBFS",
    "sine:1000": "1 kHz sine at -6 dBFS",
    "sine:1000:1.0": "1 kHz sine at full scale (clips)",
    "chirp": "20 Hz → 20 kHz sweep over 5 s, repeating",
    "noise": "white noise at -12 dBFS",
    "silence": "digital silence",
    "null": "discard every frame",
    "file:remotemedia-out.wav": "write a 32-bit float WAV in the working folder",
    "raw:-": "f32 little-endian on stdin/stdout (not useful inside the TUI)",
}

# Templates in the SPEC lists become these concrete examples.
_EXAMPLES = {
    "sine:FREQ": ("sine:440", "sine:1000", "sine:1000:1.0"),
    "virtual": ("virtual", "virtual:sine"),
    "file:PATH.wav": ("file:remotemedia-out.wav",),
}

# A terminal UI owns stdin and stdout, so the raw pipe ends make no sense here; file:PATH
# inputs need a real path, typed in the picker.
_HIDDEN = {"raw:-", "file:PATH"}

_FALLBACK_SOURCES = ("default", "virtual", "sine:FREQ", "chirp", "noise", "silence")
_FALLBACK_SINKS = ("default", "virtual", "file:PATH.wav", "null")


def _expand(specs) -> list[IoChoice]:
    out = []
    for spec in specs:
        if spec in _HIDDEN:
            continue
        for concrete in _EXAMPLES.get(spec, (spec,)):
            out.append(IoChoice(concrete, _DESCRIPTIONS.get(concrete, "")))
    return out


def io_choices() -> tuple[list[IoChoice], list[IoChoice]]:
    """(inputs, outputs) as the installed io module lists them."""
    try:
        spec = importlib.import_module("remotemedia.io.spec")
    except ModuleNotFoundError as exc:
        if exc.name != "remotemedia.io.spec":
            raise
        return _expand(_FALLBACK_SOURCES), _expand(_FALLBACK_SINKS)
    return (_expand(getattr(spec, "SOURCE_SPECS", _FALLBACK_SOURCES)),
            _expand(getattr(spec, "SINK_SPECS", _FALLBACK_SINKS)))
