"""Shared-memory channels between the engine and one worker process, over iceoryx2.

Naming and files. Every worker incarnation gets its own iceoryx2 *domain*: a config whose file
prefix is `rmx<parent pid>x<16 hex>_` and whose root directory (node and service descriptions,
event sockets) is `$TMPDIR/remotemedia-<uid>/iox/`, inside a directory created 0700. The service
names are `remotemedia/<token>/<node id>/req|rep|req_ev|rep_ev` with `token` =
`secrets.token_hex(16)` (the prefix shows its first 16 hex digits only: /dev/shm can be listed by
anyone, and iceoryx2 stores a service under a hash of its name), so another user can neither
guess a service nor open its files. iceoryx2 creates its shared-memory files 0600 except one
16-byte `.global_mgmt` file (0666), which `tighten_permissions` sets to 0600 as soon as it
appears. (The root directory is shared by all domains because an event socket's path must fit
in 107 bytes.)

Cleanup. A domain is removed by prefix when its worker stops or crashes (`remove_domain`): the
files a SIGKILLed process leaves in /dev/shm and under the root directory all carry the prefix,
and a node directory that held them goes too. `remove_stale_domains` runs before every start and
removes the domains of parents that no longer exist, which is what a crashed engine leaves behind.

Services. `req` (parent publishes, worker subscribes) and `rep` (the other way) are
publish-subscribe services of byte slices; `req_ev` and `rep_ev` are event services used to wake a
side that has stopped spinning. A received sample is handed out as a numpy view whose memory stays
borrowed until the last view of it is collected (`Lease`).
"""

from __future__ import annotations

import collections
import ctypes
import os
import re
import secrets
import stat
import statistics
import tempfile
from pathlib import Path

import iceoryx2 as iox

SHM_DIR = Path("/dev/shm")
PREFIX_RE = re.compile(r"^rmx(\d+)x([0-9a-f]{16})_")
SLICE = iox.Slice[ctypes.c_uint8]
PAYLOAD_ALIGN = 64
REP_BUFFER = 256          # replies queued for the parent before the worker waits
REP_BORROW = 32           # reply samples the parent may hold as views at once
REQ_BORROW_SLACK = 4      # request samples the worker may hold beyond the queue

iox.set_log_level(iox.LogLevel.Error)


def root_dir() -> Path:
    """This user's private directory for remotemedia's IPC state, $TMPDIR/remotemedia-<uid>,
    created mode 0700. PermissionError if it exists and belongs to another user."""
    root = Path(tempfile.gettempdir()) / f"remotemedia-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(root)   # not through a link: another user may have planted one
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{root} is not a directory of this user's; refusing to use it")
    os.chmod(root, 0o700)
    return root


def iox_root() -> Path:
    """The iceoryx2 root path under root_dir() (its service and node files)."""
    return root_dir() / "iox"


def new_prefix(parent_pid: int | None = None) -> tuple[str, str]:
    """(prefix, token) for a fresh domain: the token names its services."""
    token = secrets.token_hex(16)
    return f"rmx{parent_pid or os.getpid()}x{token[:16]}_", token


def make_config(prefix: str):
    """An iceoryx2 config whose files carry `prefix` and live under iox_root(), so one run's
    resources are found and removed together."""
    cfg = iox.config.default()
    cfg.global_cfg.prefix = iox.FileName.new(prefix)
    cfg.global_cfg.root_path = iox.Path.new(str(iox_root()) + "/")
    return cfg


def make_node(prefix: str):
    """An iceoryx2 IPC node with that config and signal handling off (the Python side handles
    signals); its /dev/shm files are then made owner-only. iceoryx2's errors propagate."""
    node = (iox.NodeBuilder.new().config(make_config(prefix))
            .signal_handling_mode(iox.SignalHandlingMode.Disabled)
            .create(iox.ServiceType.Ipc))
    tighten_permissions(prefix)
    return node


def domain_files(prefix: str) -> list[Path]:
    """Every file of a domain, in /dev/shm and under the root directory."""
    found = list(SHM_DIR.glob(prefix + "*"))
    if iox_root().exists():
        found += list(iox_root().rglob(prefix + "*"))
    return found


def tighten_permissions(prefix: str) -> None:
    """Makes the /dev/shm files starting with `prefix` mode 0600 where they were readable by
    others; files that vanish meanwhile are skipped."""
    for path in SHM_DIR.glob(prefix + "*"):
        try:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
        except FileNotFoundError:
            pass


def remove_domain(prefix: str) -> int:
    """Remove every file of a domain, and the node directories that held them; return how
    many files were removed. A directory that held none of them is never touched, so a domain
    being created at the same moment is safe."""
    removed = 0
    emptied = set()
    for path in domain_files(prefix):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        if path.parent.parent.name == "nodes":
            emptied.add(path.parent)
    for directory in emptied:
        try:
            directory.rmdir()
        except OSError:   # something else still lives there
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive, and not ours to clean
        return True
    return True


def remove_stale_domains() -> int:
    """Remove the domains whose parent process is gone (left by a crash); return file count."""
    stale = set()
    candidates = list(SHM_DIR.glob("rmx*"))
    if iox_root().exists():
        candidates += list(iox_root().rglob("rmx*"))
    for path in candidates:
        m = PREFIX_RE.match(path.name)
        if m and not _alive(int(m.group(1))):
            stale.add(m.group(0))
    return sum(remove_domain(prefix) for prefix in stale)


def service_names(token: str, node_id: str) -> dict[str, str]:
    """The four service names of one process node's channel (req, rep, req_ev, rep_ev) under
    remotemedia/<token>/<node id>, the id sanitized to [A-Za-z0-9_.-] and cut to 64 characters."""
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", node_id)[:64]
    base = f"remotemedia/{token}/{safe_id}"
    return {k: f"{base}/{k}" for k in ("req", "rep", "req_ev", "rep_ev")}


def pubsub(node, name: str, *, buffer: int, borrow: int, safe_overflow: bool, create: bool):
    """Creates (parent) or opens (worker) a one-publisher, one-subscriber byte-slice service:
    payload aligned to 64 bytes, `buffer` samples queued, `borrow` held as views at once,
    no history; `safe_overflow` drops the oldest instead of refusing. iceoryx2's errors propagate.
    """
    builder = (node.service_builder(iox.ServiceName.new(name))
               .publish_subscribe(SLICE)
               .payload_alignment(iox.Alignment.new(PAYLOAD_ALIGN))
               .max_publishers(1).max_subscribers(1).max_nodes(2)
               .history_size(0)
               .subscriber_max_buffer_size(buffer)
               .subscriber_max_borrowed_samples(borrow)
               .enable_safe_overflow(safe_overflow))
    return builder.create() if create else builder.open()


def event(node, name: str, *, create: bool):
    """Creates or opens the event service that wakes the other side when a sample is sent."""
    builder = node.service_builder(iox.ServiceName.new(name)).event()
    return builder.create() if create else builder.open()


def publisher(service, max_slice_len: int, *, block: bool):
    """A publisher of byte slices up to `max_slice_len` bytes (growing by powers of two),
    two loans at most; `block` retries until delivered, otherwise a full queue discards."""
    strategy = (iox.BackpressureStrategy.RetryUntilDelivered if block
                else iox.BackpressureStrategy.DiscardData)
    return (service.publisher_builder()
            .initial_max_slice_len(max_slice_len)
            .allocation_strategy(iox.AllocationStrategy.PowerOfTwo)
            .max_loaned_samples(2)
            .backpressure_strategy(strategy)
            .create())


class Lease:
    """Keeps one received sample borrowed while any view of its memory lives.

    The buffer object numpy views is a ctypes array over the sample; it carries the lease, so
    the sample goes back to its publisher when the last view is collected, on whatever thread
    that happens (iceoryx2's Python samples may be released from any thread). `released` is a
    deque because appending to it is atomic under the GIL."""

    __slots__ = ("sample", "released")

    def __init__(self, sample, released: collections.deque):
        self.sample = sample
        self.released = released

    def __del__(self):
        self.sample.delete()
        self.released.append(1)


class Borrowed:
    """Counts samples held as views: taken here, given back by `Lease.__del__`."""

    __slots__ = ("taken", "released")

    def __init__(self):
        self.taken = 0
        self.released = collections.deque()

    def count(self) -> int:
        """Samples still held as views: `taken` less those given back since (drained here, on the
        caller's thread)."""
        released = self.released
        while released:
            released.popleft()
            self.taken -= 1
        return self.taken

    def buffer(self, sample) -> ctypes.Array:
        """A ctypes byte array over the sample's payload that owns a lease on it."""
        n = sample.header.number_of_elements
        buf = (ctypes.c_uint8 * n).from_address(sample.payload_ptr)
        buf._lease = Lease(sample, self.released)
        self.taken += 1
        return buf



class Spinner:
    """Whether to busy-poll for an answer before sleeping on the event listener.

    Spinning wins when the other process has a core of its own (an answer in about 10 us
    instead of about 50 us through the listener) and loses when both share one core, where the
    spinner delays the very process it waits for. So both are measured: each request's time from
    send to answer goes into a window per mode, the mode with the lower median is used (a median, so one
    preempted wait does not condemn a mode), and EXPLORE waits in a row out of every PERIOD try
    the other mode so its window stays current. The first wait after a switch is not recorded:
    the worker decides whether to spin for the next request from the previous one's flag, so that
    wait still runs half in the old mode."""

    PERIOD = 96
    EXPLORE = 8
    WINDOW = 7      # one exploring run refreshes the whole window

    __slots__ = ("budget_s", "samples", "median", "count", "last", "switched")

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.samples = {True: collections.deque(maxlen=self.WINDOW),
                        False: collections.deque(maxlen=self.WINDOW)}
        self.median = {True: None, False: None}
        self.count = 0
        self.last = None
        self.switched = True

    def choose(self) -> bool:
        """True: spin (up to budget_s) on this wait."""
        if self.budget_s <= 0:
            return False
        self.count += 1
        spin, sleep = self.median[True], self.median[False]
        # an unmeasured mode is tried first: spinning, then sleeping
        best = spin is None or (sleep is not None and spin <= sleep)
        explore = self.count % self.PERIOD >= self.PERIOD - self.EXPLORE
        mode = not best if explore else best
        self.switched = mode is not self.last
        self.last = mode
        return mode

    def record(self, spun: bool, seconds: float) -> None:
        """Adds one request's send-to-answer time in seconds to the window of the mode it used
        (spun or slept) and updates that window's median; the first sample after a switch is
        skipped.
        """
        if self.switched:
            self.switched = False
            return
        window = self.samples[spun]
        window.append(seconds)
        self.median[spun] = statistics.median(window)
