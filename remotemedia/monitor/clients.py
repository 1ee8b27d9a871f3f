"""One monitor client's state and the bounds on what it may cost the run (monitor/server.py).

Every client is served from the monitor thread, which shares the interpreter lock with the audio
thread: whatever a client makes it do between two blocking calls delays the next block. So each
kind of work a client can cause is bounded per tick (1/hz s), whatever the client sends:

    bytes read        READ_CHUNK per wake-up, and none while a complete command waits unserved
                      (the rest waits in the kernel, and a client writing faster blocks there)
    commands served   COMMANDS_PER_TICK per client, TICK_COMMANDS for all clients together;
                      a `snapshot` command answers with the last tick's snapshot, encoded once
    replies waiting   REPLY_QUEUE per client not yet handed to the kernel; a client that does
                      not read them gets no more commands served until it does
    snapshots/events  `queue` (CLIENT_QUEUE) per client; the oldest goes, counted
    attaches          ACCEPTS_PER_WAKE per wake-up, MAX_CLIENTS at once (more: refused, counted)

A client held back by the second or third bound is throttled (counted by reason: `budget`,
`unread`), never disconnected for it: it is served again as soon as it reads or the next tick
comes. Two messages are never dropped: the hello (with the backlog of recent events, written
before anything queued) and the final `end`.
"""

from __future__ import annotations

import collections
import socket

#: messages (snapshots and events) waiting for one client before its oldest is dropped
CLIENT_QUEUE = 32
#: replies waiting for one client (not yet in the kernel) before its commands wait
REPLY_QUEUE = 8
#: bytes read from one client per wake-up of the monitor thread
READ_CHUNK = 4096
#: commands served per client per tick, and for all clients together
COMMANDS_PER_TICK = 16
TICK_COMMANDS = 64
#: connections accepted per wake-up (the rest wait in the listen backlog), and at once
ACCEPTS_PER_WAKE = 16
MAX_CLIENTS = 256
#: the listen backlog: a burst of attaches waits in the kernel instead of failing with EAGAIN
LISTEN_BACKLOG = 512
#: what a departed client left unread is run (its last commands: `stop` then close) up to this
SALVAGE_BYTES = 256 * 1024
SALVAGE_COMMANDS = COMMANDS_PER_TICK

#: kinds of queued message that may be dropped when a client falls behind
DROPPABLE = ("snapshot", "event")


class Client:
    """One connection: its socket, what waits to be written, what it sent not yet served."""

    __slots__ = ("sock", "queue", "pending", "inbuf", "snapshots_dropped", "events_dropped",
                 "closing", "uid", "replies", "budget", "has_line", "throttled", "events")

    def __init__(self, sock: socket.socket, uid: int | None):
        self.sock = sock
        self.queue: collections.deque = collections.deque()   # (kind, bytes)
        self.pending = b""          # bytes handed to send() next (the hello first of all)
        self.inbuf = b""            # received, not yet served
        self.snapshots_dropped = 0
        self.events_dropped = 0
        self.closing = False
        self.uid = uid
        self.replies = 0            # replies in `queue`
        self.budget = COMMANDS_PER_TICK
        self.has_line = False       # a complete command waits in `inbuf`
        self.throttled: str | None = None    # why its commands wait, while they do
        self.events = 0             # the selector events it is registered for (0: none)

    def next_line(self) -> bytes | None:
        """The next complete command line (without its newline), or None."""
        nl = self.inbuf.find(b"\n")
        if nl < 0:
            self.has_line = False
            return None
        line = self.inbuf[:nl]
        self.inbuf = self.inbuf[nl + 1:]
        self.has_line = b"\n" in self.inbuf
        return line

    def enqueue(self, kind: str, payload: bytes, bound: int) -> str | None:
        """Queue one message. Snapshots and events beyond `bound` push out the oldest of
        their kinds; returns the kind dropped, if any. Replies and `end` are never dropped
        (replies are bounded by throttling the commands that make them)."""
        queue = self.queue
        dropped = None
        if kind in DROPPABLE and len(queue) - self.replies >= bound:
            for i, (old_kind, _) in enumerate(queue):
                if old_kind in DROPPABLE:
                    del queue[i]
                    dropped = old_kind
                    break
        queue.append((kind, payload))
        if kind == "reply":
            self.replies += 1
        return dropped

    def take(self, limit: int) -> tuple[bytes, int]:
        """Up to about `limit` bytes of queued messages joined for send(); and how many of
        them were snapshots."""
        parts = []
        size = snapshots = 0
        queue = self.queue
        while queue and size < limit:
            kind, payload = queue.popleft()
            if kind == "snapshot":
                snapshots += 1
            elif kind == "reply":
                self.replies -= 1
            parts.append(payload)
            size += len(payload)
        return b"".join(parts), snapshots
