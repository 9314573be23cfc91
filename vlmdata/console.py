"""How every command talks to people and ends: plain-text messages, one exit status per outcome.

Exit statuses (the same for every command):

* 0 success; 1 some records rejected (or error findings); 2 a usage error or an unreadable file;
* 70 an internal error, that is a bug in vlmdata: one line on stderr, the traceback in a log file
  (or on stderr with ``--debug`` / ``VLMDATA_DEBUG=1``);
* 130 Ctrl-C, 128+N for signal N (143 SIGTERM, 129 SIGHUP): outputs are left as they were and the
  run's temp files are removed first; 141 when the reader of stdout went away (``| head``).

Messages go through consoles with rich *markup off*: a record's text such as ``[x1, y1, x2, y2]``
or ``[red]`` is printed as it is, never taken for a style.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

from vlmdata.errors import VlmdataError

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + 13

err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def say(*parts: str | tuple[str, str], console: Console | None = None) -> None:
    """Print a line made of plain strings and (text, style) pairs; nothing in them is markup."""
    (console or err).print(Text.assemble(*parts))


def error(message: str) -> None:
    say(("error:", "red"), " ", message)


def os_error_message(exc: OSError) -> str:
    """'FILE: what went wrong' for an OSError, naming the file even for a full disk."""
    name = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what += "; free some space or write elsewhere (nothing was replaced)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what += "; check the folder's permissions or write elsewhere"
    return f"{name}: {what}" if name else what


def printable_streams() -> None:
    """Let stdout and stderr write any text: a lone surrogate quoted from a record (a path, a role)
    is printed escaped (\\ud800) instead of failing the whole report with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived (what timeout, Slurm and Kubernetes send): unwind like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into an exception, so the writers' clean-up runs as on Ctrl-C."""
    wanted = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    try:
        previous = {s: signal.signal(s, _raise_terminated) for s in wanted}
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def debug_enabled() -> bool:
    return os.environ.get("VLMDATA_DEBUG", "") not in ("", "0")


def crash_log(exc: BaseException) -> str | None:
    """Write the traceback to a log file; returns its path (None when no folder is writable)."""
    folder = os.environ.get("VLMDATA_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "vlmdata")
    path = os.path.join(folder, f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"vlmdata {' '.join(sys.argv[1:])}\n\n")
            f.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def quiet_stdout() -> None:
    """The reader of stdout is gone: point stdout at /dev/null so the exit flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def exit_for(exc: BaseException) -> int:
    """Report ``exc`` (escaped from a command) in one or two plain lines; returns the exit status."""
    from vlmdata.outputs import cleanup_live_temps

    cleanup_live_temps()
    if isinstance(exc, KeyboardInterrupt):
        error("interrupted; no output was replaced")
        return EXIT_INTERRUPTED
    if isinstance(exc, Terminated):
        error(f"stopped by signal {signal.Signals(exc.signum).name}; no output was replaced")
        return 128 + exc.signum
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE):
        quiet_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(exc, VlmdataError):
        error(str(exc))
        return EXIT_USAGE
    if isinstance(exc, OSError):
        error(os_error_message(exc))
        return EXIT_USAGE
    if isinstance(exc, MemoryError):
        error("out of memory; run on a machine with more memory or split the input")
        return EXIT_USAGE
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    log = crash_log(exc)
    where = f"; the traceback is in {log}" if log else ""
    error(
        f"internal error ({type(exc).__name__}: {exc}): this is a bug in vlmdata, not in your data{where}. "
        "Please report it with that file (or rerun with --debug)"
    )
    return EXIT_BUG
