"""Shape pieces shared by several formats' record schemas."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, TypeAdapter

# Unknown keys are kept (extra="allow") so that readers can carry them in Sample.extra.
OPEN = ConfigDict(extra="allow")

Number = int | float
BoxValues = list[Number]
MediaPath = str | dict[str, Any]  # a path, or an HF Image struct {bytes, path}


def adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)
