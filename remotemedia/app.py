"""The Textual app's old import path: `from remotemedia.app import RemoteMediaApp, run_app` keeps
working. The app lives in remotemedia/tui/app.py (its saving keys in tui/saving.py)."""

from .tui.app import POLL_HZ, STOP_TIMEOUT_S, RemoteMediaApp, default_manifests_dir, run_app

__all__ = ["POLL_HZ", "STOP_TIMEOUT_S", "RemoteMediaApp", "default_manifests_dir", "run_app"]
