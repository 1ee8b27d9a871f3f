"""What a recording writes beside its rings: the WAV files (32-bit float, RF64 that stays a plain
RIFF WAV under 4 GiB, headers rewritten as it grows), versions.json and manifest.json, and the
short-write-safe os.write loop the writer thread uses. The Recorder (record.py) calls these from
its writer thread and from open(); none of them runs on the audio path."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

_SFC_RF64_AUTO_DOWNGRADE = 0x1210   # sndfile.h
_SFC_UPDATE_HEADER_NOW = 0x1060      # sndfile.h


def open_float_wav(path, sample_rate: int, channels: int):
    """A soundfile.SoundFile for writing 32-bit float, RF64 with auto-downgrade: a plain RIFF
    WAV while it is under 4 GiB, RF64 beyond (libsndfile's SFC_RF64_AUTO_DOWNGRADE). `path`:
    an open descriptor (int, closed with the SoundFile), as `SafeDir.create_fd` gives."""
    import soundfile as sf
    f = sf.SoundFile(path, "w", samplerate=sample_rate, channels=channels,
                     subtype="FLOAT", format="RF64", closefd=True)
    sf._snd.sf_command(f._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1)
    return f


def update_wav_header(f) -> None:
    """Rewrite an open SoundFile's header with the samples written so far, so that a run killed
    now leaves a WAV that says how long it is (libsndfile's SFC_UPDATE_HEADER_NOW)."""
    import soundfile as sf
    sf._snd.sf_command(f._file, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def versions() -> dict:
    """remotemedia and its audio libraries, as strings (None where one is not installed)."""
    from importlib import metadata

    from . import __version__

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    out = {"remotemedia": __version__, "python": platform.python_version(),
           "platform": platform.platform(), "numpy": np.__version__,
           "soundfile": dist("soundfile"), "sounddevice": dist("sounddevice"),
           "soxr": dist("soxr"), "onnxruntime": dist("onnxruntime"),
           "libsndfile": None, "portaudio": None}
    try:
        import soundfile
        out["libsndfile"] = soundfile.__libsndfile_version__
    except (ImportError, OSError):
        pass
    sd = sys.modules.get("sounddevice")  # never imported here: it must not start PortAudio
    if sd is not None:
        out["portaudio"] = sd.get_portaudio_version()[1]
    return out


def resolved_manifest(manifest, document: dict | None = None) -> dict:
    """The manifest as it ran: the document (or one rebuilt from the validated specs) with the
    audio format and every node's parameters (defaults included) and error policy resolved."""
    a = manifest.audio
    if document is None:
        document = {
            "version": manifest.version, "metadata": dict(manifest.metadata),
            "nodes": [{"id": s.id, "node_type": s.node_type, "params": dict(s.params),
                       "executor": s.executor, "on_error": s.on_error}
                      for s in manifest.nodes],
            "connections": [{"from": c.source, "to": c.target, "input": c.input}
                            for c in manifest.connections]}
    doc = dict(document)
    doc["audio"] = {"sample_rate": a.sample_rate, "block_size": a.block_size,
                    "channels": a.channels}
    # every parameter as it ran, defaults included: a later version's defaults cannot change
    # what a replay of this recording does
    specs = {spec.id: spec for spec in manifest.nodes}
    nodes = []
    for node in doc.get("nodes") or []:
        node = dict(node)
        spec = specs.get(node.get("id"))
        if spec is not None:
            node["params"] = dict(spec.params)
            node["on_error"] = spec.on_error
        nodes.append(node)
    doc["nodes"] = nodes
    return doc
