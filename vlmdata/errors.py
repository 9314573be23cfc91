"""Errors that reach users: each one says where, what is wrong and how to fix it."""

from __future__ import annotations

from typing import Any


class VlmdataError(Exception):
    """A problem with how vlmdata was called or with a whole file (exit status 2)."""


class RecordError(Exception):
    """One record cannot be read or written; the record is rejected, the run goes on.

    ``where`` is filled in by the pipeline from the record's origin, so codecs only say what.
    """

    def __init__(self, what: str, fix: str = "", *, where: str = "", raw: Any = None) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.where = where
        self.raw = raw

    def __str__(self) -> str:
        msg = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            msg += f"; {self.fix}"
        return msg
