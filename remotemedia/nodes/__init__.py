"""Built-in nodes, one module per family. Importing this package registers them."""


from . import analysis, audio, basic, convert, health, resample, vad  # noqa: F401
from . import transcribe  # noqa: F401  (speech to text)
from . import denoise, echo, room  # noqa: F401  (echo cancellation, noise suppression, rooms)
from . import speak  # noqa: F401  (text to speech)
# The upstream SDK's node family under its names, and its aliases of ours (nodes/upstream/).
from . import upstream  # noqa: F401
from . import respond  # noqa: F401  (the voice loop's reply)


def register_builtins(registry) -> None:
    """Entry point (group `remotemedia.nodes`, name `builtins`): the built-in node types. Their
    modules register into the default registry as they are imported (above); a registry other
    than the default gets them copied in."""
    from ..engine.node import registry as default
    if registry is not default:
        for name, cls in default._types.items():
            registry.register(cls, name)
