"""Nodes in Ray actors: `executor: ray` runs a node on a Ray cluster (this machine or another).

    actor    the actor class that holds the node, and the pickled format frames cross in
    cluster  connecting to a cluster (also for `batch --ray`)
    (the stand-in node is remotemedia.executors.ray, on the RemoteNode base every executor
    shares; `proxy` re-exports it)

The engine imports this package only for manifests that ask for `executor: ray`, through the
`remotemedia.executors` entry point; Ray itself is imported when such a node starts (`pip
install 'remotemedia[ray]'`). ActorError, ActorCrashed and ActorStartError are the error tree's
ExecutorError, ExecutorCrashed and ExecutorStartError under the names they had.
"""

from ..executors.base import lazy_exports

__all__ = ["ActorCrashed", "ActorError", "ActorStartError", "RayNode", "RemoteNodeError",
           "make_executor_node"]


# Lazily: the executor module imports this package's other modules, which must not import it back.
__getattr__ = lazy_exports(__name__, "proxy", __all__)
