"""The `remotemedia tui` app (app.py, its saving keys in saving.py), its widgets, screens and styles."""

from .meters import LevelMeters, PeakHold
from .screens import HelpScreen, IoChoice, IoPicker, ManifestPicker, list_manifests
from .snapshot import Snapshot, capture
from .widgets import CounterPanel, LatencyView, PipelineView, StateLine

__all__ = ["CounterPanel", "HelpScreen", "IoChoice", "IoPicker", "LatencyView", "LevelMeters",
           "ManifestPicker", "PeakHold", "PipelineView", "Snapshot", "StateLine", "capture",
           "list_manifests"]
