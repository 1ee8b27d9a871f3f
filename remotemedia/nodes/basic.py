"""Nodes that move frames without touching samples."""

from __future__ import annotations

from ..engine.node import Node, register_node


@register_node
class PassThrough(Node):
    """Passes every input on unchanged: audio as the same view (no copy), text, json and binary as
    they are."""

    node_type = "PassThrough"
    description = "Pass every frame on unchanged (the same view, no copy)."
    accepts = frozenset({"numpy", "text", "json", "binary"})
    #: audio leaves as it came (a file output then keeps the input's sample format)
    keeps_samples = True

    def process(self, data):
        """`data` itself."""
        return data
