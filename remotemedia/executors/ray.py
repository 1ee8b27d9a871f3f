"""`executor: ray`: the node runs in a Ray actor, on this machine's cluster or another's.

The transport over remotemedia/ray (actor, cluster); queue policy, failure policy, accounting
and stats are RemoteNode's (base.py). The actor is placed with the manifest's `resources`
(`{num_gpus: 1}`, `{num_cpus: 0.5}`, or any custom resource name), on the cluster `ray.init()`
finds: `RAY_ADDRESS` (or `REMOTEMEDIA_RAY_ADDRESS`), else a cluster started on this machine with
`ray start`, else a new local one (about 2.4 s and 950 MiB on these machines). Ray itself is
imported when such a node starts (`pip install 'remotemedia[ray]'`).

Serialization, counted at this node only. Every frame sent is pickled once (`pickle.dumps` of the
`RuntimeData.Numpy`, counted by the engine's copyreg reducer like any pickle of an array, and
refused in strict mode), and every array the node outputs is pickled once inside the actor, which
says how many, and is counted here as a `ray-actor` event. Each crossing also counts two `io`
copies, the pickle and the unpickle; Ray's own copies of the pickled bytes (into its object store
and out) are on top of those. A frame through a Ray node and back: 2 serialization events and 4
`io` copies. The rest of the graph stays zero-copy.

Failures. An actor that dies is noticed when its answer is collected; one silent for DEADLINE_S
with requests in flight is killed. `round_trip_us` runs from before the frame is pickled to the
moment this side holds the unpickled answer. Settings: REMOTEMEDIA_RAY_DEADLINE_MS,
REMOTEMEDIA_RAY_REPLY_WAIT_MS, REMOTEMEDIA_RAY_START_TIMEOUT_MS.
"""

from __future__ import annotations

import os
import sys

from ..engine.errors import ExecutorStartError, RemoteNodeError
from ..engine.serialization import record_encode
from ..ray import actor as actor_module
from ..ray import cluster
from ..engine.errors import WorkerDied
from .base import RemoteNode, Reply, Transport, executor_factory, translate

_actor_classes: dict = {}


def _remote_actor_class(ray):
    cls = _actor_classes.get("NodeActor")
    if cls is None:
        cls = _actor_classes["NodeActor"] = ray.remote(actor_module.NodeActor)
    return cls


def actor_options(resources) -> dict:
    """Ray actor options from a manifest's `resources` mapping (unknown names are custom).
    `CPU` and `GPU` (`resources: {GPU: 1}`, as a manifest that wants the model on a GPU
    machine writes it, and as `ray status` lists them) are Ray's `num_cpus` / `num_gpus`:
    Ray refuses them under `resources`."""
    options: dict = {"max_restarts": 0, "max_concurrency": 1}
    custom = {}
    for name, value in dict(resources).items():
        name = {"CPU": "num_cpus", "GPU": "num_gpus"}.get(name, name)
        if name in ("num_cpus", "num_gpus", "memory"):
            options[name] = value
        else:
            custom[name] = value
    if custom:
        options["resources"] = custom
    return options


def _call_errors(ray) -> dict:
    """The boundary of an answer: which of Ray's errors mean the actor is gone."""
    exceptions = ray.exceptions
    return {(exceptions.RayActorError, exceptions.ActorUnavailableError): (WorkerDied, "died"),
            exceptions.RayError: (WorkerDied, "failed")}


class RayTransport(Transport):
    """One Ray actor holding the wrapped node (see the module docstring)."""

    name = "ray"
    env = "RAY"
    deadline_s = 5.0          # a request unanswered this long means the actor hangs
    reply_wait_s = 0.010      # half a 20 ms block
    start_timeout_s = 60.0    # from creating the actor to its ready() answer

    def __init__(self, node: RemoteNode):
        super().__init__(node)
        self.actor = None
        self.where: dict | None = None   # {"pid", "host"} of the live actor
        self._ray = None
        self._errors: dict = {}

    @property
    def pid(self) -> int | None:
        """The live actor's process id on its host, or None."""
        return self.where["pid"] if self.where and self.actor is not None else None

    @property
    def runs_in(self) -> str:
        """Where the node runs, for messages: "Ray actor pid N"."""
        return f"Ray actor pid {self.pid}"

    def start(self) -> None:
        """Connects to the cluster, creates the actor and waits for its ready() (the wrapped
        node's setup() there). ExecutorStartError when Ray is missing or unreachable, the
        options are refused, or the actor is not ready within start_timeout_s."""
        try:
            ray = self._ray = cluster.connect(os.environ.get("REMOTEMEDIA_RAY_ADDRESS") or None)
        except cluster.ClusterError as exc:
            raise ExecutorStartError(f"executor 'ray': {exc}") from exc
        self._errors = _call_errors(ray)
        node = self.node
        spec, fmt = node.spec, node.format
        cls = spec.node_class
        config = {
            "node_class": f"{cls.__module__}:{cls.__qualname__}",
            "node_id": spec.id,
            "params": dict(spec.params),
            "format": {"sample_rate": fmt.sample_rate, "channels": fmt.channels,
                       "block_size": fmt.block_size},
            "sys_path": [p for p in sys.path if isinstance(p, str) and p],
        }
        options = actor_options(spec.resources)
        with translate({Exception: ExecutorStartError},   # bad options: refused at once
                       f"actor for {spec.node_type} could not be created"):
            self.actor = _remote_actor_class(ray).options(**options).remote(config)
        try:
            self.where = ray.get(self.actor.ready.remote(), timeout=node.start_timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            wanted = dict(spec.resources) or {"num_cpus": 1}
            raise ExecutorStartError(f"actor for {spec.node_type} was not ready within "
                                     f"{node.start_timeout_s:g} s (does the cluster have "
                                     f"{wanted} free?)") from exc
        except ray.exceptions.RayError as exc:
            raise ExecutorStartError(f"actor for {spec.node_type} could not start: "
                                     f"{cluster.describe(exc)}") from exc

    def send(self, request, data, counters) -> None:
        """Pickles the data (counted by the engine's reducer for an array; two `io` copies
        for a frame) and submits the actor call; its ObjectRef is the request's handle."""
        payload = actor_module.pack([data])   # a frame's array is pickled here: counted
        if request.is_frame and counters is not None:
            counters.io += 2   # pickled here, unpickled in the actor
        request.handle = self.actor.call.remote(payload)

    def receive(self, requests, counters):
        """The answers that are ready, oldest first, unpickled; Ray's errors translated
        (an actor gone is WorkerDied); the actor's pickles counted here."""
        ray = self._ray
        while requests:
            request = next(iter(requests.values()))
            ready, _ = ray.wait([request.handle], num_returns=1, timeout=0)
            if not ready:
                return
            with translate(self._errors, f"actor pid {self.pid}"):
                status, payload, arrays = ray.get(request.handle)
            if status == "error":
                yield Reply(request.rid, [], f"{payload}: {arrays}")
                continue
            outputs = actor_module.unpack(payload)
            for _ in range(arrays):
                record_encode(None, "ray-actor")
            if counters is not None:
                counters.io += 2 * arrays   # pickled in the actor, unpickled here
            yield Reply(request.rid, outputs)

    def wait(self, timeout_s: float, requests) -> None:
        """Waits on the oldest request's ObjectRef, at most timeout_s."""
        if requests:
            oldest = next(iter(requests.values()))
            self._ray.wait([oldest.handle], num_returns=1, timeout=timeout_s)

    def check(self) -> None:
        """A dead actor shows when its answer is collected (receive)."""

    def stop(self, timeout_s: float) -> None:
        """Runs the wrapped node's teardown() in the actor, for up to timeout_s; kill() then
        ends the actor."""
        if self.actor is None:
            return
        ray = self._ray
        try:
            ray.get(self.actor.stop.remote(), timeout=timeout_s)
        except ray.exceptions.RayTaskError as exc:   # the node's teardown() raised there
            raise RemoteNodeError(f"teardown raised {cluster.describe(exc)} (in "
                                  f"{self.runs_in})") from exc
        except Exception:   # noqa: BLE001 (a dead or hung actor is killed all the same)
            pass

    def kill(self) -> None:
        """Kills the actor (no restart by Ray: restarts are RemoteNode's)."""
        handle, self.actor = self.actor, None
        if handle is not None:
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:   # noqa: BLE001 (already gone, or the cluster with it)
                pass


class RayNode(RemoteNode):
    """Stands in for `wrapped` (a Node class) running in a Ray actor."""

    transport_class = RayTransport
    retains_input = False   # the frame is pickled before process() returns

    @property
    def actor(self):
        """The live actor's handle, or None."""
        return self.transport.actor if self.transport is not None else None

    @property
    def where(self) -> dict | None:
        """{"pid", "host"} of the live actor, or None."""
        return self.transport.where if self.transport is not None else None


make_executor_node = executor_factory(RayNode, "Ray", where="a Ray actor")
