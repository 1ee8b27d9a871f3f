"""Preallocated rings between a PortAudio callback and the engine's thread.

Both are single-producer, single-consumer. Each side publishes its progress by storing one int
(`written`, `read` / `consumed`) after it has finished with the data, and the GIL orders those
stores, so neither side takes a lock. The audio thread allocates no buffer here: every array
exists before the stream starts, and the only objects it makes are the small ints and views
Python makes for any arithmetic or slice.

InputRing: the callback copies each captured block into the next slot (the one io copy at the
boundary) and the engine is handed that slot itself, with no second copy. The engine may keep a
slot's buffer as long as it likes (a node may retain a frame, an output queue holds it until it
is played): a slot is reused only when nobody outside the ring still refers to it, which
`sys.getrefcount` tells exactly, because every view numpy makes of a slot refers to the slot.
When the next slot is still queued or still held, the block is refused and counted; the
policy is drop-newest (the callback cannot wait, and older blocks are already promised to the
engine).

OutputQueue: the engine thread enqueues references to output arrays (no copy); the callback
copies them into PortAudio's buffer (the io copy on the way out). Consumed entries are cleared
by the producer, so an array is released (and may be freed) on the engine's thread, never
inside the callback.

Wakeup: a doorbell the callback rings with one nonblocking write to an eventfd (a pipe where
there is none), so waking the engine thread takes no lock on the audio thread.
"""

from __future__ import annotations

import os
import select
import sys
import threading

import numpy as np

_getrefcount = sys.getrefcount
_copyto = np.copyto


class Wakeup:
    """ring() from the audio thread; wait(timeout) from the engine thread."""

    def __init__(self):
        self._event = None
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._rfd = self._wfd = fd
            self._write = self._write_eventfd
        elif os.name == "posix":
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)
            self._write = self._write_pipe
        else:  # no pollable fd for a pipe (Windows): an Event, whose set() locks only briefly
            self._event = threading.Event()
            self._rfd = self._wfd = -1
            self._write = self._event.set
        self.closed = False

    def _write_eventfd(self) -> None:
        os.eventfd_write(self._wfd, 1)  # never blocks: the counter cannot reach its limit

    def _write_pipe(self) -> None:
        try:
            os.write(self._wfd, b"\x01")
        except BlockingIOError:
            return  # the pipe is full of wake-ups the reader has not taken yet: it will wake

    def ring(self) -> None:
        """Wake the waiter: one nonblocking eventfd (or pipe) write, safe from the audio
        callback."""
        if not self.closed:
            self._write()

    def wait(self, timeout: float) -> bool:
        """Wait until rung or `timeout` seconds pass; True if rung. Clears the bell."""
        if self._event is not None:
            rung = self._event.wait(timeout)
            self._event.clear()
            return rung
        if self.closed:
            return False
        ready, _, _ = select.select((self._rfd,), (), (), timeout)
        if not ready:
            return False
        try:
            if self._rfd == self._wfd:
                os.eventfd_read(self._rfd)
            else:
                os.read(self._rfd, 4096)
        except BlockingIOError:
            return True  # another reader took it first; it was rung all the same
        return True

    def close(self) -> None:
        """Close the descriptors. Safe twice."""
        if self.closed:
            return
        self.closed = True
        if self._event is None:
            os.close(self._rfd)
            if self._wfd != self._rfd:
                os.close(self._wfd)


class InputRing:
    """`capacity` preallocated blocks of `block_size` frames: (block_size,) for mono, else
    (block_size, channels). Producer: put(); consumer: get()."""

    def __init__(self, capacity: int, block_size: int, channels: int, dtype=np.float32):
        if capacity < 2:
            raise ValueError("a ring needs at least two slots")
        self.capacity = capacity
        self.block_size = block_size
        self.channels = channels
        shape = (block_size,) if channels == 1 else (block_size, channels)
        # One allocation per slot, so that a view of a slot refers to that slot (its base).
        self.slots = [np.zeros(shape, dtype=dtype) for _ in range(capacity)]
        # What the callback writes through: PortAudio's (frames, channels) layout.
        self._writers = [s.reshape(block_size, channels) for s in self.slots]
        self.adc_time = np.zeros(capacity, dtype=np.float64)  # inputBufferAdcTime per slot
        self.tick = np.zeros(capacity, dtype=np.int64)        # callback index per slot
        self.written = 0         # blocks accepted (producer)
        self.read = 0            # blocks handed out (consumer)
        self.refused_full = 0    # every slot queued and not yet read
        self.refused_held = 0    # the next slot is still held by the engine or the output
        self._free_refs = _getrefcount(self.slots[0])

    def put(self, indata, adc_time: float, tick: int) -> bool:
        """Audio thread: copy one block in (the io copy). False if refused (counted)."""
        w = self.written
        if w - self.read >= self.capacity:
            self.refused_full += 1
            return False
        i = w % self.capacity
        if _getrefcount(self.slots[i]) != self._free_refs:
            self.refused_held += 1
            return False
        _copyto(self._writers[i], indata)
        self.adc_time[i] = adc_time
        self.tick[i] = tick
        self.written = w + 1  # publish after the data is in place
        return True

    def get(self):
        """Engine side: (slot array, slot index) of the oldest unread block, or None."""
        r = self.read
        if r >= self.written:
            return None
        i = r % self.capacity
        block = self.slots[i]    # our reference keeps the slot held from here on
        self.read = r + 1
        return block, i

    @property
    def queued(self) -> int:
        """Blocks captured and not yet taken by the engine."""
        return self.written - self.read

    @property
    def refused(self) -> int:
        """Blocks the callback could not place (every slot queued or held): each a drop."""
        return self.refused_full + self.refused_held


class OutputQueue:
    """References to output arrays, each shaped (frames, channels), waiting to be played."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.items: list = [None] * capacity
        self.seqs = np.full(capacity, -1, dtype=np.int64)
        self.written = 0     # producer
        self.consumed = 0    # consumer: entries fully copied out
        self.offset = 0      # consumer: frames already copied from the head entry
        self._cleared = 0    # producer: entries whose reference was dropped
        # Barge-in: the producer asks for everything written so far to be dropped (drop_to);
        # the consumer drops it at its next turn and counts it (it alone moves `consumed`).
        self.drop_to = 0     # producer
        self.dropped_blocks = 0    # consumer
        self.dropped_samples = 0   # consumer

    def drop_queued(self) -> None:
        """Producer: have the consumer drop every entry written so far (not yet played) at
        its next turn (consumer_drop)."""
        self.drop_to = self.written

    def consumer_drop(self) -> None:
        """Consumer: drop what the producer asked to (drop_queued), counting the entries and
        the frames of them not yet played. Allocates nothing."""
        end = self.drop_to
        c = self.consumed
        if end <= c:
            return
        cap, items = self.capacity, self.items
        samples = -self.offset
        for k in range(c, end):
            samples += items[k % cap].shape[0]
        self.dropped_blocks += end - c
        self.dropped_samples += samples
        self.offset = 0
        self.consumed = end

    def release_consumed(self) -> None:
        """Producer: drop references the callback has finished with (frees on this thread)."""
        consumed = self.consumed
        cleared = self._cleared
        items, cap = self.items, self.capacity
        while cleared < consumed:
            items[cleared % cap] = None
            cleared += 1
        self._cleared = cleared

    def put(self, array, seq: int) -> bool:
        """Producer: enqueue a reference; False when full."""
        self.release_consumed()
        w = self.written
        if w - self.consumed >= self.capacity:
            return False
        i = w % self.capacity
        self.items[i] = array
        self.seqs[i] = -1 if seq is None else seq
        self.written = w + 1
        return True

    @property
    def pending(self) -> int:
        """Frames queued and not yet fully played."""
        return self.written - self.consumed
