"""Observers (observers.py): any number join a run, each is told every event once, in order,
and a run nobody watches makes no event per block."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import remotemedia.runner as runner_module
from remotemedia.engine.errors import NodeError, UsageError
from remotemedia.engine.session import Pipeline
from remotemedia.observers import (BlockIn, BlockOut, Observer, ObserverList, ObserverRegistry,
                                   RunEnded, RunStarted)
from remotemedia.runner import FAILED, StreamRunner
from remotemedia.testing import CollectingSink, ListSource, MockClock, chain

BLOCK = 960


def runner_for(blocks: int, observers=()) -> StreamRunner:
    pipeline = Pipeline.from_manifest(chain("PassThrough"))
    fmt = pipeline.manifest.audio
    source = ListSource([np.full(BLOCK, i, np.float32) for i in range(blocks)], fmt)
    return StreamRunner(pipeline, source, CollectingSink(fmt), observers=observers,
                        clock=MockClock(BLOCK / 48000), realtime=True)


class Log(Observer):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def run_started(self, event):
        self.log.append((self.name, "started", type(event)))

    def block_in(self, event):
        self.log.append((self.name, "in", event.seq, event.pts, float(event.block[0])))

    def block_out(self, event):
        self.log.append((self.name, "out", len(event.outputs), event.final))

    def run_ended(self, event):
        self.log.append((self.name, "ended", event.stats["frames_in"], event.error))


def test_every_member_is_told_every_event_in_the_order_they_joined():
    log = []
    runner = runner_for(3, [Log("a", log)])
    runner.observers.join(Log("b", log))
    runner.run()
    expected = [("started", RunStarted)]
    for i in range(3):
        expected += [("in", i, i * BLOCK, float(i)), ("out", 1, False)]
    expected += [("out", 1, True), ("ended", 3, None)]
    assert [e[1:] for e in log if e[0] == "a"] == expected
    assert [e[1:] for e in log if e[0] == "b"] == expected
    # a then b, event by event
    assert [e[0] for e in log] == ["a", "b"] * len(expected)


@pytest.mark.parametrize("event,field", [
    (BlockIn(0, 0, np.zeros(4), 0.0, 0.0), "seq"), (BlockOut([], False), "final"),
    (RunStarted(None), "runner"), (RunEnded(None, None, None), "stats")])
def test_events_are_immutable(event, field):
    # frozen dataclasses raise FrozenInstanceError, an AttributeError; named tuples too
    with pytest.raises(AttributeError):
        setattr(event, field, 1)
    assert dataclasses.is_dataclass(event) or isinstance(event, tuple)


def test_one_that_joins_mid_run_hears_from_the_next_block_and_one_that_leaves_stops():
    log = []
    late = Log("late", log)

    class Door(Observer):
        def block_in(self, event):
            if event.seq == 1:
                runner.observers.join(late)
            if event.seq == 3:
                runner.observers.leave(late)

    runner = runner_for(5, [Door()])
    runner.run()
    seen = [e[2] for e in log if e[1] == "in"]
    # joined during block 1: told from block 2; left during block 3, which the runner was
    # already telling the members it had read: block 3 is the last it hears
    assert seen == [2, 3]


def test_a_run_nobody_watches_makes_no_block_event(monkeypatch):
    made = []
    real = runner_module._new_event
    monkeypatch.setattr(runner_module, "_new_event",
                        lambda cls, fields: made.append(cls) or real(cls, fields))
    runner_for(4).run()
    assert made == []
    runner_for(4, [Observer(), Observer()]).run()
    # one event per hook per block, shared by both members (4 blocks in; 4 + final out)
    assert made.count(BlockIn) == 4 and made.count(BlockOut) == 5


def test_an_observer_that_raises_ends_the_run_and_still_hears_the_end():
    log = []

    class Broken(Log):
        def block_in(self, event):
            if event.seq == 2:
                raise NodeError("observer", RuntimeError("broken"))
            super().block_in(event)

    runner = runner_for(5, [Broken("x", log)])
    with pytest.raises(NodeError):
        runner.run()
    assert runner.state == FAILED
    ended = [e for e in log if e[1] == "ended"]
    assert len(ended) == 1 and isinstance(ended[0][3], NodeError)


def test_the_list_refuses_a_member_twice_and_says_who_left():
    a, b = Observer(), Observer()
    members = ObserverList([a])
    with pytest.raises(ValueError, match="already observes"):
        members.join(a)
    members.join(b)
    assert members.members == (a, b) and b in members and len(members) == 2
    assert members.leave(a) and not members.leave(a)
    assert list(members) == [b] and members.find(Observer) == [b]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), max_size=40))
def test_the_list_is_what_joins_and_leaves_made_it(ops):
    pool = [Observer() for _ in range(5)]
    members, model = ObserverList(), []
    for join, i in ops:
        o = pool[i]
        if join and o not in model:
            members.join(o)
            model.append(o)
        elif not join:
            assert members.leave(o) == (o in model)
            model = [m for m in model if m is not o]
    assert list(members.members) == model


def test_joins_from_other_threads_never_lose_a_member():
    members = ObserverList()
    pool = [Observer() for _ in range(400)]

    def join(part):
        for o in part:
            members.join(o)
    threads = [threading.Thread(target=join, args=(pool[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(members) == 400 and {id(o) for o in members} == {id(o) for o in pool}


def test_named_kinds_are_made_checked_and_suggested():
    kinds = ObserverRegistry("remotemedia.test-no-such-group")
    made = []
    kinds.register("Count", lambda runner, arg: made.append((runner, arg)) or Observer())
    assert kinds.names() == ("count",)
    kinds.make("count:out.json", "R")
    kinds.make("count", "R")
    assert made == [("R", "out.json"), ("R", None)]
    with pytest.raises(UsageError, match=r"unknown observer 'cuont' \(did you mean 'count'\?\)"):
        kinds.make("cuont", "R")
    kinds.register("picky", lambda runner, arg: (_ for _ in ()).throw(ValueError("no")))
    with pytest.raises(UsageError, match="bad observer 'picky:x': no"):
        kinds.make("picky:x", "R")
    with pytest.raises(ValueError):
        kinds.register("a b", print)
    kinds.remove("count")
    with pytest.raises(UsageError, match="known: picky"):
        kinds.check("count")
