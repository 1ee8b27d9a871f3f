"""Built-in nodes, one module per family. Importing this package registers them."""

from . import analysis, audio, basic, convert, health, resample, vad  # noqa: F401
from . import transcribe, upstream_transcribe  # noqa: F401  (speech to text)
from . import denoise, echo, room  # noqa: F401  (echo cancellation, noise suppression, rooms)
# The upstream's node family under its names (UPSTREAM.md Part B §2), and its aliases.
from . import (upstream_analyzers, upstream_events, upstream_evidence,  # noqa: F401
               upstream_health, upstream_misc, upstream_speech)
# Text to speech (Speak) and the upstream's TTS and CLI end nodes.
from . import speak, upstream_tts  # noqa: F401
from . import respond  # noqa: F401  (the voice loop's reply)


def register_builtins(registry) -> None:
    """Entry point (group `remotemedia.nodes`, name `builtins`): the built-in node types. Their
    modules register into the default registry as they are imported (above); a registry other
    than the default gets them copied in."""
    from ..engine.node import registry as default
    if registry is not default:
        for name, cls in default._types.items():
            registry.register(cls, name)
