"""What remotemedia writes as YAML (convert-manifest, remotemedia.testing.to_yaml) reads back
equal through its own YAML 1.2 reader, and `convert-manifest -o X.json` writes JSON. Before:
PyYAML's 1.1 dumper wrote the string `1e5` plain, which the 1.2 reader reads as 100000.0 (a
manifest named "1e5" came back named '100000.0'), and `-o m.json` held YAML that `validate
m.json` refused as invalid JSON."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.docparse import dump_yaml, load_yaml
from remotemedia.testing import chain, to_yaml

LOOKALIKES = st.sampled_from(["1e5", "1E-3", ".5", "0o17", "0x1F", "010", "+1", "-.inf",
                              ".NaN", "true", "False", "yes", "no", "on", "off", "null", "~",
                              "", "<<", "1_000", "1:30", "0b11", "2026-12-03", "y", "n"])
SCALARS = st.one_of(st.text(), LOOKALIKES, st.integers(), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(), LOOKALIKES), inner,
                                                 max_size=4)), max_leaves=12)


@given(DOCS)
@settings(max_examples=300, deadline=None)
def test_what_we_write_as_yaml_reads_back_equal(doc):
    assert load_yaml(dump_yaml(doc)) == doc


def test_convert_manifest_output_validates_and_keeps_strings(tmp_path):
    manifest = chain(("s", "PassThrough"), name="1e5")
    manifest["nodes"][0]["description"] = "0o17"
    (tmp_path / "m.yaml").write_text(to_yaml(manifest))
    for out in ("n.yaml", "n.json"):
        done = subprocess.run([sys.executable, "-m", "remotemedia", "convert-manifest",
                               "m.yaml", "-o", out], cwd=tmp_path, capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        check = subprocess.run([sys.executable, "-m", "remotemedia", "validate", out],
                               cwd=tmp_path, capture_output=True, timeout=60)
        assert check.returncode == 0, check.stderr
        assert b"ok: '1e5'" in check.stdout, check.stdout
