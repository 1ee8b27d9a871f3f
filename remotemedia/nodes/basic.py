"""Nodes that move frames without touching samples."""

from __future__ import annotations

from ..engine.node import Node, register_node


@register_node
class PassThrough(Node):
    node_type = "PassThrough"
    description = "Pass every frame on unchanged (the same view, no copy)."
    accepts = frozenset({"numpy", "text", "json", "binary"})

    def process(self, data):
        return data
