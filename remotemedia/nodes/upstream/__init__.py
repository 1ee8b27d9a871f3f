"""The upstream SDK's node family under its names and parameters, so its manifests run unchanged.

    common      what the family shares: lenient params, media time, events, drift metrics
    analyzers   per-block level, silence, clipping, channel balance and speech presence
    health      conversation, session, timing and incident nodes (and the family's exports)
    events      the stream-health tools' canonical HealthEvent lines
    evidence    AudioEvidenceNode: clips around incidents
    speech      aliases of our speech-path nodes (FastResampleNode -> Resample, ...)
    transcribe  the speech-to-text nodes (RustWhisperNode -> Transcribe, ...)
    tts         the text-to-speech and CLI end nodes (KokoroTTSNode -> Speak, ...)
    misc        channel splitting by speaker, sentence collecting

Importing this package registers every one of them (remotemedia.nodes imports it).
"""

from . import analyzers, events, evidence, health, misc, speech  # noqa: F401
from . import transcribe, tts  # noqa: F401
