"""Calls compatible with the upstream's Python API, so code written against it runs unchanged.

    await execute_pipeline(manifest)                     # run with no input; returns outputs
    await execute_pipeline_with_input(manifest, inputs)  # every input, in one session

A manifest may be a path, a dict or a JSON string, in the native or the upstream shape (as the
README's "Manifests written for the upstream" says: its roots take each input, its terminal nodes'
outputs come back; upstream audio dicts `{"type": "audio", "samples", "sample_rate", "channels"}`
are accepted as inputs). Outputs come back as Python values (`from_runtime_data`): arrays as the
same read-only views that left the graph.
"""

from __future__ import annotations

from typing import Any, Iterable

from .engine.data import from_runtime_data
from .engine.session import Pipeline


def is_available() -> bool:
    """The engine is pure Python and always available."""
    return True


def get_runtime_version() -> str:
    """The installed remotemedia version string (remotemedia.__version__)."""
    from . import __version__
    return __version__


async def execute_pipeline(manifest: Any) -> list[Any]:
    """Open a session, send end of stream, and return what the graph released."""
    pipeline = Pipeline.from_manifest(manifest)
    with pipeline.session() as session:
        return [from_runtime_data(d) for d in session.end_of_stream()
                if d.kind != "control"]


async def execute_pipeline_with_input(manifest: Any, inputs: Iterable[Any]) -> list[Any]:
    """Push every input through one session, in order; return all outputs as Python values."""
    pipeline = Pipeline.from_manifest(manifest)
    results = []
    with pipeline.session() as session:
        for item in inputs:
            results.extend(from_runtime_data(d) for d in session.push(item))
        results.extend(from_runtime_data(d) for d in session.end_of_stream()
                       if d.kind != "control")
    return results
