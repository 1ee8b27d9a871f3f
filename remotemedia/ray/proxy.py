"""The node that stands in for a node running in a Ray actor: now remotemedia.executors.ray (on
the RemoteNode base every executor shares); these names stay importable from here."""

from ..engine.errors import ExecutorCrashed as ActorCrashed
from ..engine.errors import ExecutorError as ActorError
from ..engine.errors import ExecutorStartError as ActorStartError
from ..engine.errors import RemoteNodeError
from ..executors.base import MAX_RESTARTS, RESTART_WINDOW_S
from ..executors.ray import RayNode, actor_options, make_executor_node

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW_S", "ActorCrashed", "ActorError", "ActorStartError",
           "RayNode", "RemoteNodeError", "actor_options", "make_executor_node"]
