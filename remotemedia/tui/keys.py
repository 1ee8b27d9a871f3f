"""The TUIs' keys, from one table (keys.yaml, beside this module): the in-process TUI's
bindings, and the attached TUI's, which words the same keys for a run in another process and
leaves out those that cannot work there. Footer labels and help lines both come from it."""

from __future__ import annotations

from pathlib import Path

import yaml
from textual.binding import Binding

#: the key table: key, action, label, does (the help line), optional show, key_display, attached
TABLE = Path(__file__).resolve().parent / "keys.yaml"


def key_bindings(attached: bool = False) -> list[Binding]:
    """Textual Bindings for the keys of keys.yaml, in its order, worded for the in-process TUI,
    or (`attached`) for the TUI over a run in another process, without the keys marked
    `attached: false`. OSError or yaml.YAMLError if the table cannot be read (it ships with the
    package)."""
    out = []
    for row in yaml.safe_load(TABLE.read_text(encoding="utf-8")):
        words = dict(row)
        if attached:
            variant = row.get("attached", {})
            if variant is False:
                continue
            words.update(variant)
        out.append(Binding(row["key"], row["action"], words["label"], show=words.get("show", True),
                           key_display=row.get("key_display"), tooltip=words["does"]))
    return out
