"""Nodes in Ray actors: `executor: ray` runs a node on a Ray cluster (this machine or another).

    actor  the actor class that holds the node, and the pickled format frames cross in
    proxy  the node that stands in for the real one; queue policy, crashes, restarts, stats

The engine imports this package only for manifests that ask for `executor: ray`, through
`make_executor_node(spec)`; Ray itself is imported when such a node starts (`pip install
'remotemedia[ray]'`).
"""

from .proxy import (ActorCrashed, ActorError, ActorStartError, RayNode, RemoteNodeError,
                    make_executor_node)

__all__ = ["ActorCrashed", "ActorError", "ActorStartError", "RayNode", "RemoteNodeError",
           "make_executor_node"]
