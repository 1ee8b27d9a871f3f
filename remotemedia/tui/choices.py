"""What the input/output picker offers: the sound devices PortAudio sees, then the SPECs that
remotemedia.io understands.

Devices come from `remotemedia.io.devices.list_devices()` as `device:INDEX` choices (the system
defaults marked); the SPEC grammar lives in `remotemedia.io.spec` (SOURCE_SPECS, SINK_SPECS) and
this module turns its entries into concrete, pickable choices with a line of description each.
Templated entries (`sine:FREQ`, `file:PATH`) become examples; any SPEC can also be typed in the
picker.
"""

from __future__ import annotations

import importlib

from .screens import IoChoice

_DESCRIPTIONS = {
    "default": "system default, else virtual",
    "virtual": "clocked virtual device",
    "virtual:sine": "virtual device, 440 Hz sine",
    "sine:440": "440 Hz sine at -6 dBFS",
    "sine:1000": "1 kHz sine at -6 dBFS",
    "sine:1000:1.0": "1 kHz sine at full scale (clips)",
    "chirp": "20 Hz → 20 kHz sweep in 5 s",
    "noise": "white noise at -12 dBFS",
    "silence": "digital silence",
    "null": "discard every frame",
    "file:out.wav": "float WAV in the working folder",
    "raw:-": "f32 little-endian on stdin/stdout (not useful inside the TUI)",
}

# Templates in the SPEC lists become these concrete examples.
_EXAMPLES = {
    "sine:FREQ": ("sine:440", "sine:1000", "sine:1000:1.0"),
    "virtual": ("virtual", "virtual:sine"),
    "file:PATH.wav": ("file:out.wav",),
}

# A terminal UI owns stdin and stdout, so the raw pipe ends make no sense here; file:PATH
# inputs need a real path, typed in the picker.
_HIDDEN = {"raw:-", "file:PATH"}

def _expand(specs) -> list[IoChoice]:
    out = []
    for spec in specs:
        if spec in _HIDDEN:
            continue
        for concrete in _EXAMPLES.get(spec, (spec,)):
            out.append(IoChoice(concrete, _DESCRIPTIONS.get(concrete, "")))
    return out


def device_choices() -> tuple[list[IoChoice], list[IoChoice], str | None]:
    """(inputs, outputs, problem): the sound devices as `device:INDEX` choices, or the reason
    there are none (no PortAudio, no devices) to show in the picker."""
    from ..engine.errors import DeviceError
    from ..io import devices
    if not devices.portaudio_available():
        return [], [], "no PortAudio: sound devices are not available"
    try:
        found = devices.list_devices()
    except DeviceError as exc:
        return [], [], str(exc)
    inputs, outputs = [], []
    for d in found:
        for kind, out in (("input", inputs), ("output", outputs)):
            channels = d.channels(kind)
            if channels <= 0:
                continue
            default = d.default_input if kind == "input" else d.default_output
            api = d.host_api.replace(" Audio Connection Kit", "")
            out.append(IoChoice(f"device:{d.index}",
                                f"{'★ ' if default else ''}{d.name} ({api}, {channels} ch)"))
    problem = None if inputs or outputs else "PortAudio finds no sound device"
    return inputs, outputs, problem


def io_choices() -> tuple[list[IoChoice], list[IoChoice], str | None]:
    """(inputs, outputs, device problem) as the installed io module lists them: devices first,
    then generators, files and the virtual device."""
    dev_in, dev_out, problem = device_choices()
    spec = importlib.import_module("remotemedia.io.spec")
    return (dev_in + _expand(spec.SOURCE_SPECS), dev_out + _expand(spec.SINK_SPECS), problem)
