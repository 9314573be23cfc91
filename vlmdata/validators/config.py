"""``[tool.vlmdata]`` in the dataset repo's pyproject.toml: defaults for `vlmdata validate`.

Keys: select, ignore (lists of code prefixes), target, model, max-length, root, from. The command
line wins over the file. The nearest pyproject.toml above the first checked path is used.
"""

from __future__ import annotations

import os
from typing import Any

import tomllib

from vlmdata.errors import VlmdataError

KEYS = {"select", "ignore", "target", "model", "max-length", "root", "from"}


def find_pyproject(start: str | None = None) -> str | None:
    folder = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load_config(path: str | None) -> dict[str, Any]:
    """The ``[tool.vlmdata]`` table of ``path`` (empty when None or absent); unknown keys are a
    usage error."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise VlmdataError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("tool", {}).get("vlmdata", {})
    unknown = set(table) - KEYS
    if unknown:
        raise VlmdataError(f"{path}: unknown [tool.vlmdata] key(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    if "root" in table and not os.path.isabs(table["root"]):
        table["root"] = os.path.join(os.path.dirname(path), table["root"])
    return table
