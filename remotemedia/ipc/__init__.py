"""Process-isolated nodes: `executor: process` runs a node in its own Python process.

Frames cross in shared memory through iceoryx2: the array bytes are written once into a loaned
sample and the other side reads them through a read-only numpy view; dtype, shape, strides,
sample rate, pts, seq and the metadata mapping cross in a small binary header (`codec`), never a
pickle. Each crossing counts one `io` copy, so a frame through a process node and back costs two.

    codec    the header format and the tagged value format for metadata and Json values
    channel  iceoryx2 domains, service naming, file permissions and cleanup, sample leases
    wire     writing RuntimeData into a sample and reading it back as a view
    worker   the worker process (`python -m remotemedia.ipc.worker`)
    (the stand-in node is remotemedia.executors.process, on the RemoteNode base every
    executor shares; `proxy` re-exports it)

The engine imports this package only for manifests that ask for `executor: process`, through
the `remotemedia.executors` entry point. WorkerError, WorkerCrashed and WorkerStartError are the
error tree's ExecutorError, ExecutorCrashed and ExecutorStartError under the names they had.
"""

from ..executors.base import lazy_exports

__all__ = ["ProcessNode", "RemoteNodeError", "WorkerCrashed", "WorkerError", "WorkerStartError",
           "make_executor_node"]


# Lazily: the executor module imports this package's other modules, which must not import it back.
__getattr__ = lazy_exports(__name__, "proxy", __all__)
