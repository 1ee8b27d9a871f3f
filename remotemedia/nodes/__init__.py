"""Built-in nodes, one module per family. Importing this package registers them."""

from . import analysis, audio, basic, convert, health, resample, vad  # noqa: F401
# The upstream's node family under its names (UPSTREAM.md Part B §2), and its aliases.
from . import upstream_health, upstream_misc, upstream_speech  # noqa: F401
