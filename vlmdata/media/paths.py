"""Where a media path points, the way the consumer of each format resolves it (docs/consumers.md#media-paths).

A path must stay under its root: ``../`` escapes and symlinks that leave the root are errors
unless the caller allows them. URLs and data URIs are passed through untouched.
"""

from __future__ import annotations

import os
import stat

from vlmdata.errors import RecordError, VlmdataError

CACHE_LIMIT = 8_192  # entries per per-path cache; cleared when full
REMOTE_PREFIXES = ("http://", "https://", "s3://", "data:", "oss://", "gs://")
_SEP_DOT = os.sep + "."  # "/./", "/../", "/.." or a dot-file: not known to be normalised
_SEP_SEP = os.sep + os.sep


def is_url(path: str) -> bool:
    """An http(s) URL: what a loader must fetch (the consumers that cannot fetch refuse it, VD109)."""
    return path.startswith(("http://", "https://"))


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES) or len(path) > 2000  # >2000 chars: base64 (docs/consumers.md#media-paths)


def check_path_text(path: str) -> None:
    """Reject a media path no file system (or URL) can hold: a NUL byte or a lone surrogate
    (``"\\ud800"`` in JSON), which the OS calls and every JSON writer refuse."""
    if "\x00" in path:
        raise RecordError(f"media path {path!r} contains a NUL byte", "fix the path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(
            f"media path {path!r} contains a lone surrogate (an unpaired \\ud800-\\udfff escape)", "fix the path"
        ) from None


class PathResolver:
    """Resolves media paths against a root and checks containment, caching per path.

    ``explicit_root``: the user named the root, so absolute paths must lie under it too.
    """

    def __init__(self, root: str, *, explicit_root: bool, allow_outside: bool = False) -> None:
        try:  # a root from a meta file or the command line may hold a NUL or a lone surrogate
            self.root = os.path.abspath(root)
            self.real_root = os.path.realpath(self.root)
        except (ValueError, UnicodeError) as exc:
            raise VlmdataError(f"media root {root!r} is not a usable path ({exc}); fix the root") from None
        self.explicit_root = explicit_root
        self.allow_outside = allow_outside
        self._cache: dict[str, str] = {}
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._real_dirs: dict[str, str] = {}

    def resolve(self, path: str) -> str:
        """Absolute path of ``path`` (URLs unchanged); raises RecordError when it escapes."""
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        check_path_text(path)
        if is_remote(path):
            self._cache[path] = path
            return path
        joined = os.path.normpath(os.path.join(self.root, path))
        if not self.allow_outside:
            self._check_inside(path, joined)
        if path.endswith(("/", os.sep)):
            joined += os.sep  # a frame folder (InternVL video): the trailing slash is meaningful
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()  # unique paths (the usual case in real data) must not grow memory with rows
        self._cache[path] = joined
        return joined

    def _realpath(self, joined: str) -> str:
        """``os.path.realpath(joined)`` for a normalised absolute path, with the folder's real path
        cached: one lstat per file instead of one per path component (realpath is pure Python)."""
        head, tail = os.path.split(joined)
        real_head = self._real_dirs.get(head)
        if real_head is None:
            if len(self._real_dirs) >= CACHE_LIMIT:
                self._real_dirs.clear()
            real_head = self._real_dirs[head] = os.path.realpath(head)
        try:
            if stat.S_ISLNK(os.lstat(joined).st_mode):
                return os.path.realpath(joined)
        except OSError:
            pass  # a missing file resolves like realpath(strict=False) does: as named
        return os.path.join(real_head, tail)

    def _check_inside(self, path: str, joined: str) -> None:
        if os.path.isabs(path) and not self.explicit_root:
            return  # absolute paths are the ms-swift norm; no root was named to hold them
        if not _under(joined, self.root):
            raise RecordError(
                f"media path {path!r} resolves to {joined}, outside the media root {self.root}",
                "fix the path, pass the right --root, or --allow-outside-root",
            )
        real = self._realpath(joined)
        if real != joined and not _under(real, self.real_root):
            raise RecordError(
                f"media path {path!r} is a symlink to {real}, outside the media root {self.root}",
                "copy the file under the root or pass --allow-outside-root",
            )

    def relative(self, resolved: str) -> str:
        """``resolved`` written relative to the root when it lies under it, else as is."""
        prefix = self._prefix
        if (
            resolved.startswith(prefix)
            and _SEP_DOT not in resolved
            and _SEP_SEP not in resolved
            and not resolved.endswith(os.sep)
            and (os.altsep is None or os.altsep not in resolved)
            and not is_remote(resolved)
        ):
            # normalised and under the root: what os.path.relpath would return, without its
            # two abspath calls (this is once per media path per record)
            return resolved[len(prefix) :]
        if is_remote(resolved) or not os.path.isabs(resolved):
            return resolved
        if _under(resolved, self.root):
            return os.path.relpath(resolved, self.root)
        return resolved


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
