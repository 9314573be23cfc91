"""Command-line options generated from the ``Options`` field declarations.

``vlmdata convert`` (and transform/filter for the options they share) get every reading and
writing option from here, so a flag's default, choices and help are written once, in
``vlmdata/convert/codec.py``, and the help says which formats' codecs use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from vlmdata.convert.codec import GENERAL_OPTIONS, OPTION_FIELDS, option_choices, option_flag
from vlmdata.convert.registry import FORMATS


def codec_options(command: Any, names: Iterable[str] | None = None) -> Any:
    """Click options generated from the ``Options`` field declarations (vlmdata/convert/codec.py):
    flag, default, choices and help are written there once; the help ends with the formats whose
    codecs declare the option."""
    wanted = [n for n in OPTION_FIELDS if names is None or n in names]
    for name in reversed(wanted):
        f = OPTION_FIELDS[name]
        meta = f.metadata
        if not meta.get("cli"):
            continue
        flag = option_flag(name)
        help_text = meta["help"] + _users(name)
        if meta.get("off_flag"):
            command = click.option(flag, name, flag_value=False, default=True, help=help_text)(command)
            continue
        if f.default is False:
            command = click.option(flag, name, is_flag=True, default=False, help=help_text)(command)
            continue
        choices = option_choices(name)
        kind: Any = click.Choice([str(c) for c in choices]) if choices else None
        if kind is None and meta.get("min") is not None:
            kind = click.IntRange(min=meta["min"])
        shown = f.default is not None
        command = click.option(
            flag, name, type=kind, default=f.default, show_default=shown, metavar=meta.get("metavar"), help=help_text
        )(command)
    return command


def _users(name: str) -> str:
    """' [reading X; writing Y]': who declares the option, from the codecs' read/write_options."""
    if name in GENERAL_OPTIONS:
        return ""
    reading = [c.name for c in FORMATS.values() if name in c.read_options]
    writing = [c.name for c in FORMATS.values() if name in c.write_options]
    sides = [f"reading {', '.join(reading)}"] if reading else []
    sides += [f"writing {', '.join(writing)}"] if writing else []
    return f" [{'; '.join(sides)}]" if sides else ""


def engine_options(f: Any) -> Any:
    """``--engine`` and ``--ray-address`` (convert, validate, stats)."""
    f = click.option(
        "--ray-address",
        metavar="ADDR",
        help="--engine ray: the cluster (auto, HOST:6379, ray://HOST:10001; default: $RAY_ADDRESS, else a "
        "local instance).",
    )(f)
    return click.option(
        "--engine",
        type=click.Choice(["local", "ray"]),
        default="local",
        show_default=True,
        help="local: this machine; ray: Ray tasks (convert: byte ranges of each input; validate, stats: one "
        "task per data file; pip install 'vlmdata[ray]').",
    )(f)
