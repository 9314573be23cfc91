"""The on-disk cache of per-file results: one SQLite file, one table per kind of result (the header
probes of ``media.inspect``, the visual hashes of ``media.phash``).

A row is keyed by the file's absolute path and is current while the file's (size, mtime_ns) are
unchanged. The file lives in ``cache_dir``, else ``$VLMDATA_CACHE_DIR``, else
``$XDG_CACHE_HOME/vlmdata``, else ``~/.cache/vlmdata``, and is named
``probe-v{PROBE_VERSION}.sqlite3``; ``VLMDATA_CACHE_DIR=off`` (or ``cache_dir="off"``) switches
caching off. SQLite's WAL lets two processes share it (on one host: keep it on a local disk, not
NFS). Rows not used for ``PRUNE_DAYS`` days are deleted when a cache is closed, at most once a day
per table. Any SQLite failure (read-only folder, a locked or corrupt file) disables the cache for
the run, quietly (``error`` says why); the work goes on uncached.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from vlmdata.media.paths import CACHE_LIMIT, is_remote

PROBE_VERSION = 1  # bump when what media.inspect's probe finds changes: old cache files are then ignored
PRUNE_DAYS = 90
OFF_VALUES = frozenset(("", "0", "off", "none", "false", "no", "disable", "disabled"))
BATCH = 500  # host parameters per SELECT (SQLite's old limit is 999)
V = TypeVar("V")
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);\n"


def cache_location(cache_dir: str | None = None) -> str | None:
    """The SQLite file the cache lives in, or None when caching is off."""
    if cache_dir is None:
        cache_dir = os.environ.get("VLMDATA_CACHE_DIR")
        if cache_dir is None:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            cache_dir = os.path.join(base, "vlmdata")
    if cache_dir.strip().lower() in OFF_VALUES:
        return None
    return os.path.join(os.path.abspath(os.path.expanduser(cache_dir)), f"probe-v{PROBE_VERSION}.sqlite3")


def today() -> int:
    return int(time.time() // 86400)


class FileCache:
    """(path, size, mtime_ns) -> the values of ``COLUMNS`` in table ``TABLE`` of the cache file.

    A subclass names its table, its value columns and their SQL types; its rows have the key
    columns ``path, size, mtime_ns, day`` besides. ``file=None`` is a cache that is off."""

    NAME = "cache"  # in the error message
    TABLE = ""
    COLUMNS = ""  # "name TYPE, ..." of the stored values, in order

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.error: str | None = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._day = today()
        self._names = ", ".join(c.split()[0] for c in self.COLUMNS.split(","))
        if file is None:
            return
        try:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            db = sqlite3.connect(file, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 30000")
            # WAL: readers never block the writer; where it is refused (file systems without shared
            # memory, some network mounts) the rollback journal stays, which is slower but correct
            with contextlib.suppress(sqlite3.OperationalError):
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(
                f"CREATE TABLE IF NOT EXISTS {self.TABLE} (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                f"mtime_ns INTEGER NOT NULL, day INTEGER NOT NULL DEFAULT 0, {self.COLUMNS}) WITHOUT ROWID;\n" + _META
            )
            self._db = db
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def _fail(self, exc: Exception) -> None:
        self.error = f"{self.NAME} {self.file} disabled: {exc}"
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One write transaction (the caller holds the lock and handles sqlite3.Error)."""
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def rows(self, keyed: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, list[Any]]]:
        """(path, size, values) of each (path, size, mtime_ns) whose row is current; a row used
        today counts as used (it is not pruned)."""
        if self._db is None or not keyed:
            return []
        want = {p: (s, m) for p, s, m in keyed}
        paths = list(want)
        out: list[tuple[str, int, list[Any]]] = []
        touch: list[tuple[int, str]] = []
        with self._lock:
            try:
                for i in range(0, len(paths), BATCH):
                    part = paths[i : i + BATCH]
                    found = self._db.execute(
                        f"SELECT path, size, mtime_ns, day, {self._names} FROM {self.TABLE} "
                        f"WHERE path IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchall()
                    for path, size, mtime, day, *values in found:
                        if want[path] == (size, mtime):
                            out.append((path, size, values))
                            if day < self._day:
                                touch.append((self._day, path))
                if touch:
                    self._write(f"UPDATE {self.TABLE} SET day = ? WHERE path = ?", touch)
            except sqlite3.Error as exc:
                self._fail(exc)
        return out

    def put_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Store (path, size, mtime_ns, *values) rows, replacing older ones."""
        if self._db is None:
            return
        data = [(p, s, m, self._day, *values) for p, s, m, *values in rows]
        if not data:
            return
        marks = ",".join("?" * len(data[0]))
        with self._lock:
            try:
                self._write(
                    f"INSERT OR REPLACE INTO {self.TABLE} (path, size, mtime_ns, day, {self._names}) VALUES ({marks})",
                    data,
                )
            except sqlite3.Error as exc:
                self._fail(exc)

    def close(self) -> None:
        """Close, first deleting the rows not used for PRUNE_DAYS days (at most once a day per table)."""
        if self._db is None:
            return
        key = f"pruned:{self.TABLE}"
        with self._lock:
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                if row is None or row[0] < self._day:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(f"DELETE FROM {self.TABLE} WHERE day < ?", (self._day - PRUNE_DAYS,))
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, self._day))
                    self._db.execute("COMMIT")
            except sqlite3.Error:
                pass
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


class Memo(Generic[V]):
    """This run's results by path as the caller wrote it, in memory, in front of the file cache.
    Bounded: cleared when it would hold more than ``limit`` paths (memory stays flat on unique paths)."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._seen: dict[str, V] = {}

    def split(self, paths: Iterable[str], remote: V) -> tuple[dict[str, V | None], list[str]]:
        """Each distinct path once, in order: a remembered path with its result, a remote one with
        ``remote`` (nothing is fetched), any other with None, listed in ``todo`` too."""
        out: dict[str, V | None] = {}
        todo: list[str] = []
        for p in paths:
            if p in out:
                continue
            hit = self._seen.get(p)
            if hit is not None:
                out[p] = hit
            elif is_remote(p):
                out[p] = remote
            else:
                out[p] = None
                todo.append(p)
        return out, todo

    def remember(self, out: dict[str, V]) -> None:
        if len(self._seen) + len(out) > self.limit:
            self._seen.clear()
        self._seen.update(out)
