"""Codecs (one module per format), grounding syntaxes, box frames, streaming I/O, registry.

``vlmdata.convert`` is both this package and the conversion function: calling the module runs
``vlmdata.convert.pipeline.convert`` so that ``vlmdata.convert(src, dst, to=...)`` and
``import vlmdata.convert.frames`` both work.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from vlmdata.convert.pipeline import convert

        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
