"""Manifest text to Python values, meaning exactly what the text says.

Two faults of the usual loaders are closed here:

- A duplicated key (`db: -6` then `db: 12` in one mapping) is an error naming the key and the
  line of the second one, in YAML and JSON alike; PyYAML and `json` both keep the last value
  silently.
- YAML is read by the YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1022-tag-resolution),
  not PyYAML's YAML 1.1: `1e-1` is the float 0.1 (1.1 made it a string), `010` is ten (not
  octal eight), `1:20` is a string (not sexagesimal 80), `yes`/`no`/`on`/`off` are strings
  (not booleans), and dates stay strings. JSON rejects the non-standard `NaN` and `Infinity`
  tokens (RFC 8259 has none).

Errors are `DocumentError(problem, line)`; the manifest loader adds the file name.
"""

from __future__ import annotations

import json
import re

import yaml

from .errors import DocumentError  # noqa: F401 (raised here)


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types and duplicate keys
    refused."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:   # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' (first at line {first})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _core_schema(loader: type) -> None:
    loader.yaml_implicit_resolvers = {}
    resolvers = (
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
         "-+0123456789"),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
         r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
        ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
    )
    for tag, pattern, first in resolvers:
        loader.add_implicit_resolver(tag, re.compile(pattern), list(first))


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_core_schema(_Yaml12Loader)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str):
    """Parse YAML by the 1.2 core schema; DocumentError on bad syntax or a duplicate key."""
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is None:
            raise DocumentError(f"invalid YAML: {problem}") from None
        raise DocumentError(f"invalid YAML at line {mark.line + 1} column {mark.column + 1}: "
                            f"{problem}", mark.line + 1) from None


class _Duplicate(Exception):
    def __init__(self, key: str):
        self.key = key


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _no_constant(token: str):
    raise DocumentError(f"invalid JSON: {token} is not a JSON number (RFC 8259)")


def load_json(text: str):
    """Parse strict JSON (RFC 8259); DocumentError on bad syntax, NaN/Infinity, or a duplicate
    key (its line found by re-reading the text, which is YAML 1.2 too)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"invalid JSON at line {exc.lineno} column {exc.colno}: "
                            f"{exc.msg}", exc.lineno) from None
    except _Duplicate as dup:
        line = None
        try:
            load_yaml(text)
        except DocumentError as exc:
            line = exc.line
        raise DocumentError(f"duplicate key '{dup.key}'", line) from None
