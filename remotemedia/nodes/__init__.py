"""Built-in nodes, one module per family. Importing this package registers them."""

from . import analysis, audio, basic, convert, health, resample, vad  # noqa: F401
