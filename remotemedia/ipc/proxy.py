"""The node that stands in for a node running in its own process: now
remotemedia.executors.process (on the RemoteNode base every executor shares); these names stay
importable from here."""

from ..engine.errors import ExecutorCrashed as WorkerCrashed
from ..engine.errors import ExecutorError as WorkerError
from ..engine.errors import ExecutorStartError as WorkerStartError
from ..engine.errors import RemoteNodeError
from ..executors.base import MAX_RESTARTS, RESTART_WINDOW_S
from ..executors.process import ProcessNode, make_executor_node

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW_S", "ProcessNode", "RemoteNodeError", "WorkerCrashed",
           "WorkerError", "WorkerStartError", "make_executor_node"]
