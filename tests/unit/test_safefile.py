"""io/safefile.py: the files a run creates never follow a link the run did not make.

On the real filesystem, with another uid (`setpriv --reuid=nobody`) planting links, files and
folders in a world-writable sticky folder (as /tmp is) and in a folder of its own, and racing
the run for the folder it is about to create.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import itertools
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from remotemedia.engine.errors import UsageError
from remotemedia.io.safefile import (SafeDir, check_dir, check_output, open_output,
                                     open_output_fd)
from remotemedia.record import FILES

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="planting as another uid needs root and setpriv")


def as_nobody(script: str) -> None:
    """Run a shell script as uid/gid 65534 (another user than the run's)."""
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "sh", "-c", script], check=True, timeout=30)


@pytest.fixture
def world():
    """A folder every user can reach (pytest's tmp_path is 0700): `pub` in it is sticky and
    world-writable like /tmp, `victim` is a file of root's that a planted link points at."""
    base = Path(tempfile.mkdtemp(prefix="rm-safefile-", dir="/tmp"))
    os.chmod(base, 0o755)
    pub = base / "pub"
    pub.mkdir()
    os.chmod(pub, 0o1777)
    victim = base / "victim"
    victim.write_bytes(b"precious\n")
    os.chmod(victim, 0o644)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def fingerprint(path: Path):
    st_ = os.stat(path)
    return path.read_bytes(), st_.st_mtime_ns, st_.st_size


# -- what happens to a file the user names ---------------------------------------------------------

def test_a_new_file_is_created_and_an_own_file_replaced(tmp_path):
    with open_output(tmp_path / "a.jsonl", "--events") as f:
        f.write("one\n")
    assert (tmp_path / "a.jsonl").read_text() == "one\n"
    with open_output(tmp_path / "a.jsonl", "--events") as f:
        f.write("2\n")
    assert (tmp_path / "a.jsonl").read_text() == "2\n"   # replaced, not appended


def test_a_link_of_this_users_in_a_private_folder_is_followed(tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    with open_output(tmp_path / "link.txt", "--events") as f:
        f.write("new")
    assert (tmp_path / "real.txt").read_text() == "new"
    assert (tmp_path / "link.txt").is_symlink()


def test_dev_null_and_a_fifo_are_written_as_they_are(tmp_path):
    with open_output("/dev/null", "--events") as f:
        f.write("x")
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    fd = open_output_fd(fifo, "--output")
    os.write(fd, b"abc")
    os.close(fd)
    reader.join(10)
    assert got == [b"abc"]


def test_a_folder_and_a_missing_folder_are_refused_with_one_line(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        open_output_fd(tmp_path, "--events")
    with pytest.raises(UsageError, match="does not exist"):
        check_output(tmp_path / "no" / "x", "--events")
    with pytest.raises(UsageError, match="does not exist"):
        open_output_fd(tmp_path / "no" / "x", "--events")
    assert not (tmp_path / "no").exists()


def test_a_hard_linked_file_in_a_shared_folder_is_not_truncated(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "mine").write_text("keep")
    os.link(tmp_path / "mine", shared / "out.txt")
    with pytest.raises(UsageError, match="hard links"):
        open_output_fd(shared / "out.txt", "--events")
    assert (tmp_path / "mine").read_text() == "keep"


def test_check_output_and_check_dir_create_nothing(tmp_path):
    check_output(tmp_path / "new.wav", "--output")
    check_dir(tmp_path / "a" / "b" / "rec", "--record")
    assert list(tmp_path.iterdir()) == []


def test_a_recording_directory_others_can_write_is_refused(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    os.chmod(d, 0o777)
    for call in (lambda: check_dir(d, "--record"), lambda: SafeDir.make(d, "--record")):
        with pytest.raises(UsageError, match="can be written by group or others"):
            call()


def test_safedir_files_are_new_and_never_through_a_link(tmp_path):
    with SafeDir.make(tmp_path / "rec", "--record") as d:
        (tmp_path / "elsewhere").write_text("x")
        os.symlink(tmp_path / "elsewhere", tmp_path / "rec" / "input.wav")
        with pytest.raises(FileExistsError):
            d.create_fd("input.wav")
        d.write("input.wav", b"new")   # replace: the link is removed, never opened
    assert (tmp_path / "elsewhere").read_text() == "x"
    assert not (tmp_path / "rec" / "input.wav").is_symlink()
    assert stat.S_IMODE(os.stat(tmp_path / "rec").st_mode) == 0o755


# -- another user plants ---------------------------------------------------------------------------

_COUNT = itertools.count()
PLANTS = ("symlink", "dangling", "file", "fifo")
APIS = ("open_output", "check_output", "record_dir", "record_file")


def _plant(kind: str, at: str, victim: Path) -> str:
    return {"symlink": f"ln -s {victim} {at}",
            "dangling": f"ln -s {victim}.new {at}",
            "file": f"echo theirs > {at}",
            "fifo": f"mkfifo {at}"}[kind]


@needs_root
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plant=st.sampled_from(PLANTS), api=st.sampled_from(APIS),
       folder=st.sampled_from(("sticky", "theirs")), name=st.sampled_from(FILES))
def test_nothing_another_user_planted_is_ever_followed_or_truncated(world, plant, api,
                                                                    folder, name):
    """Whatever another uid planted where the run creates a file (a link to a file of the
    user's, a dangling link, a file or a FIFO of its own), in a sticky world-writable folder or
    in a folder of its own, the run refuses with UsageError: the victim is untouched and
    nothing is created through the planted entry."""
    victim = world / "victim"
    mine = world / "mine"          # a folder of root's a planted link to a folder points at
    mine.mkdir(exist_ok=True)
    before = fingerprint(victim)
    tag = f"{next(_COUNT)}-{plant}-{api}-{folder}"
    base = world / "pub"
    if folder == "theirs":
        base = base / f"theirs-{tag}"
        as_nobody(f"mkdir {base} && chmod 755 {base}")
    if api == "record_dir":      # the recording folder itself is what they planted
        rec = base / f"rec-{tag}"
        link_to = mine if plant == "symlink" else victim
        as_nobody(_plant(plant, str(rec), link_to))
        with pytest.raises(UsageError):
            SafeDir.make(rec, "--record").close()
    elif api == "record_file":   # they made the folder first and planted one of its files
        rec = base / f"rec-{tag}"
        as_nobody(f"mkdir {rec} && " + _plant(plant, str(rec / name), victim))
        with pytest.raises(UsageError):
            with SafeDir.make(rec, "--record") as d:
                os.close(d.create_fd(name))
    else:
        target = base / f"{tag}.out"
        as_nobody(_plant(plant, str(target), victim))
        with pytest.raises(UsageError):
            if api == "open_output":
                os.close(open_output_fd(target, "--events"))
            else:
                check_output(target, "--events")
    assert fingerprint(victim) == before
    assert not Path(f"{victim}.new").exists()
    assert list(mine.iterdir()) == []


@needs_root
def test_a_recording_folder_another_user_makes_first_is_refused(world):
    victim = world / "victim"
    before = fingerprint(victim)
    rec = world / "pub" / "rec"
    as_nobody(f"mkdir {rec} && ln -s {victim} {rec}/input.wav")
    with pytest.raises(UsageError, match="belongs to uid 65534"):
        check_dir(rec, "--record")
    with pytest.raises(UsageError, match="belongs to uid 65534"):
        SafeDir.make(rec, "--record")
    assert fingerprint(victim) == before


@needs_root
def test_racing_another_user_for_the_folder_never_writes_through_a_link(world):
    """Another uid keeps replacing pub/rec with a folder of its own holding links to the
    victim (and pub/out.jsonl with a link) while the run makes its recording folder and files
    and opens its events file, over and over: every attempt is refused or lands in a folder of
    the run's own, and the victim never changes."""
    victim = world / "victim"
    before = fingerprint(victim)
    pub = world / "pub"
    links = " ; ".join(f"ln -s {victim} {pub}/rec/{n} 2>/dev/null" for n in FILES)
    stop = world / "stop"
    script = (f"while [ ! -e {stop} ]; do rm -rf {pub}/rec 2>/dev/null; mkdir {pub}/rec "
              f"2>/dev/null; {links}; ln -sf {victim} {pub}/out.jsonl 2>/dev/null; done")
    planter = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                "--clear-groups", "sh", "-c", script])
    made = refused = 0
    try:
        for i in range(300):
            try:
                with SafeDir.make(pub / "rec", "--record") as d:
                    for n in FILES:
                        os.close(d.create_fd(n))
                    assert os.fstat(d.fd).st_uid == 0
                    made += 1
                # ours now: only its owner (root) can change it; remove it for the next round
                shutil.rmtree(pub / "rec", ignore_errors=True)
            except (UsageError, FileExistsError):
                refused += 1
            try:
                os.close(open_output_fd(pub / "out.jsonl", "--events"))
                os.unlink(pub / "out.jsonl")
            except (UsageError, FileNotFoundError):
                pass
    finally:
        stop.touch()
        planter.wait(30)
    assert fingerprint(victim) == before
    assert made + refused == 300
    assert refused > 0   # the planter did win some rounds: the race was real
