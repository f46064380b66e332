"""Writing output files without destroying anything: the one home of descend's file writes.

Checkpoints, history CSVs and plots all go through :func:`write_output`, which decides by
what is at the target:

* a regular file, or nothing yet: the bytes go to a temporary file in the same folder, which
  is flushed, fsynced and renamed over the target (``os.replace``), so a crash, a full disk,
  a file-size limit or a kill in the middle of the write leaves the previous file intact;
  a symbolic link is followed, so the file it points to is replaced, not the link;
* ``-`` (standard output), a character device (``/dev/null``, a terminal), a FIFO, or a
  standard stream reached through ``/dev/stdout``, ``/dev/fd/N`` or ``/proc``: written in
  place. Renaming a temporary file over these would replace the device or the pipe itself
  with a regular file (as root, ``/dev/null`` would be gone);
* a directory, a block device, a socket: refused by name.

Every failure of the operating system (permission, read-only folder, full disk, file-size
limit, name too long) becomes one error of the caller's class naming the file and the cause.

A process killed outright (SIGKILL) cannot remove its temporary file; temporary files carry
the writer's process id, and the next write or read of the same target removes those whose
writer is gone.
"""

from __future__ import annotations

import errno
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

from .errors import OutputError

TargetKind = Literal["stdout", "stream", "regular", "missing"]

#: File formats matplotlib writes without extra packages (the plots' suffixes).
PLOT_FORMATS = (".png", ".svg", ".svgz", ".pdf", ".eps", ".ps", ".jpg", ".jpeg", ".tif",
                ".tiff", ".webp", ".pgf", ".raw", ".rgba")

#: Temporary files: ".<name>.<pid>.<random>.tmp" beside the target.
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{12}\.tmp$")


def _reason(exc: OSError) -> str:
    """The cause of an OSError in words, with the names a user searches for."""
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        return "file name too long for the file system"
    if code == errno.EFBIG:
        return "file size limit exceeded (RLIMIT_FSIZE / ulimit -f)"
    if code == errno.ENOSPC:
        return "no space left on device"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc) or type(exc).__name__


def _through_proc(path: Path) -> bool:
    """Whether ``path`` names a standard stream or descriptor via ``/proc`` (``/dev/stdout``,
    ``/dev/fd/1``, ``/proc/self/fd/1``): its final link target is not a path to replace."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on chained links
        if p == "/proc" or p.startswith("/proc/"):
            return True
        parent = os.path.realpath(os.path.dirname(p))
        if parent == "/proc" or parent.startswith("/proc/"):
            return True
        if not os.path.islink(p):
            return False
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return False


def target_kind(path: str | Path, *, what: str,
                error: type[Exception] = OutputError) -> TargetKind:
    """Classify the write target ``path``, refusing what must not be written.

    Returns ``"stdout"`` for ``-``, ``"stream"`` for a character device, a FIFO or a
    standard stream (written in place), ``"regular"`` for a regular file and ``"missing"``
    when nothing is there yet (both replaced atomically).

    Raises ``error`` naming ``what`` and the path for a directory, a block device, a socket,
    a missing folder or a name the file system cannot hold.
    """
    if str(path) == "-":
        return "stdout"
    path = Path(path)
    if not str(path):
        raise error(f"{what}: the file name is empty")
    try:
        if _through_proc(path):
            return "stream"
        st = os.stat(path)
    except FileNotFoundError:
        folder = path.parent if str(path.parent) else Path(".")
        try:
            is_dir = folder.is_dir()
        except OSError as exc:
            raise error(f"cannot write {what} {path}: {_reason(exc)}") from None
        if not is_dir:
            raise error(f"cannot write {what} {path}: the folder {folder} does not exist"
                        ) from None
        return "missing"
    except OSError as exc:
        raise error(f"cannot write {what} {path}: {_reason(exc)}") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    kind = ("a directory" if stat.S_ISDIR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise error(f"{what} path {path} is {kind}, expected a file name")


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files left beside ``path`` by writers that no longer run.

    Returns the paths removed. Temporaries of a process still alive are kept (it may be
    writing now)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP.match(entry.name)
        if m is None or m["name"] != path.name:
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread
    # of ours writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_output(path: str | Path, write: Callable[[BinaryIO], None], *, what: str,
                 error: type[Exception] = OutputError) -> str | Path:
    """Write a file by calling ``write(fh)`` on a binary file object, without destroying
    anything (see the module's docstring for what happens to each kind of target).

    Parameters
    ----------
    path : str or Path
        The target; ``"-"`` is standard output.
    write : callable
        Writes the whole content to the binary file object it is given.
    what : str
        What is being written ("checkpoint", "history CSV", "plot"), for error messages.
    error : exception class
        Raised, with one clear line naming the file and the cause, on any failure of the
        operating system.

    Returns
    -------
    The path written (``"-"`` for standard output).
    """
    kind = target_kind(path, what=what, error=error)
    if kind in ("stdout", "stream"):
        # Streams cannot seek (a zip archive's writer would misread /dev/null's position):
        # the content is made in memory, then written in one go.
        buffer = io.BytesIO()
        write(buffer)
        data = buffer.getvalue()
        if kind == "stdout":
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return "-"
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            raise error(f"cannot write {what} {path}: {_reason(exc)}") from None
        return Path(path)
    path = Path(path)
    _replace_atomically(path, write, what, error)
    return path


def _replace_atomically(path: Path, write: Callable[[BinaryIO], None], what: str,
                        error: type[Exception]) -> None:
    # A link is followed: the file it points to is replaced and the link stays a link.
    real = Path(os.path.realpath(path))
    folder = real.parent
    remove_stale_temporaries(real)
    try:
        previous_mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        previous_mode = 0o666 & ~_UMASK
    tmp = folder / f".{real.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise error(f"cannot write {what} {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            # the new file gets the permissions of the one it replaces (or the usual ones)
            os.fchmod(fh.fileno(), previous_mode)
        os.replace(tmp, real)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {path}: {_reason(exc)}; the previous file, if "
                        "any, is unchanged") from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
