"""Reading a manifest document: from a path, a mapping or a JSON/YAML string, to the raw mapping
that engine/manifest.py validates. Every command that reads a manifest comes through here, and so
through the bounded parsers of engine/docparse.py (size, nesting depth, YAML aliases and what
they expand to: docparse.LIMITS). Failures are ManifestError naming the file (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .envexpand import expand_document
from .errors import ManifestError


def read_manifest_document(src: Any) -> tuple[dict, str]:
    """The mapping and a name for messages, from a path, a dict, or a JSON/YAML string, with
    `${NAME:-default}` in its string values expanded from the environment (envexpand.py)."""
    doc, name = read_document(src)
    return expand_document(doc), name


def read_document(src: Any) -> tuple[dict, str]:
    """The raw mapping and a name for messages, from a path, a dict, or a JSON/YAML string,
    bounded like every manifest read but with nothing expanded (a recording's manifest.json,
    which holds the manifest as it ran)."""
    if isinstance(src, Mapping):
        # a document from no file (a graph line, stdin) may carry the name messages give it
        return dict(src), getattr(src, "source_name", "<dict>")
    if isinstance(src, Path) or (isinstance(src, str) and not _looks_inline(src)):
        path = Path(src)
        name = str(src)
        try:
            text = _read_bounded(path)
        except FileNotFoundError:
            raise ManifestError("file not found", source=name) from None
        except IsADirectoryError:
            raise ManifestError("is a directory, not a manifest file", source=name) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read: {exc}", source=name) from None
        except ValueError as exc:   # DocumentError: over the size limit
            raise ManifestError(str(exc), source=name) from None
        return _parse_text(text, name, suffix=path.suffix.lower()), name
    if isinstance(src, str):
        return _parse_text(src, "<string>", suffix=""), "<string>"
    raise ManifestError(f"a manifest must be a path, a dict or a JSON string, "
                        f"not {type(src).__name__}")


def parse_manifest_text(text: str, name: str) -> dict:
    """A manifest document from JSON or YAML text that came from no file (stdin), errors
    naming it `name`; ManifestError for text that parses to no manifest or is over the
    limits."""
    return _parse_text(text.lstrip("\ufeff"), name, suffix="")


def read_bounded(stream) -> bytes:
    """At most the size limit plus one byte from a binary stream (stdin, a file): enough to
    tell a document over the limit, never more."""
    from .docparse import LIMITS
    return stream.read(LIMITS.max_bytes + 1)


def _read_bounded(path: Path) -> str:
    # Never more than the size limit plus one byte: a manifest named /dev/zero or a FIFO that
    # never ends costs what a manifest at the limit costs.
    from .docparse import LIMITS, check_size
    with open(path, "rb") as f:
        data = read_bounded(f)
    check_size(data, LIMITS)
    return data.decode("utf-8-sig")     # a BOM changes nothing


def _looks_inline(text: str) -> bool:
    stripped = text.lstrip()
    return stripped.startswith("{") or "\n" in stripped


def _parse_text(text: str, name: str, suffix: str) -> dict:
    # Strict parsers (engine/docparse.py): duplicate keys are errors, YAML is read as 1.2.
    from .docparse import DocumentError, load_json, load_yaml
    try:
        if suffix == ".json" or (not suffix and text.lstrip().startswith("{")):
            doc = load_json(text)
        else:
            doc = load_yaml(text)
    except DocumentError as exc:
        raise ManifestError(str(exc), source=name) from None
    if not isinstance(doc, dict):
        raise ManifestError(f"top level must be a mapping, got {type(doc).__name__}",
                            source=name)
    return doc


#: the most read of a line-oriented text file a command is given (an arrivals file, a batch
#: list file): 16 MiB, a million lines and more; a FIFO or /dev/zero costs no more than that
MAX_TEXT_FILE_BYTES = 16 << 20


def read_text_file(path, what: str, noun: str = "", limit: int = MAX_TEXT_FILE_BYTES,
                   shown=None) -> str:
    """The UTF-8 text (a BOM skipped) of a line-oriented file a command was given, read once
    and never more than `limit` bytes. UsageError (exit 2), "`what`: ... `noun`PATH ...", when
    it cannot be read, is a directory, is longer or is not UTF-8; PATH is `shown` (the name
    as the user typed it) when given."""
    from .errors import UsageError
    name = path if shown is None else shown
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {noun}{name}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UsageError(f"{what}: {noun}{name} is longer than {limit:,} bytes (the most "
                         f"read of such a file)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what}: {noun}{name} is not UTF-8 text (byte {exc.start})") \
            from None
