"""``vlmdata train`` and ``vlmdata export`` (click commands; the main group adds TRAIN_COMMANDS).

The train options are generated from ``TrainConfig``'s fields, so the command line and the
config file cannot drift apart: ``--batch-size 4`` and ``batch_size: 4`` are the same option, and
an option given on the command line overrides the file. torch/transformers are imported only
when a command runs, so the core install keeps working without the ``train`` extra.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any, Literal

import click
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.markup import escape

from vlmdata.errors import RecordError, VlmdataError
from vlmdata.train.config import TrainConfig, build_config, read_config_file

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

_FLAG_NAMES = {"validate_data": ("--validate", "--no-validate")}
_SPECIAL = {"resume"}


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, multiple) of a field annotation."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _click_type(args[0])
    if origin is list:
        return str, True
    if origin is Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False
    return annotation if annotation in (int, float, str) else str, False


def _options(command: Any) -> Any:
    for name, field in reversed(list(TrainConfig.model_fields.items())):
        if name in _SPECIAL:
            continue
        dashed = "--" + name.replace("_", "-")
        help_text = field.description or ""
        if field.default not in (None, PydanticUndefined, False) and name != "lora_targets":
            help_text += f" [default: {field.default}]"
        if field.annotation is bool:
            on, off = _FLAG_NAMES.get(name, (dashed, "--no-" + name.replace("_", "-")))
            command = click.option(f"{on}/{off}", name, default=None, help=help_text)(command)
            continue
        click_type, multiple = _click_type(field.annotation)
        command = click.option(dashed, name, type=click_type, multiple=multiple, default=None, help=help_text)(command)
    return command


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ()}


def resolve_config(config_file: str | None, values: dict[str, Any]) -> TrainConfig:
    merged = read_config_file(config_file) if config_file else {}
    merged.update({k: list(v) if isinstance(v, tuple) else v for k, v in _given(values).items()})
    return build_config(merged, config_file or "options")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", metavar="FILE", help="YAML or JSON file with these options (CLI wins).")
@click.option(
    "--resume", "resume_last", is_flag=True, default=None, help="Resume from the run folder's last checkpoint."
)
@click.option("--resume-from", metavar="CHECKPOINT", help="Resume from this checkpoint folder.")
@_options
def train(config_file: str | None, resume_last: bool | None, resume_from: str | None, **values: Any) -> None:
    """Fine-tune InternVL (-hf), Qwen2/2.5/3-VL or LLaVA on any supported data format.

    The data is validated first, rendered with the model's processor (grounding in the model's
    syntax and frame), labels cover assistant tokens only. Runs under accelerate launch/torchrun.
    """
    if resume_from:
        values["resume"] = resume_from
    elif resume_last:
        values["resume"] = True
    try:
        config = resolve_config(config_file, values)
        from vlmdata.train.runner import train as run_train

        run_train(config, say=lambda msg: out.print(escape(msg)))
    except (VlmdataError, RecordError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run")
@click.option("-o", "--output", required=True, help="Folder for the standalone model (new or empty).")
@click.option("--merge-lora", is_flag=True, help="Merge the run's LoRA adapter into the base model's weights.")
@click.option("--checkpoint", help="Export this checkpoint folder instead of the run's final model.")
def export(run: str, output: str, merge_lora: bool, checkpoint: str | None) -> None:
    """Save a run's model (LoRA merged) so that AutoModelForImageTextToText loads it."""
    try:
        from vlmdata.train.export import export as run_export

        path = run_export(run, output, merge_lora=merge_lora, checkpoint=checkpoint)
    except (VlmdataError, RecordError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    out.print(f"exported to {escape(path)}")


TRAIN_COMMANDS = (train, export)
