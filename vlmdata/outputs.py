"""Every file a run writes: distinct from its inputs, staged, and published together or not at all.

Three promises live here, so that no command has to keep them on its own:

* **No output is an input.** ``check_outputs`` compares every output path of a run with every
  input and with each other by what they *are* (device and inode for existing files, the resolved
  path otherwise), so a symlink, a hard link or ``a/../b`` cannot slip an input in as an output.
* **All or nothing.** Writers create their file with ``temp_for`` (a hidden temp file beside the
  target) and hand it to ``publish``. Inside ``transaction()`` publishing only *stages* the rename;
  the renames happen together when the transaction ends without an error, and on any error (or a
  signal) every staged and open temp file is removed instead.
* **No debris, the right modes.** Temp files carry the writer's pid in their name, so a later run
  to the same destination can remove the ones whose process is gone. A new file gets the mode the
  umask gives (``0666 & ~umask``); a file that is replaced keeps its mode.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vlmdata.errors import VlmdataError

TEMP_SUFFIX = ".tmp"
_LIVE: set[str] = set()  # temp files this process created and has not yet renamed or removed


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def mode_for(path: str) -> int:
    """The mode a file written at ``path`` should get: the old file's, else what the umask allows."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def temp_name(path: str, tag: str = "") -> str:
    """``.NAME[.TAG].PID.RANDOM.tmp`` beside ``path`` (the pid tells a later run whether it is stale)."""
    folder, base = os.path.split(os.path.abspath(path))
    middle = f".{tag}" if tag else ""
    return os.path.join(folder, f".{base}{middle}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


_TAIL = re.compile(r"\.(\d+)\.[0-9a-f]{8}\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def remove_stale_temps(path: str) -> list[str]:
    """Remove temp files of ``path``'s naming left by processes that no longer run; returns them."""
    folder, base = os.path.split(os.path.abspath(path))
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TAIL.search(name)
        if m is None or not name.startswith(f".{base}."):
            continue
        if _alive(int(m[1])):
            continue  # a run racing on the same output: its temp file is not ours to remove
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(name)
    return removed


def temp_for(path: str, tag: str = "") -> tuple[int, str]:
    """Create the temp file that will become ``path``: (fd, temp path), mode already right."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    remove_stale_temps(path)
    mode = mode_for(path)
    while True:
        tmp = temp_name(path, tag)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # read-only or full file system: name the output, not the temp file
            raise OSError(exc.errno, exc.strerror, path) from None
    _LIVE.add(tmp)
    with contextlib.suppress(OSError):
        os.fchmod(fd, mode)  # after creation: the umask must not narrow a kept mode
    return fd, tmp


def discard(tmp: str) -> None:
    """Remove a temp file (it may already be gone)."""
    _LIVE.discard(tmp)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def _rename(tmp: str, path: str) -> None:
    os.replace(tmp, path)
    _LIVE.discard(tmp)


@dataclass
class Transaction:
    """Renames staged by writers, done together at the end of a run (see ``transaction``)."""

    staged: list[tuple[str, str]] = field(default_factory=list)  # (temp, final)
    then: list[Callable[[], None]] = field(default_factory=list)  # clean-ups that follow the renames
    pid: int = field(default_factory=os.getpid)  # a forked worker does not publish into its parent's run

    def stage(self, tmp: str, path: str) -> None:
        for k, (old_tmp, old_path) in enumerate(self.staged):
            if old_path == path:  # written twice in one run: the later content wins
                discard(old_tmp)
                self.staged[k] = (tmp, path)
                return
        self.staged.append((tmp, path))

    def pending(self, path: str) -> str | None:
        """The staged temp file that will become ``path`` (so a later step reads what it will be)."""
        return next((t for t, p in reversed(self.staged) if p == path), None)

    def commit(self) -> None:
        staged, self.staged = self.staged, []
        for k, (tmp, path) in enumerate(staged):
            try:
                _rename(tmp, path)
            except BaseException:
                for rest, _ in staged[k:]:
                    discard(rest)
                raise
        then, self.then = self.then, []
        for step in then:
            step()

    def abort(self) -> None:
        staged, self.staged = self.staged, []
        self.then = []
        for tmp, _ in staged:
            discard(tmp)


_CURRENT: list[Transaction] = []


def _active() -> Transaction | None:
    return _CURRENT[0] if _CURRENT and _CURRENT[0].pid == os.getpid() else None


@contextlib.contextmanager
def transaction() -> Iterator[Transaction]:
    """Publish every output written inside together when the block succeeds, none when it fails.

    Nested blocks join the outermost one.
    """
    running = _active()
    if running is not None:
        yield running
        return
    _CURRENT.clear()  # one inherited from a parent process (fork) is not ours
    txn = Transaction()
    _CURRENT.append(txn)
    try:
        yield txn
    except BaseException:
        txn.abort()
        raise
    finally:
        _CURRENT.remove(txn)
    txn.commit()


def publish(tmp: str, path: str) -> None:
    """Rename ``tmp`` to ``path`` now, or at the end of the running transaction."""
    txn = _active()
    if txn is not None:
        txn.stage(tmp, path)
    else:
        try:
            _rename(tmp, path)
        except BaseException:
            discard(tmp)
            raise


def readable_path(path: str) -> str:
    """Where the current content of ``path`` is: its staged temp file inside a transaction, else itself."""
    txn = _active()
    return (txn.pending(path) or path) if txn is not None else path


def after_publish(step: Callable[[], None]) -> None:
    """Run ``step`` (say, removing an older output's leftovers) once the outputs are published."""
    txn = _active()
    if txn is not None:
        txn.then.append(step)
    else:
        step()


def cleanup_live_temps() -> None:
    """Remove every temp file this process still holds (on exit, and after a signal)."""
    for tmp in list(_LIVE):
        discard(tmp)


atexit.register(cleanup_live_temps)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``path`` whole through a temp file (published with the running transaction)."""
    fd, tmp = temp_for(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        discard(tmp)
        raise OSError(exc.errno, exc.strerror, path) from None
    except BaseException:
        discard(tmp)
        raise
    publish(tmp, path)


# --- inputs and outputs must differ -----------------------------------------------------------


def _identity(path: str) -> tuple[str, object]:
    """What ``path`` is: the file it names (device, inode) when it exists, else its resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return ("inode", (st.st_dev, st.st_ino))
    return ("path", os.path.realpath(path))


def check_outputs(inputs: Iterable[str | None], outputs: Iterable[tuple[str, str | None]]) -> None:
    """Refuse (exit 2, before anything is read) an output that is an input or another output.

    ``outputs`` are (option, path) pairs such as ("-o", "out.jsonl"); "-" (stdout/stdin) and None
    are skipped. Paths are compared as files, so symlinks, hard links and ``..`` are seen through.
    """
    outputs = list(outputs)
    to_stdout = [option for option, path in outputs if path == "-"]
    if len(to_stdout) > 1:
        raise VlmdataError(f"{' and '.join(to_stdout)} both name stdout (-); only one output can go there")
    seen: dict[tuple[str, object], str] = {}
    for path in inputs:
        if path and path != "-":
            seen.setdefault(_identity(path), f"the input {path}")
    for option, path in outputs:
        if not path or path == "-":
            continue
        key = _identity(path)
        other = seen.get(key)
        if other is None and key[0] == "inode":
            other = seen.get(("path", os.path.realpath(path)))
        if other is not None:
            what = "overwrite the input" if other.startswith("the input") else "write one file twice"
            raise VlmdataError(
                f"{path} ({option}) is the same file as {other}: the run would {what}; choose another path"
            )
        seen[key] = f"{path} ({option})"
        seen.setdefault(("path", os.path.realpath(path)), f"{path} ({option})")
