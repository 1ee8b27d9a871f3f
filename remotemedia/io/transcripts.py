"""Transcript outputs: `file:X.srt`, `file:X.vtt`, `file:X.txt`, `file:X.jsonl`.

They take the graph's events, not its audio: every final `{"type": "transcript"}` event
(nodes/transcribe.py) becomes

    .srt    numbered SubRip cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line after each
    .vtt    a WebVTT file (`WEBVTT` header, `HH:MM:SS.mmm` times)
    .txt    one line of text per transcript
    .jsonl  the transcript event itself, one JSON object per line (strict RFC 8259)

Times are media time (from the blocks' pts). A transcript is cut into cues of at most two
lines of at most 42 characters (UTF-8 bytes, as the upstream's SrtOutput counts; a longer word
keeps a line of its own), each timed by its own words; a cue also ends at a sentence's end.
Text that an upstream-style `SrtOutput` node already formatted (metadata `format: srt`) is
written to a .srt output as it is, instead. Each cue is written and flushed as it comes, so the
file is readable while a live run goes on. The file is created when the run starts (after every
check), never through a symbolic link; a graph that sends audio to such an output has it
discarded.

`check_output(manifest, spec)` refuses (UsageError, exit 2) a WAV or raw output for a graph
that only emits text, and `transcript_sink(arg, fmt)` is the hook io/spec.py calls for `file:`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine import strictjson
from ..engine.errors import RemoteMediaError, UsageError, one_line
from ..engine.node import AudioFormat
from ..engine.subtitles import cues, is_final_transcript, srt_cue, timecode
from .base import Sink

SUFFIXES = (".srt", ".vtt", ".txt", ".jsonl")


# -- the sinks ------------------------------------------------------------------------------------

class TranscriptSink(Sink):
    """Base of the transcript files: checks the path when built (UsageError), creates the file
    at open() without following a link, writes what `render(event)` gives for each event,
    discards audio. `write_event(data)` is called by the runner for every non-audio output."""

    suffix = ""

    def __init__(self, path: Path, fmt: AudioFormat):
        super().__init__(fmt)
        self.path = path
        self.description = f"file {path} (transcripts)"
        # by io/safefile.py's rules, as every output: someone else's file or link in a
        # directory others can write is refused, before anything is opened
        from .safefile import check_output
        check_output(path, "--output")
        self.transcripts = 0
        self.audio_frames_discarded = 0
        self._fd: int | None = None

    def writes(self):
        """The output file, for the path check."""
        return [("--output", self.path)]

    def open(self) -> None:
        """Create or replace the file by io/safefile.py's rules (a link or file someone else
        could have planted is refused, never followed or truncated); UsageError if it cannot
        be created. Writes the header, if the format has one."""
        from .safefile import open_output_fd
        self._fd = open_output_fd(self.path, "--output")
        self._put(self.header())

    def header(self) -> str:
        """Text written first (WebVTT's `WEBVTT`); "" by default."""
        return ""

    def write(self, frame) -> None:
        """Audio reaching this output is discarded (counted in `audio_frames_discarded`)."""
        self.audio_frames_discarded += 1

    def write_event(self, data) -> None:
        """Write what the format makes of one non-audio output (most give nothing)."""
        text = self.render(data)
        if text:
            self._put(text)

    def render(self, data) -> str:
        """The text one event adds to the file: a final transcript's (`transcript`, counted in
        `transcripts`); nothing for any other event."""
        if not is_final_transcript(data):
            return ""
        self.transcripts += 1
        return self.transcript(data.value)

    def transcript(self, value: dict) -> str:
        """The text of one final transcript event (its JSON value: text, words, start, end)."""
        raise NotImplementedError

    def _put(self, text: str) -> None:
        if not text or self._fd is None:
            return
        data = text.encode("utf-8")
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            raise RemoteMediaError(f"writing {self.path} failed: {exc.strerror}") from exc

    def extend_report(self, report: dict) -> None:
        """Adds `transcripts`: {"file", "written"} (final transcripts written)."""
        report["transcripts"] = {"file": str(self.path), "written": self.transcripts}

    def close(self) -> None:
        """Close the file (everything is already written). Safe twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                raise RemoteMediaError(f"closing {self.path} failed: {one_line(exc)}") \
                    from exc


class SrtSink(TranscriptSink):
    """SubRip: numbered cues from the final transcripts, or an SrtOutput node's text as is."""

    suffix = ".srt"

    def __init__(self, path, fmt):
        super().__init__(path, fmt)
        self._n = 0
        self._formatted = False

    def render(self, data) -> str:
        """Numbered cues of a final transcript; an SrtOutput node's text as it is."""
        if data.kind == "text" and data.metadata.get("format") == "srt":
            # An upstream SrtOutput node numbered and wrapped them already.
            self._formatted = True
            self.transcripts += 1 if data.text else 0
            return data.text
        return "" if self._formatted else super().render(data)

    def transcript(self, value: dict) -> str:
        """Its cues, numbered on from the last."""
        out = []
        for start, end, text in cues(value):
            self._n += 1
            out.append(srt_cue(self._n, start, end, text))
        return "".join(out)


class VttSink(TranscriptSink):
    """WebVTT: the header, then a cue per group of words of each final transcript."""

    suffix = ".vtt"

    def header(self) -> str:
        """`WEBVTT` and a blank line."""
        return "WEBVTT\n\n"

    def transcript(self, value: dict) -> str:
        """Its cues, `HH:MM:SS.mmm` times."""
        return "".join(f"{timecode(s, '.')} --> {timecode(e, '.')}\n{t}\n\n"
                       for s, e, t in cues(value))


class TxtSink(TranscriptSink):
    """Plain text: one line per final transcript."""

    suffix = ".txt"

    def transcript(self, value: dict) -> str:
        """Its text on one line."""
        return " ".join(str(value.get("text", "")).split()) + "\n"


class JsonlSink(TranscriptSink):
    """JSON lines: each final transcript event as it is."""

    suffix = ".jsonl"

    def transcript(self, value: dict) -> str:
        """The event as one JSON line."""
        return strictjson.dumps(value) + "\n"


_SINKS = {cls.suffix: cls for cls in (SrtSink, VttSink, TxtSink, JsonlSink)}


def transcript_sink(path: Path, fmt: AudioFormat) -> TranscriptSink | None:
    """The transcript sink for `path` by its extension (.srt, .vtt, .txt, .jsonl), or None
    for any other (a WAV)."""
    cls = _SINKS.get(path.suffix.lower())
    return cls(path, fmt) if cls is not None else None


def check_output(manifest, sink) -> None:
    """UsageError (exit 2) when `sink` writes audio (not a transcript file, a null or virtual
    end) but the graph only emits text: a node that emits text (`emits_text`) feeds `output`
    and no branch into it carries audio."""
    if isinstance(sink, TranscriptSink) or not getattr(sink, "writes", lambda: [])():
        return
    into = [c.source for c in manifest.connections if c.target == "output"]
    if not into or any(src == "input" or manifest.formats[src].carries_audio for src in into):
        return
    if any(getattr(spec.node_class, "emits_text", False) for spec in manifest.nodes):
        raise UsageError(f"{manifest.name} sends only text (transcripts) to its output, no "
                         f"audio, so {sink.description} would stay empty: write it with "
                         f"--output file:NAME.srt (or .vtt, .txt, .jsonl)")
