"""Videos given as frames: InternVL frame folders (a path ending in ``/``) and frame lists.

InternVL reads a folder of frames when the ``video`` path ends with ``/`` (docs/formats.md#internvl);
ms-swift and Qwen take a list of frame files (docs/formats.md#swift). Converting between the two only needs the
folder listing, never a decode.
"""

from __future__ import annotations

import os
import re

from vlmdata.errors import RecordError

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif")
_DIGITS = re.compile(r"(\d+)")


def is_frame_folder(path: str) -> bool:
    return path.endswith(("/", os.sep))


def _natural_key(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(name)]


def list_frames(folder: str, shown: str) -> list[str]:
    """The frame files of ``folder`` in natural order (frame_2 before frame_10)."""
    try:
        names = [n for n in os.listdir(folder) if n.lower().endswith(FRAME_EXTENSIONS)]
    except OSError:
        raise RecordError(f"frame folder {shown!r} cannot be listed at {folder}", "fix the path or --root") from None
    if not names:
        raise RecordError(f"frame folder {shown!r} holds no image files", "check the folder")
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def common_folder(frames: list[str]) -> str | None:
    """The folder of a frame list when the list is exactly that folder's frames, else None."""
    folder = os.path.dirname(frames[0])
    if any(os.path.dirname(f) != folder for f in frames):
        return None
    try:
        listed = list_frames(folder, folder)
    except RecordError:
        return None
    return folder if listed == list(frames) else None
