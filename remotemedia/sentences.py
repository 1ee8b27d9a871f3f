"""Text into sentence-sized pieces, the unit text to speech streams by.

Shared by the text input (io/text.py), which emits one piece per Text frame, and `Speak`
(nodes/speak.py), which synthesizes one piece at a time: memory and time to first audio are
bounded by a piece, never by the whole text.

A piece ends after `.`, `!`, `?`, `;` or `…` (and any closing quotes or brackets) followed by
whitespace, and at every line break. A piece longer than MAX_CHARS is cut at the last comma,
colon or dash before the limit, else the last space, else at the limit, so that text without
punctuation still streams. Abbreviations ("Dr. Smith") are cut too: the speech engines pause
briefly there, which costs nothing in intelligibility.
"""

from __future__ import annotations

import re
import string
from typing import Iterator

#: the longest piece, in characters (about 15 s of speech at a normal rate)
MAX_CHARS = 240

_END = re.compile(r"[.!?;…]+[\"'”’)\]]*(?=\s)|\n")
#: a piece of these alone says nothing ("...", "--")
_PUNCTUATION = string.punctuation + " …“”‘’–—"
_SOFT = re.compile(r"[,:\u2013\u2014]\s")


def sentences(text: str, max_chars: int = MAX_CHARS) -> Iterator[str]:
    """The pieces of `text` in order, each stripped, at most `max_chars` characters (>= 1) and
    holding more than punctuation; nothing for empty, whitespace or punctuation-only text. Lazy: a long text is not
    split all at once."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    start = 0
    for match in _END.finditer(text):
        yield from _bounded(text[start:match.end()], max_chars)
        start = match.end()
    yield from _bounded(text[start:], max_chars)


def _bounded(piece: str, max_chars: int) -> Iterator[str]:
    piece = " ".join(piece.split())
    while len(piece) > max_chars:
        window = piece[:max_chars + 1]
        cut = max((m.end() for m in _SOFT.finditer(window)), default=0)
        if cut <= 0:
            cut = window.rfind(" ") + 1
        if cut <= 0:
            cut = max_chars
        head, piece = piece[:cut].strip(), piece[cut:].strip()
        if head.strip(_PUNCTUATION):
            yield head
    if piece.strip(_PUNCTUATION):
        yield piece
