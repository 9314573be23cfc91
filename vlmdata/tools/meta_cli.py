"""``vlmdata meta`` and ``vlmdata split`` (plain click commands; the main group adds META_COMMANDS)."""

from __future__ import annotations

import shlex
import sys

import click
from rich.console import Console
from rich.markup import escape

from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import json_text
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.outputs import check_outputs

err = Console(stderr=True, highlight=False, soft_wrap=True)
SHOWN_REJECTIONS = 20


def _fail(exc: BaseException) -> None:
    if isinstance(exc, OSError):
        err.print(f"[red]error:[/] {escape(str(exc.filename or ''))}: {escape(exc.strerror or str(exc))}")
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}")
    sys.exit(2)


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", help="InternVL meta JSON to write or merge into (e.g. meta.json).")
@click.option("--root", help="InternVL: the media folder of these annotations (written absolute).")
@click.option("--repeat-time", type=float, default=1, show_default=True, help="InternVL repeat_time (> 1: an int).")
@click.option("--max-dynamic-patch", type=click.IntRange(1), help="InternVL per-dataset tile cap.")
@click.option("--data-augment", is_flag=True, help="InternVL data_augment (JPEG re-compression only).")
@click.option("--name", "names", multiple=True, help="Entry name, once per file in order (default: file stems).")
@click.option("--force", is_flag=True, help="Replace existing entries with the same names.")
@click.option("--dataset-info", metavar="PATH", help="LLaMA-Factory: add/update sharegpt entries in this file.")
@click.option("--swift", is_flag=True, help="Print the ms-swift --dataset arguments for these files.")
@click.option("--val", "val_files", multiple=True, help="With --swift: a validation file (--val_dataset).")
def meta(
    files: tuple[str, ...],
    output: str | None,
    root: str | None,
    repeat_time: float,
    max_dynamic_patch: int | None,
    data_augment: bool,
    names: tuple[str, ...],
    force: bool,
    dataset_info: str | None,
    swift: bool,
    val_files: tuple[str, ...],
) -> None:
    """Write the file that tells a trainer which datasets to read.

    \b
    vlmdata meta out/*.jsonl --root data/images -o meta.json --repeat-time 2 --max-dynamic-patch 6
    vlmdata meta sharegpt/*.json --dataset-info data/dataset_info.json
    vlmdata meta train.jsonl --swift --val val.jsonl
    """
    from vlmdata.tools import meta as tools

    modes = sum(bool(x) for x in (output, dataset_info, swift))
    try:
        if modes != 1:
            raise VlmdataError("choose one of -o META.json (InternVL), --dataset-info PATH (LLaMA-Factory) or --swift")
        if val_files and not swift:
            raise VlmdataError("--val names ms-swift validation files; use it with --swift")
        check_outputs([*files, *val_files], [("-o", output), ("--dataset-info", dataset_info)])
        if output:
            rt = int(repeat_time) if float(repeat_time).is_integer() else repeat_time
            result = tools.build_internvl_meta(
                list(files),
                output,
                root or "",
                repeat_time=rt,
                max_dynamic_patch=max_dynamic_patch,
                data_augment=data_augment,
                names=list(names) or None,
                overwrite=force,
            )
            for w in result.warnings:
                err.print(f"[yellow]warning:[/] {escape(w)}")
            for name, annotation, length in result.entries:
                err.print(f"{escape(name)}: {escape(annotation)} ({length} records, repeat_time {rt})")
            err.print(
                f"[green]{escape(output)}: {len(result.entries)} entr{'y' if len(result.entries) == 1 else 'ies'} "
                f"written, {result.kept} other kept[/]"
            )
            err.print(f"train with: --meta_path {escape(shlex.quote(output))}")
        elif dataset_info:
            if root or max_dynamic_patch or data_augment or force or repeat_time != 1:
                raise VlmdataError("--root/--repeat-time/--max-dynamic-patch/--data-augment/--force are InternVL's")
            written = tools.build_dataset_info(list(files), dataset_info, names=list(names) or None)
            for name, entry in written:
                err.print(f"{escape(name)}: {escape(entry['file_name'])} (columns {escape(str(entry['columns']))})")
            err.print(
                f"[green]{escape(dataset_info)}: {len(written)} entr{'y' if len(written) == 1 else 'ies'} written[/]"
            )
            err.print(f"train with: dataset: {','.join(n for n, _ in written)}")
        else:
            args, hints = tools.swift_args(list(files), list(val_files))
            for h in hints:
                err.print(f"[yellow]note:[/] {escape(h)}")
            click.echo(" ".join(shlex.quote(a) for a in args))
    except (VlmdataError, RecordError, OSError) as exc:
        _fail(exc)


@click.command()
@click.argument("src")
@click.option("-o", "--output", "out_dir", required=True, help="Folder for train.<ext> and val.<ext>.")
@click.option("--val", type=float, default=0.02, show_default=True, help="Fraction of records for validation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (the same seed, the same split).")
@click.option("--to", "to", type=click.Choice(list(FORMATS)), help="Output format (default: the input's).")
@click.option("--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected).")
@click.option("--root", help="Media root (default: the format's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def split(
    src: str,
    out_dir: str,
    val: float,
    seed: int,
    to: str | None,
    from_format: str | None,
    root: str | None,
    as_json: bool,
) -> None:
    """Split SRC into train and val files, deterministically for a seed; exit 1 when records were rejected.

    \b
    vlmdata split in.jsonl --val 0.02 --seed 0 -o data/
    """
    from vlmdata.tools.split import split as run_split

    try:
        report = run_split(src, out_dir, val=val, seed=seed, to=to, root=root, from_format=from_format)
    except (VlmdataError, RecordError, OSError) as exc:
        _fail(exc)
        return
    if as_json:

        click.echo(json_text(report.to_dict()))
    for r in report.rejections[:SHOWN_REJECTIONS]:
        err.print(f"[red]rejected[/] {escape(r.message())}")
    if report.rejected > SHOWN_REJECTIONS:
        err.print(f"... and {report.rejected - SHOWN_REJECTIONS} more")
    colour = "green" if report.ok else "yellow"
    err.print(
        f"[{colour}]{escape(report.source)} ({report.input_format}) -> {escape(report.train_path)} + "
        f"{escape(report.val_path)} ({report.output_format}): {report.records_in} in = {report.train} train + "
        f"{report.val} val + {report.rejected} rejected[/]"
    )
    sys.exit(0 if report.ok else 1)


META_COMMANDS = [meta, split]
