"""`${NAME}`, `${NAME:-default}` and `${NAME:=default}` in manifest strings, from the environment.

The grammar is the upstream's (its pipeline-embed tool, the only one that expands them; here
every command does, for every manifest):

- `$` followed by `{` opens a reference; it runs to the matching `}` (braces inside are
  counted and kept verbatim). A reference never closed takes the rest of the string.
- The content splits at the first `:-`, else at the first `:=`; the name is what comes before,
  as it is (not trimmed, not validated).
- The value is the variable's when it is set and not empty; else the default; else "".
- A default is not expanded again (`${A:-${B:-c}}` gives `${B:-c}`), `:=` assigns nothing,
  and there is no escape (`$${X}` is `$` and X's value). `$X` without braces stays as it is.

Where we differ on purpose: the upstream pastes the values into the YAML text before parsing it,
so a value holding `: ` or ` #` changes the manifest's structure. Here only string values (not
keys) are expanded, after parsing, so a value is always one value; a string that is exactly one
reference then takes the type the YAML 1.2 core schema gives the result (`4` an int, `true` a
bool, an empty result null), as the upstream's pasting would.
"""

from __future__ import annotations

import os
from typing import Any, Mapping


def expand_string(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every `${...}` reference replaced (the module docstring's grammar)."""
    if "${" not in text:
        return text
    env = os.environ if env is None else env
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("${", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        depth, k = 1, j + 2
        while k < n and depth:
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
            k += 1
        content = text[j + 2:k - 1] if depth == 0 else text[j + 2:]
        out.append(_value(content, env))
        i = k
    return "".join(out)


def _value(content: str, env: Mapping[str, str]) -> str:
    for sep in (":-", ":="):
        name, found, default = content.partition(sep)
        if found:
            break
    else:
        name, default = content, ""
    value = env.get(name)
    return value if value else default


def _whole_reference(text: str) -> bool:
    """True if `text` is exactly one `${...}` reference."""
    if not text.startswith("${"):
        return False
    depth = 0
    for k, c in enumerate(text[1:], start=1):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return k == len(text) - 1
    return True   # never closed: it takes the rest


def expand_document(doc: Any, env: Mapping[str, str] | None = None) -> Any:
    """`doc` (parsed JSON/YAML: dicts, lists, scalars) with its string values expanded; a
    string that was exactly one reference is re-typed as a YAML 1.2 plain scalar when the
    result is one (int, float, bool, null). Containers without references come back as
    they are."""
    if isinstance(doc, str):
        if "${" not in doc:
            return doc
        value = expand_string(doc, env)
        return _retype(value) if _whole_reference(doc) else value
    if isinstance(doc, dict):
        return {k: expand_document(v, env) for k, v in doc.items()}
    if isinstance(doc, list):
        return [expand_document(v, env) for v in doc]
    return doc


def _retype(value: str):
    from .docparse import DocumentError, load_yaml
    if value.strip() == "":
        return None
    try:
        typed = load_yaml(value)
    except DocumentError:
        return value
    return typed if isinstance(typed, (int, float, bool)) or typed is None else value


def has_references(doc: Any) -> bool:
    """True if any string value in `doc` holds `${`."""
    if isinstance(doc, str):
        return "${" in doc
    if isinstance(doc, dict):
        return any(has_references(v) for v in doc.values())
    if isinstance(doc, list):
        return any(has_references(v) for v in doc)
    return False
