"""Where a media path points, the way the consumer of each format resolves it (FORMATS.md 7.4 #23).

A path must stay under its root: ``../`` escapes and symlinks that leave the root are errors
unless the caller allows them. URLs and data URIs are passed through untouched.
"""

from __future__ import annotations

import os

from vlmdata.errors import RecordError

REMOTE_PREFIXES = ("http://", "https://", "s3://", "data:", "oss://", "gs://")


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES) or len(path) > 2000  # >2000 chars: base64 (1.4)


class PathResolver:
    """Resolves media paths against a root and checks containment, caching per path.

    ``explicit_root``: the user named the root, so absolute paths must lie under it too.
    """

    def __init__(self, root: str, *, explicit_root: bool, allow_outside: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(self.root)
        self.explicit_root = explicit_root
        self.allow_outside = allow_outside
        self._cache: dict[str, str] = {}

    def resolve(self, path: str) -> str:
        """Absolute path of ``path`` (URLs unchanged); raises RecordError when it escapes."""
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        if is_remote(path):
            self._cache[path] = path
            return path
        joined = os.path.normpath(os.path.join(self.root, path))
        if not self.allow_outside:
            self._check_inside(path, joined)
        self._cache[path] = joined
        return joined

    def _check_inside(self, path: str, joined: str) -> None:
        if os.path.isabs(path) and not self.explicit_root:
            return  # absolute paths are the ms-swift norm; no root was named to hold them
        if not _under(joined, self.root):
            raise RecordError(
                f"media path {path!r} resolves to {joined}, outside the media root {self.root}",
                "fix the path, pass the right --root, or --allow-outside-root",
            )
        real = os.path.realpath(joined)
        if real != joined and not _under(real, self.real_root):
            raise RecordError(
                f"media path {path!r} is a symlink to {real}, outside the media root {self.root}",
                "copy the file under the root or pass --allow-outside-root",
            )

    def relative(self, resolved: str) -> str:
        """``resolved`` written relative to the root when it lies under it, else as is."""
        if is_remote(resolved) or not os.path.isabs(resolved):
            return resolved
        if _under(resolved, self.root):
            return os.path.relpath(resolved, self.root)
        return resolved


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
