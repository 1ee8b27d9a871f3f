"""Observers: any number of parties watching one run (a tracer, a recorder, the monitor's
recording, the TUI's, a plugin's), told what happens as small immutable events (frozen
dataclasses; the two made per block are named tuples, which cost less to make).

    class Counter(Observer):
        def block_in(self, event):           # BlockIn, before the push
            self.blocks += 1

    runner.observers.join(Counter())         # before or during the run, from any thread
    runner.observers.leave(counter)

The runner (runner.py) owns an `ObserverList` and tells its members, in the order they joined:

    run_started(RunStarted)   the runner's thread, once, before the first block
    block_in(BlockIn)         before each block is pushed (the runner's thread, or the audio
                              callback in callback mode, where block_in is not called)
    block_out(BlockOut)       after each push, with what came out of `output`
    run_ended(RunEnded)       the runner's thread, once, after the session, source and sink
                              closed, on every path out of the run
    extend_report(report)     whenever the runner builds its stats report (the final one
                              before run_ended): add a section of the observer's own

block_in and block_out run on the audio path: they must return quickly and never block (a
recorder copies the block into a ring its own thread writes). What an observer raises ends the
run as a node's error would. With no member the runner allocates nothing per block: it reads one
attribute of the list per hook (`tell_block_in`, None), which join() and leave() replace, so
the runner takes no lock.

Observer kinds that a run can ask for by name (`stream --observe NAME[:ARG]`) register in
`observer_kinds`, from the entry point group `remotemedia.observers`: each entry point names a
function `register(registry)` that calls `registry.register(name, factory)`, where
`factory(runner, arg) -> Observer` (`arg` the text after 'NAME:', or None).
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .engine.errors import UsageError, one_line
from .engine.plugins import EntryPoints

OBSERVERS_GROUP = "remotemedia.observers"


# -- events ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run begins: `runner` (a StreamRunner) has its session, source and sink open."""

    runner: object


class BlockIn(NamedTuple):
    """Block `seq` is about to be pushed. `block`: the ndarray (samples,) or (samples,
    channels) entering the graph (read it now: the engine may write it in place after the
    push); `pts` in samples; `arrival_s`: the run clock's now() in seconds since start (real
    for devices, simulated otherwise); `lateness_s`: how late the runner's clock released it
    (0.0 when the source paces itself).

    Immutable, like every event here; a named tuple rather than a frozen dataclass because it
    is made once per block on the audio path, where a frozen dataclass's __init__ (one
    object.__setattr__ per field) costs several times as much."""

    seq: int
    pts: int
    block: np.ndarray
    arrival_s: float
    lateness_s: float


class BlockOut(NamedTuple):
    """What came out of `output` for the last push: `outputs`, a list of RuntimeData (audio
    frames and events); `final` for the push of end_of_stream at the end of the run. A named
    tuple, as BlockIn is."""

    outputs: list
    final: bool


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run is over: `stats`, its report (None when it never started a session); `error`,
    what ended it, or None after a clean end."""

    runner: object
    stats: dict | None
    error: BaseException | None


class Observer:
    """Base class: override the hooks you need; each does nothing by default."""

    def run_started(self, event: RunStarted) -> None:
        """Once, before the first block (the runner's thread)."""

    def block_in(self, event: BlockIn) -> None:
        """Before each push: quick, never blocking."""

    def block_out(self, event: BlockOut) -> None:
        """After each push: quick, never blocking."""

    def run_ended(self, event: RunEnded) -> None:
        """Once, after the run, on every path out of it (the runner's thread)."""

    def extend_report(self, report: dict) -> None:
        """Add this observer's sections to the stats report `report` (a dict ready for strict
        JSON) whenever the runner builds one (runner.stats(): at the end of the run, before
        run_ended, and when a UI or a scrape asks, on its thread)."""


class ObserverList:
    """The observers of one run, in the order they joined. join() and leave() (any thread)
    replace `members` whole, and with it `tell_block_in` and `tell_block_out`: None with no
    member, the member's own bound method with one, a loop over the members with more. The
    runner reads one of these attributes per hook and per block and takes no lock."""

    __slots__ = ("members", "tell_block_in", "tell_block_out", "_lock", "_on_change")

    def __init__(self, observers=(), on_change: Callable | None = None):
        """`on_change(tell_block_in, tell_block_out)`, when given, is called (under the list's
        lock) each time they change: the runner keeps them as its own attributes, so its block
        path reads one attribute per hook, as it did a single observer slot."""
        self.members: tuple = ()
        self.tell_block_in: Callable[[BlockIn], None] | None = None
        self.tell_block_out: Callable[[BlockOut], None] | None = None
        self._lock = threading.Lock()
        self._on_change = on_change
        for observer in observers:
            self.join(observer)

    def join(self, observer):
        """Add `observer` (told from the next event on); returns it. ValueError when it is a
        member already (it would be told everything twice)."""
        with self._lock:
            if any(o is observer for o in self.members):
                raise ValueError(f"{observer!r} already observes this run")
            self._set((*self.members, observer))
        return observer

    def leave(self, observer) -> bool:
        """Remove `observer`; False when it was not a member. The runner may still be telling
        it about the current block when this returns."""
        with self._lock:
            kept = tuple(o for o in self.members if o is not observer)
            left = len(kept) != len(self.members)
            self._set(kept)
        return left

    def _set(self, members: tuple) -> None:
        # the tellers first, members last: a reader never sees members without their tellers
        self.tell_block_in = _teller([o.block_in for o in members])
        self.tell_block_out = _teller([o.block_out for o in members])
        self.members = members
        if self._on_change is not None:
            self._on_change(self.tell_block_in, self.tell_block_out)

    def find(self, cls: type) -> list:
        """The members that are instances of `cls`, in order."""
        return [o for o in self.members if isinstance(o, cls)]

    def __contains__(self, observer) -> bool:
        return any(o is observer for o in self.members)

    def __iter__(self):
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"ObserverList({list(self.members)!r})"


def _teller(hooks: list):
    """None for no hook, the hook itself for one (one call per block, as with no list at
    all), else a function that calls each in order."""
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]
    hooks = tuple(hooks)

    def tell(event):
        for hook in hooks:
            hook(event)
    return tell


# -- named kinds ----------------------------------------------------------------------------------

class ObserverRegistry:
    """Observer kinds by name: `factory(runner, arg) -> Observer`, from `register()` or the
    entry point group `remotemedia.observers` (loaded on first use)."""

    def __init__(self, group: str = OBSERVERS_GROUP):
        self.group = group
        self._factories: dict[str, Callable] = {}
        self._lock = threading.RLock()
        self._plugins = EntryPoints(group)

    def register(self, name: str, factory: Callable) -> None:
        """Add (or replace) the observer kind `name` (letters, digits, '-', '_', '.').
        ValueError for a malformed name."""
        key = name.strip().lower()
        if not key or not all(c.isalnum() or c in "-_." for c in key):
            raise ValueError(f"an observer kind is letters, digits, '-', '_' or '.', not "
                             f"{name!r}")
        with self._lock:
            self._factories[key] = factory

    def remove(self, name: str) -> None:
        """Forget the kind `name`; KeyError when it is not registered."""
        with self._lock:
            del self._factories[name.strip().lower()]

    def names(self) -> tuple[str, ...]:
        """Every registered kind, sorted (entry points loaded first)."""
        self._load()
        return tuple(sorted(self._factories))

    def check(self, spec: str) -> Callable:
        """The factory `NAME[:ARG]` names, to check a command line before anything opens.
        UsageError (exit 2) for an unknown name, with a "did you mean" for a near miss."""
        self._load()
        key = spec.partition(":")[0].strip().lower()
        factory = self._factories.get(key)
        if factory is None:
            known = sorted(self._factories)
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            listed = ", ".join(known) if known else "none is installed"
            raise UsageError(f"unknown observer '{spec}'{hint}; known: {listed}")
        return factory

    def make(self, spec: str, runner) -> Observer:
        """The observer `NAME[:ARG]` asks for, made for `runner`. UsageError (exit 2) for an
        unknown name (check()) or what the factory refuses as ValueError."""
        factory = self.check(spec)
        name, sep, arg = spec.partition(":")
        try:
            return factory(runner, arg if sep else None)
        except ValueError as exc:
            raise UsageError(f"bad observer '{spec}': {one_line(exc)}") from None

    def _load(self) -> None:
        self._plugins.load(self)


#: observer kinds a run can ask for by name (entry point group remotemedia.observers)
observer_kinds = ObserverRegistry()
