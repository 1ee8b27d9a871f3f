"""The kind registries (io/registry.py): what a plugin registers is what a SPEC finds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import remotemedia.io.spec as spec_module
from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.registry import ANY_EXTENSION, EndRegistry, sinks, sources
from remotemedia.io.synth import SilenceSource
from remotemedia.io.virtual import NullSink

FMT = AudioFormat(48000, 1, 960)
ROOT = Path(__file__).resolve().parents[2]


def test_the_built_ins_are_declared_as_entry_points_like_a_plugins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = project["entry-points"]
    assert groups["remotemedia.sources"]["builtins"] == \
        "remotemedia.io.builtins:register_sources"
    assert groups["remotemedia.sinks"]["builtins"] == "remotemedia.io.builtins:register_sinks"


def test_the_lists_users_see_are_the_registries_in_order():
    assert spec_module.SOURCE_SPECS == ("default", "virtual", "file:PATH", "PATH", "raw:-",
                                        "sine:FREQ", "chirp", "noise", "silence",
                                        "text:STRING")
    assert spec_module.SINK_SPECS == ("default", "virtual", "file:PATH.wav", "PATH.wav",
                                      "raw:-", "null")
    assert sources.scheme("device") is not None and sources.scheme("DEVICE") is not None
    assert sources.generators() == ("sine", "chirp", "noise", "silence")


@pytest.fixture
def scratch():
    added = []
    yield added
    for registry, name in added:
        registry.remove(name)


def test_a_registered_scheme_is_made_listed_and_suggested(scratch):
    seen = []

    def make(request):
        seen.append(request)
        return SilenceSource(request.fmt)

    sources.add_scheme("hum", make, usage="hum:HZ")
    scratch.append((sources, "hum"))
    src = spec_module.make_source("Hum:50", FMT)
    assert isinstance(src, SilenceSource)
    assert (seen[0].name, seen[0].arg, seen[0].spec, seen[0].kind) == ("hum", "50", "Hum:50",
                                                                        "input")
    assert "hum:HZ" in spec_module.SOURCE_SPECS
    with pytest.raises(UsageError, match=r"did you mean 'hum'\?\); expected one of: .*hum:HZ"):
        spec_module.make_source("humm", FMT)
    # an input-only kind named as an output says which way it goes
    with pytest.raises(UsageError, match="hum is an input, not an output"):
        spec_module.make_sink("hum", FMT)


def test_an_extension_kind_takes_its_files_and_its_option(scratch, tmp_path):
    got = []

    def make(request):
        got.append((request.path, request.option))
        return NullSink(request.fmt)

    sinks.add_extension(".TXT", make)
    scratch.append((sinks, ".txt"))
    spec_module.make_sink(f"file:{tmp_path}/a.txt", FMT)
    spec_module.make_sink(f"file:{tmp_path}/b.TxT:utf8", FMT)
    assert got == [(tmp_path / "a.txt", None), (tmp_path / "b.TxT", "utf8")]
    # other extensions still reach the WAV writer, which names what it writes
    with pytest.raises(UsageError, match=r"\*\.wav"):
        spec_module.make_sink(f"file:{tmp_path}/c.xyz", FMT)


def test_a_later_registration_replaces_a_built_in(scratch):
    null = sinks.scheme("null")
    try:
        sinks.add_scheme("null", lambda request: "mine")
        assert spec_module.make_sink("null", FMT) == "mine"
    finally:
        sinks.add_scheme("null", null.factory, usage=null.usage)
    assert isinstance(spec_module.make_sink("null", FMT), NullSink)


@pytest.mark.parametrize("name", ["", "a:b", "two words", "x/y"])
def test_malformed_schemes_are_refused(name):
    with pytest.raises(ValueError):
        EndRegistry("input", "none").add_scheme(name, print)


@pytest.mark.parametrize("ext", ["wav", ".", "a/b", ".x:y", ""])
def test_malformed_extensions_are_refused(ext):
    with pytest.raises(ValueError):
        EndRegistry("output", "none").add_extension(ext, print)


def test_a_registry_without_a_kind_for_a_file_says_so():
    reg = EndRegistry("output", "remotemedia.test-none")
    reg._plugins.loaded = True                           # no entry points, no built-ins
    assert reg.extension("x.wav") is None and reg.scheme("file") is None
    reg.add_extension(ANY_EXTENSION, print)
    assert reg.extension("x.anything").name == ANY_EXTENSION
    with pytest.raises(KeyError):
        reg.remove(".wav")


def test_an_install_without_the_entry_points_still_gets_the_built_ins_first():
    # metadata made before the groups were declared (an old editable install): the built-ins
    # register all the same, and before any plugin's kinds
    reg = EndRegistry("input", "remotemedia.test-no-such-group")
    assert [k.name for k in reg.schemes()][:3] == ["default", "virtual", "file"]
    assert reg.extension("x.flac").name == ANY_EXTENSION


def test_the_registries_are_exported_from_remotemedia_io():
    import remotemedia.io as io
    assert io.sources is sources and io.sinks is sinks


def test_a_plugin_scheme_is_not_taken_for_a_bare_path(scratch):
    # `hum:./a` is a path until a kind named `hum` exists; then `hum:...` is that kind
    assert spec_module.bare_path("hum:./a") == "file:hum:./a"
    sources.add_scheme("hum", lambda request: SilenceSource(request.fmt))
    scratch.append((sources, "hum"))
    assert spec_module.bare_path("hum:./a") == "hum:./a"
    assert "hum" in spec_module.SOURCE_NAMES and "hum" in spec_module.SINK_NAMES
