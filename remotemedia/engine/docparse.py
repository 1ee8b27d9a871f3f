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

Parsing is bounded (`LIMITS`, one place; the README lists them): a document of more than
`max_bytes`, collections nested deeper than `max_depth`, more than `max_aliases` YAML aliases,
an alias that refers to a collection containing it, or a document that aliases expand to more
than `max_values` values (a "billion laughs" bomb: 500 bytes that serialize to gigabytes) is a
DocumentError naming the limit, before anything is built from it. The checks walk the parser's
events and the composed node graph once (linear in the text), so a hostile document costs at
most what a document of `max_bytes` costs.

Errors are `DocumentError(problem, line)`; the manifest loader adds the file name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml

from .errors import DocumentError  # noqa: F401 (raised here)


@dataclass(frozen=True)
class ParseLimits:
    """What parsing one document may cost. `max_bytes`: the text's size in bytes (UTF-8);
    `max_depth`: mappings and sequences nested in each other (a manifest needs about 6);
    `max_aliases`: YAML alias uses (`*name`); `max_values`: scalars, mappings and sequences
    counted as if every alias were written out."""

    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_aliases: int = 10_000
    max_values: int = 1_000_000


#: the limits every manifest read goes through (README, "Limits on manifests")
LIMITS = ParseLimits()


def check_size(data: bytes | str, limits: ParseLimits = LIMITS) -> None:
    """DocumentError if `data` (bytes, or text counted in UTF-8 bytes) is over
    `limits.max_bytes`."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise DocumentError(f"the document is larger than {limits.max_bytes:,} bytes (the "
                            f"limit for a manifest)")


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's implicit types, duplicate keys
    refused, and the composer bounded by `LIMITS` (depth and aliases as the events arrive,
    the expanded size on the composed graph before anything is constructed)."""

    limits = LIMITS

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        # PyYAML's composer recurses once per level: the depth is checked before Python's own
        # recursion limit can be reached.
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise DocumentError(f"more than {self.limits.max_aliases:,} YAML aliases (the "
                                    f"limit for a manifest)", self._line())
            return super().compose_node(parent, index)
        if self.check_event(yaml.ScalarEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                raise DocumentError(f"nested deeper than {self.limits.max_depth} levels (the "
                                    f"limit for a manifest)", self._line())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _line(self) -> int:
        return self.peek_event().start_mark.line + 1

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node, self.limits.max_values)
        return self.construct_document(node)

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


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _check_expansion(root, limit: int) -> None:
    """DocumentError if the node graph, with every alias written out, holds more than `limit`
    values, or an alias refers to a collection that contains it. Each node is visited once
    (sizes are memoized), so a bomb costs its size in text, not its expanded size."""
    size: dict[int, int] = {}
    path: set[int] = set()           # nodes on the way down from the root
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            path.discard(key)
            size[key] = min(limit + 1, 1 + sum(size[id(c)] for c in _children(node)))
            continue
        if key in size:
            continue
        path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in path:
                raise DocumentError("an alias refers to a collection that contains it "
                                    "(a recursive document)", child.start_mark.line + 1)
            if id(child) not in size:
                stack.append((child, False))
    if size[id(root)] > limit:
        raise DocumentError(f"its aliases expand to more than {limit:,} values (the limit for "
                            f"a manifest)")


_CORE_RESOLVERS = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
     "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
)


def _core_schema(loader: type) -> None:
    loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in _CORE_RESOLVERS:
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


def load_yaml(text: str, limits: ParseLimits = LIMITS):
    """Parse YAML by the 1.2 core schema; DocumentError on bad syntax, a duplicate key, or a
    document over `limits` (size, depth, aliases, expanded size)."""
    check_size(text, limits)
    loader = _Yaml12Loader if limits is LIMITS else \
        type("_BoundedLoader", (_Yaml12Loader,), {"limits": limits})
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (a SafeLoader subclass)
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


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _check_json_depth(text: str, limit: int) -> None:
    # json's C scanner recurses per level and fails with RecursionError past Python's limit:
    # count the brackets outside strings first, linearly.
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, match.start()) + 1
                raise DocumentError(f"nested deeper than {limit} levels (the limit for a "
                                    f"manifest)", line)
        elif token in "]}":
            depth -= 1


def load_json(text: str, limits: ParseLimits = LIMITS):
    """Parse strict JSON (RFC 8259); DocumentError on bad syntax, NaN/Infinity, a duplicate
    key (its line found by re-reading the text, which is YAML 1.2 too), or a document over
    `limits` (size, depth; JSON has no aliases)."""
    check_size(text, limits)
    _check_json_depth(text, limits.max_depth)
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


class _Yaml12Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string that a YAML 1.2 core-schema reader (ours) or
    a YAML 1.1 one would read as something else: `1e5`, `0o17`, `.5` stay strings both ways."""


for _tag, _pattern, _first in _CORE_RESOLVERS:
    _Yaml12Dumper.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_BREAKS = re.compile("[\x85\u2028\u2029\ufeff]")


def _represent_str(dumper, value: str):
    # PyYAML writes NEL and the Unicode line separators as they are outside double quotes,
    # and a reader folds them into line breaks: double quotes escape them
    style = '"' if _BREAKS.search(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Yaml12Dumper.add_representer(str, _represent_str)


def dump_yaml(doc, **kwargs) -> str:
    """`doc` as YAML text that load_yaml reads back equal to `doc` (strings that look like
    numbers, booleans or null are quoted); kwargs go to yaml.dump (sort_keys, ...)."""
    return yaml.dump(doc, Dumper=_Yaml12Dumper, allow_unicode=True, **kwargs)
