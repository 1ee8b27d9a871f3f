"""Executors: where a node runs when a manifest says `executor: NAME`.

    inline   the engine's own (remotemedia/engine): called directly on the thread that pushes
    thread   a worker thread behind a bounded queue, frames by reference (thread.py)
    process  its own Python process, frames through iceoryx2 shared memory (process.py)
    ray      a Ray actor, on this machine or another, frames pickled (ray.py)

Every executor but inline is a `RemoteNode` (base.py) over a small `Transport`: the base owns
the queue policy (`queue_size`, `queue_policy`: block, drop_oldest, drop_newest), the failure
policy (`on_error`: fail, skip, restart), the drop and error accounting, the stats and the error
translation; a transport only moves requests and answers. Each registers its factory under the
entry point group `remotemedia.executors`, as a third party's executor would, and
`remotemedia.testing.check_executor` checks any of them against the same rules.

Importing this package imports neither iceoryx2 nor Ray: the modules that need them load when a
manifest asks for them.
"""

from .base import (MAX_RESTARTS, RESTART_WINDOW_S, RemoteNode, Reply, Request, Transport,
                   executor_factory, translate)

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW_S", "RemoteNode", "Reply", "Request", "Transport",
           "executor_factory", "translate"]
