"""The public API is pinned, as httpx's test_exported_members pins its own: a name added to or
taken from `__all__` of remotemedia, remotemedia.testing or remotemedia.engine fails here first,
and every name there resolves."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "remotemedia": [
        "AudioFormat", "CodecError", "DeviceError", "DeviceLost", "DeviceNotFound",
        "InputRequirement", "Manifest", "ManifestError", "ModelError", "Node", "NodeError",
        "NodeRegistry", "Param", "Pipeline", "PipelineBroken", "PipelineClosed",
        "RemoteMediaError", "RuntimeData", "SerializationError", "Session", "UnknownNodeType",
        "UsageError", "__version__", "execute_pipeline", "execute_pipeline_with_input",
        "from_runtime_data", "get_runtime_version", "is_available", "load_manifest",
        "node_function", "register_node", "registry", "to_runtime_data",
    ],
    "remotemedia.engine": [
        "AudioFormat", "CodecError", "DeviceError", "DeviceLost", "DeviceNotFound",
        "InputRequirement", "Manifest", "ManifestError", "ModelError", "Node", "NodeError",
        "NodeRegistry", "Param", "Pipeline", "PipelineBroken", "PipelineClosed",
        "RemoteMediaError", "RuntimeData", "SerializationError", "Session", "UnknownNodeType",
        "UsageError", "from_runtime_data", "load_manifest", "node_function", "record_encode",
        "register_node", "registry", "to_runtime_data",
    ],
    "remotemedia.testing": [
        "CollectingSink", "ConformanceReport", "Conversation", "Golden", "ListSource",
        "MockClock", "RunResult",
        "align", "assert_audio_close", "blocks_of", "chain", "check_executor", "check_node",
        "check_sink", "check_source", "isolated_registry", "manifest", "one_node", "registered", "run_blocks", "snr_db",
        "to_yaml", "wait_until",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_exported_members(module):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    assert len(set(mod.__all__)) == len(mod.__all__), "a name is exported twice"
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is exported but not defined"


def test_every_exception_class_is_in_the_one_tree_and_none_has_a_twin():
    import pkgutil

    import remotemedia
    from remotemedia.engine.errors import RemoteMediaError
    seen: dict[str, type] = {}
    for info in pkgutil.walk_packages(remotemedia.__path__, "remotemedia."):
        if info.name.endswith("__main__") or ".tui" in info.name or info.name.endswith(".app"):
            continue
        try:
            mod = importlib.import_module(info.name)
        except ImportError:   # an optional extra not installed here (Ray, iceoryx2, Textual)
            continue
        for value in vars(mod).values():
            if isinstance(value, type) and value.__module__ == info.name \
                    and not value.__name__.startswith("_"):
                twin = seen.setdefault(value.__name__, value)
                assert twin is value, f"two classes named {value.__name__}: " \
                                      f"{twin.__module__} and {value.__module__}"
                if issubclass(value, BaseException):
                    assert issubclass(value, RemoteMediaError), \
                        f"{value.__module__}.{value.__name__} is outside the error tree"
