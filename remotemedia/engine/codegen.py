"""Code generation for the hot path: a small preprocessor over Python source text, and a
compiler that gives every caller code objects of its own.

`expand(text, macros, flags, names)` turns a template into Python source: `@NAME(args)` lines
expand a macro (`macros[NAME]`, lines formatted with the args, at the line's indentation,
macros within macros included; `@BIND()` binds each of `names` from the factory's dict `e`),
`#for J` ... `#endfor` blocks repeat for each member of a run with its names numbered, and
`#if EXPR` / `#elif` / `#else` / `#endif` keep the branch `flags` choose. `generate(...)`
compiles a case once per process and returns its `make` over fresh code objects (`fresh`).
What the template says is template.py's; this module knows nothing of steps.
"""

from __future__ import annotations

import linecache
import re
from types import CodeType
from typing import Callable

_DIRECTIVE = re.compile(r"^\s*#(if|elif|else|endif)\b\s*(.*)$")
_MACRO = re.compile(r"^(\s*)@([A-Z_]+)\((.*)\)\s*$")


def _macros(lines: list[str], macros: dict) -> list[str]:
    """Expands `@NAME(args)` lines, macros within macros included."""
    out: list[str] = []
    for line in lines:
        m = _MACRO.match(line)
        if m is None or m.group(2) == "BIND":
            out.append(line)
            continue
        indent, name, args = m.group(1), m.group(2), m.group(3)
        values = [a.strip() for a in args.split(",")] if args.strip() else []
        out.extend(_macros([indent + body.format(*values) for body in macros[name]], macros))
    return out


def expand(text: str, macros: dict, flags: dict, names=(), numbered=()) -> str:
    """The template's text for `flags` (names -> values the `#if` expressions read): macros
    expanded (`@BIND()` binds each of `names` from the factory's dict `e`), `#for J` ...
    `#endfor` blocks repeated for each member of a run (flags MEMBERS, a tuple of each member's
    own flags; LAST is true for the last; the names in `numbered` get the member's number),
    then the lines of the
    branches not taken dropped. ValueError for an unbalanced `#if` or `#for`."""
    flags = {"MEMBERS": (), **flags}
    lines: list[str] = []
    for line in _macros(text.splitlines(), macros):
        m = _MACRO.match(line)
        if m is not None:      # @BIND()
            lines.extend(f"{m.group(1)}{n} = e[{n!r}]" for n in names)
        else:
            lines.append(line)
    return "\n".join(_conditions(_loops(lines, flags, numbered), flags)) + "\n"


def _loops(lines: list[str], flags: dict, numbered) -> list[str]:
    number = re.compile(r"(?<![.\w])(" + "|".join(numbered) + r")\b") if numbered else None
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        word = line.strip()
        if word == "#for J":
            if block is not None:
                raise ValueError("#for inside #for")
            block = []
        elif word == "#endfor":
            if block is None:
                raise ValueError("#endfor without #for")
            members = flags.get("MEMBERS", ())
            for j, own in enumerate(members):
                member = {**flags, **dict(own), "LAST": j == len(members) - 1}
                lines = _conditions(block, member)
                out.extend(lines if number is None else
                           (number.sub(lambda m, j=j: f"{m.group(1)}_{j}", t) for t in lines))
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    if block is not None:
        raise ValueError("#for without #endfor")
    return out


def _conditions(lines: list[str], flags: dict) -> list[str]:
    out: list[str] = []
    stack: list[list[bool]] = []     # per open #if: [this branch taken, any branch taken]
    for line in lines:
        m = _DIRECTIVE.match(line)
        if m is None:
            if all(taken for taken, _ in stack):
                out.append(line)
            continue
        word, expr = m.group(1), m.group(2)
        if word == "if":
            if not all(taken for taken, _ in stack):
                stack.append([False, True])     # inside a branch not taken: none is
                continue
            value = bool(eval(expr, {"__builtins__": {}}, flags))
            stack.append([value, value])
        elif not stack:
            raise ValueError(f"#{word} without #if")
        elif word == "elif":
            top = stack[-1]
            top[0] = not top[1] and bool(eval(expr, {"__builtins__": {}}, flags))
            top[1] = top[1] or top[0]
        elif word == "else":
            top = stack[-1]
            top[0] = not top[1]
            top[1] = True
        else:
            stack.pop()
    if stack:
        raise ValueError("#if without #endif")
    return out


_compiled: dict = {}     # (flags, names) -> the compiled module code of that case


def generate(text: str, macros: dict, flags: dict, names, numbered=()) -> Callable:
    """The factory `make(e)` for one case of the template: `flags` choose the case (KIND:
    'one', 'fan_in', 'linear' or 'push'; TRACE, SINGLE, RETAINS, READERS_ONE, FAST, CHECK,
    REQUIRES, ONE_GAIN: booleans), `names` are the names `make` binds from its dict. Each case
    is compiled once per process; every call returns a factory over fresh copies of its code
    objects (see the module's docstring)."""
    key = (id(text), tuple(sorted(flags.items())), tuple(sorted(names)))
    code = _compiled.get(key)
    if code is None:
        source = expand(text, macros, flags, key[2], numbered)
        label = ",".join(f"{k}={v}" for k, v in key[1])
        filename = f"<remotemedia step {label}>"
        code = _compiled[key] = compile(source, filename, "exec")
        # tracebacks through a generated step show its lines
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(fresh(code), namespace)
    return namespace["make"]


def fresh(code: CodeType) -> CodeType:
    """A copy of `code` and of every code object nested in it: the same bytecode, with
    specialisation caches of its own (PEP 659: CPython specialises each code object's
    instructions for what it has seen, so steps sharing one would slow each other)."""
    return code.replace(co_consts=tuple(fresh(c) if isinstance(c, CodeType) else c
                                        for c in code.co_consts))
