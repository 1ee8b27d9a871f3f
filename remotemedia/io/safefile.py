"""Creating the files a run writes without following a link the run did not make.

Every file a command creates (a recording's files, `--events`, `--trace`, `--output file:`/
`raw:`, batch reports, report pages, a saved manifest or stats file) is created here, in one of
two ways:

- in a directory the run made or checked (`SafeDir`): the directory is opened once, checked on its
  open descriptor (a real directory, not a link, owned by this user, not writable by group or
  others) and every file is created relative to that descriptor with
  O_CREAT | O_EXCL | O_NOFOLLOW (`openat`). Nobody else can add an entry there, and the run
  never opens an entry it did not just create, so a link planted before or during the run
  (even in a race with the directory's creation) is refused, never followed;
- a file the user names (`open_output`): its directory is opened as named and the name created
  relative to it. What the user expects from an output that already exists:

  * a regular file is replaced (truncated and rewritten) when its directory is private (owned by
    this user or root, not writable by group or others). In a directory others can write (/tmp,
    a shared directory, another user's directory) it is replaced only when it is this user's own
    file with a single link; anyone else's file there is refused: it may be a link planted to
    make the run truncate something else;
  * a symbolic link is followed only when nobody else could have made or swapped it: it lies
    in a private directory, or it is this user's own link in a sticky directory (/tmp). Its target is
    then opened by the same rules, hop by hop (at most `MAX_HOPS`). So `--events /dev/stdout`
    works, and a link planted in /tmp or in another user's directory is refused;
  * a FIFO or a character device (/dev/null, a pipe to another program) is opened as it is,
    never truncated.

  Refusals are UsageError (exit 2) with one line naming the file and the reason. `check_output`
  and `check_dir` make the same decisions without creating anything, so a command can refuse
  before it opens anything for writing.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..engine.errors import UsageError

MAX_HOPS = 16
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = os.O_NOFOLLOW
_O_DIRECTORY = os.O_DIRECTORY
#: /proc/PID/fd links that are not paths (a pipe, a socket): opened as the kernel resolves them
_MAGIC_PREFIXES = ("pipe:", "socket:", "anon_inode:")


def _euid() -> int:
    return os.geteuid()


def is_private(st: os.stat_result) -> bool:
    """True for a directory only this user (or root) can add, remove or replace entries in: owned
    by this user or root and not writable by group or others."""
    return st.st_uid in (_euid(), 0) and not st.st_mode & 0o022


def _sticky(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_ISVTX)


def _one_line(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- files the user names -----------------------------------------------------------------------

def check_output(path, what: str) -> None:
    """Refuse now (UsageError, exit 2) what `open_output(path, what)` would refuse, creating
    nothing: a missing directory, a directory, a link or a file the rules in the module doc do not
    let the run write through, a file or directory this user cannot write."""
    _resolve(os.fspath(path), what, create=False, hops=0)


def open_output_fd(path, what: str, readable: bool = False) -> int:
    """Create or replace the file the user named at `path` (str or PathLike) by the rules of
    the module doc; returns an O_WRONLY descriptor (O_RDWR with `readable`: a writer that
    reads back what it wrote, a WAV header) (close-on-exec) positioned at 0, the file
    empty when it is a regular file. UsageError (exit 2) naming `what` and the path when
    refused or when the OS refuses (its reason in the message)."""
    return _resolve(os.fspath(path), what, create=True, hops=0,
                    access=os.O_RDWR if readable else os.O_WRONLY)


def open_output(path, what: str, *, binary: bool = False):
    """`open_output_fd` as a Python file object: text (UTF-8, newline as written) or, with
    `binary`, a buffered binary writer. The caller closes it."""
    fd = open_output_fd(path, what)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def write_output(path, what: str, data: str | bytes) -> None:
    """Create or replace the user-named file `path` with `data` (str as UTF-8)."""
    with open_output(path, what, binary=True) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _split(path: str, what: str) -> tuple[str, str]:
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise UsageError(f"{what}: {path}: names a directory, not a file")
    return parent or ".", name


def _open_parent(parent: str, what: str, path: str) -> int:
    try:
        return os.open(parent, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"{what}: {path}: directory {parent} does not exist") from None
    except NotADirectoryError:
        raise UsageError(f"{what}: {path}: {parent} is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{what}: {path}: cannot open directory {parent}: {_one_line(exc)}") \
            from None


def _resolve(path: str, what: str, create: bool, hops: int,
             access: int = os.O_WRONLY) -> int | None:
    if hops > MAX_HOPS:
        raise UsageError(f"{what}: {path}: more than {MAX_HOPS} symbolic links to follow")
    parent, name = _split(path, what)
    dfd = _open_parent(parent, what, path)
    try:
        dst = os.fstat(dfd)
        private = is_private(dst)
        for _ in range(8):   # an entry removed between our two looks: look again
            try:
                lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    if not os.access(parent, os.W_OK):
                        raise UsageError(f"{what}: {path}: directory {parent} is not writable")
                    return None
                try:
                    return os.open(name, access | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW
                                   | _O_CLOEXEC, 0o666, dir_fd=dfd)
                except FileExistsError:
                    continue   # made by someone else in between: judge what is there now
                except OSError as exc:
                    raise UsageError(f"{what}: cannot create {path}: {_one_line(exc)}") \
                        from None
            mode = lst.st_mode
            if stat.S_ISLNK(mode):
                target = _trusted_link(dfd, name, lst, dst, private, what, path)
                if target is None:   # a /proc/self/fd link to a pipe or socket
                    if not create:
                        return None
                    return _open_existing(name, dfd, what, path, follow=True, access=access)
                return _resolve(target, what, create, hops + 1, access)
            if stat.S_ISDIR(mode):
                raise UsageError(f"{what}: {path} is a directory; give a file name")
            if not private and lst.st_uid != _euid():
                raise UsageError(
                    f"{what}: {path} exists and belongs to uid {lst.st_uid}, in {parent}, a "
                    f"directory others can write: refusing to write through it (remove it or "
                    f"name another file)")
            if not private and stat.S_ISREG(mode) and lst.st_nlink != 1:
                raise UsageError(
                    f"{what}: {path} has {lst.st_nlink} hard links, in {parent}, a directory "
                    f"others can write: refusing to truncate it (remove it or name another "
                    f"file)")
            if not create:
                if not os.access(name, os.W_OK, dir_fd=dfd):
                    raise UsageError(f"{what}: {path} is not writable")
                return None
            try:
                fd = _open_existing(name, dfd, what, path, follow=False, access=access)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            # what we opened must be what we judged: the same inode, still this shape
            if (st.st_dev, st.st_ino) != (lst.st_dev, lst.st_ino):
                os.close(fd)
                continue
            if stat.S_ISREG(st.st_mode):
                os.ftruncate(fd, 0)
            return fd
        raise UsageError(f"{what}: {path} keeps changing while it is opened; refusing it")
    finally:
        os.close(dfd)


def _open_existing(name: str, dfd: int, what: str, path: str, follow: bool,
                   access: int = os.O_WRONLY) -> int:
    flags = access | _O_CLOEXEC | os.O_NOCTTY | (0 if follow else _O_NOFOLLOW)
    try:
        return os.open(name, flags, dir_fd=dfd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{what}: {path} became a symbolic link while it was opened; "
                             f"refusing it") from None
        raise UsageError(f"{what}: cannot open {path}: {_one_line(exc)}") from None


def _trusted_link(dfd: int, name: str, lst, dst, private: bool, what: str,
                  path: str) -> str | None:
    """The path a link points to when the run may follow it (module doc), None for a /proc
    magic link to a pipe or socket; UsageError when it may not."""
    mine = lst.st_uid in (_euid(), 0)
    if not (private or (_sticky(dst) and lst.st_uid == _euid()
                        and dst.st_uid in (_euid(), 0))):
        raise UsageError(
            f"{what}: {path} is a symbolic link (owner uid {lst.st_uid}) in a directory others "
            f"can write: refusing to follow a link this run did not make (remove it or name "
            f"the file itself)")
    if not mine:
        raise UsageError(f"{what}: {path} is a symbolic link owned by uid {lst.st_uid}: "
                         f"refusing to follow it")
    target = os.readlink(name, dir_fd=dfd)
    if target.startswith(_MAGIC_PREFIXES):
        return None
    parent = os.path.dirname(path) or "."
    return os.path.join(parent, target)


# -- directories the run makes or checks --------------------------------------------------------------

def check_dir(path, what: str) -> None:
    """Refuse now (UsageError, exit 2) what `SafeDir.make(path, what)` would refuse, creating
    nothing: an existing entry that is not a directory, a directory that is a link this user did not
    make, belongs to another user or is writable by group or others, or a directory that cannot
    be made."""
    path = os.fspath(path)
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        ancestor = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise UsageError(f"{what}: {path}: {ancestor} is not a directory") from None
        if not os.access(ancestor, os.W_OK):
            raise UsageError(f"{what}: {path}: cannot create it: {ancestor} is not "
                             f"writable") from None
        return
    except OSError as exc:
        raise UsageError(f"{what}: {path}: {_one_line(exc)}") from None
    if stat.S_ISLNK(lst.st_mode):
        SafeDir.make(path, what, create=False).close()
        return
    if not stat.S_ISDIR(lst.st_mode):
        raise UsageError(f"{what}: {path} exists and is not a directory")
    _check_dir_stat(lst, path, what)


def _check_dir_stat(st, path: str, what: str) -> None:
    if st.st_uid != _euid():
        raise UsageError(f"{what}: {path} belongs to uid {st.st_uid}, not to this user "
                         f"({_euid()}): refusing to write into it")
    if st.st_mode & 0o022:
        raise UsageError(f"{what}: {path} can be written by group or others (mode "
                         f"{stat.S_IMODE(st.st_mode):o}): refusing to write into it")


def _mkdir_at(dfd: int, name: str, what: str, shown) -> None:
    """Make the directory `name` (0755) inside the open directory `dfd` unless it is there;
    UsageError naming `what` and `shown` (its path for people) when it cannot be made."""
    try:
        os.mkdir(name, 0o755, dir_fd=dfd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"{what}: cannot create {shown}: {_one_line(exc)}") from None


class SafeDir:
    """A directory this run made or checked, held open: `path` (Path), `fd` (its descriptor).
    Files are created relative to `fd`, never following a link. Close it when done (or use it
    as a context manager)."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def make(cls, path, what: str, *, create: bool = True, _hops: int = 0) -> "SafeDir":
        """Open the directory `path`, making it (mode 0755, parents as needed) when `create` and
        it does not exist, and check it on its open descriptor: a directory owned by this user,
        not writable by group or others. A link as its last component is followed only by the
        rules for links in `open_output`. UsageError (exit 2) naming `what` otherwise."""
        raw = os.fspath(path)
        norm = os.path.normpath(raw)
        parent, name = os.path.split(norm)
        parent = parent or "."
        if name in ("", ".", ".."):
            parent, name = norm, "."
        if create and name != ".":
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{what}: cannot create {parent}: {_one_line(exc)}") from None
        dfd = _open_parent(parent, what, raw)
        try:
            if create and name != ".":
                _mkdir_at(dfd, name, what, raw)
            try:
                fd = os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                             dir_fd=dfd)
            except FileNotFoundError:
                raise UsageError(f"{what}: {raw} does not exist") from None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    if stat.S_ISLNK(lst.st_mode):
                        if _hops >= MAX_HOPS:
                            raise UsageError(f"{what}: {raw}: too many symbolic links") \
                                from None
                        target = _trusted_link(dfd, name, lst, os.fstat(dfd),
                                               is_private(os.fstat(dfd)), what, raw)
                        if target is None:
                            raise UsageError(f"{what}: {raw} is not a directory") from None
                        return cls.make(target, what, create=create, _hops=_hops + 1)
                    raise UsageError(f"{what}: {raw} exists and is not a directory") from None
                raise UsageError(f"{what}: cannot open {raw}: {_one_line(exc)}") from None
        finally:
            os.close(dfd)
        try:
            _check_dir_stat(os.fstat(fd), raw, what)
        except BaseException:
            os.close(fd)
            raise
        return cls(Path(raw), fd)

    def exists(self, name: str) -> bool:
        """True when an entry `name` (a file, a directory, a link even dangling) is in the directory."""
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def create_fd(self, name: str, *, replace: bool = False) -> int:
        """A new file `name` in the directory, O_WRONLY, created with O_EXCL | O_NOFOLLOW. With
        `replace`, an entry already there is removed first (never opened). Raises
        FileExistsError when it exists (without `replace`), OSError for what the OS refuses."""
        if replace:
            try:
                os.unlink(name, dir_fd=self.fd)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                raise UsageError(f"{self.path / name} is a directory; refusing to replace it") \
                    from None
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                       0o666, dir_fd=self.fd)

    def create(self, name: str, *, binary: bool = False, replace: bool = False):
        """`create_fd` as a Python file object: text (UTF-8, newline as written) or binary."""
        fd = self.create_fd(name, replace=replace)
        if binary:
            return os.fdopen(fd, "wb")
        return os.fdopen(fd, "w", encoding="utf-8", newline="")

    def write(self, name: str, data: str | bytes, *, replace: bool = True) -> None:
        """Write a whole small file `name` (str as UTF-8), replacing any entry there. A write
        that fails (a full disk) removes the part written and raises: no half file is left."""
        try:
            with self.create(name, binary=True, replace=replace) as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError:
            try:
                os.unlink(name, dir_fd=self.fd)
            except OSError:
                pass
            raise

    def write_atomic(self, name: str, data: str | bytes) -> None:
        """Write `data` to a fresh temporary name in the directory, fsync it, and rename it over
        `name`: a reader sees the old file or the new one, never half of one."""
        tmp = f".{name}.{os.getpid()}.tmp"
        with self.create(tmp, binary=True, replace=True) as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def subdir(self, name: str, what: str) -> "SafeDir":
        """The directory `name` inside this one, made (0755) if missing and checked like `make`."""
        _mkdir_at(self.fd, name, what, self.path / name)
        try:
            fd = os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC,
                         dir_fd=self.fd)
        except OSError as exc:
            raise UsageError(f"{what}: {self.path / name} is not a directory this run can use "
                             f"({_one_line(exc)})") from None
        try:
            _check_dir_stat(os.fstat(fd), str(self.path / name), what)
        except BaseException:
            os.close(fd)
            raise
        return SafeDir(self.path / name, fd)

    def close(self) -> None:
        """Close the directory's descriptor; safe twice."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> "SafeDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


__all__ = ["SafeDir", "check_dir", "check_output", "is_private", "open_output",
           "open_output_fd", "write_output", "MAX_HOPS"]
