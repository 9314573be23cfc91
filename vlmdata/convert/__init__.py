"""Codecs (one module per format), grounding syntaxes, box frames, streaming I/O, registry.

``vlmdata.convert`` is both this package and the conversion function: calling the module runs
``vlmdata.convert.pipeline.convert`` so that ``vlmdata.convert(src, dst, to=...)`` and
``import vlmdata.convert.frames`` both work. ``vlmdata.convert([...], "out/", to=..., engine="ray")``
runs the Ray engine (``vlmdata/tools/ray_engine.py``, imported only then).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, engine: str = "local", ray_address: str | None = None, **kwargs: Any) -> Any:
        if engine == "ray":  # several inputs, part files in a folder, Ray tasks (vlmdata[ray])
            from vlmdata.tools.ray_engine import convert_ray

            return convert_ray(*args, ray_address=ray_address, **kwargs)
        if engine != "local":
            from vlmdata.errors import VlmdataError

            raise VlmdataError(f"unknown engine {engine!r}; choose local or ray")
        from vlmdata.convert.pipeline import convert

        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
