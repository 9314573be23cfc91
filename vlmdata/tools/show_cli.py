"""``vlmdata stats`` and ``vlmdata show``: click commands, added to the main group by ``vlmdata.cli``.

Exit status: 0 done, 2 bad input (missing file, index out of range, missing image for a PNG...).
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from vlmdata.convert.cli_options import engine_options
from vlmdata.convert.qwen import FRAME_MODELS
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import json_text
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.outputs import check_outputs

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(exc: BaseException) -> None:
    msg = f"{exc.filename or ''}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    err.print(f"[red]error:[/] {escape(msg)}")
    sys.exit(2)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--root", help="Media root (default: the format's own; a meta entry's root wins).")
@click.option("--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON on stdout.")
@click.option("--html", "html_out", metavar="FILE", help="Also write one self-contained page of plots (inline SVG).")
@click.option("--max-length", type=click.IntRange(1), help="--html: draw this token limit on the token plot.")
@click.option("--model", default="qwen2.5-vl", show_default=True, help="--html: model whose image tokens are counted.")
@engine_options
def stats(
    paths: tuple[str, ...],
    root: str | None,
    from_format: str | None,
    as_json: bool,
    html_out: str | None,
    max_length: int | None,
    model: str,
    engine: str,
    ray_address: str | None,
) -> None:
    """Samples, turns, images, image sizes, boxes and text lengths of data files, folders or meta files.

    Image sizes come from file headers (cached); boxes are measured in pixels of the original image.

    \b
    vlmdata stats data/
    vlmdata stats train.jsonl --root images/ --json
    vlmdata stats meta.json --html stats.html --max-length 4096
    """
    from vlmdata.tools.stats import compute_stats, render_stats

    try:
        check_outputs(paths, [("--html", html_out)])
        if html_out:
            from vlmdata.media.tokens import check_model
            from vlmdata.tools.stats_html import save_stats_html

            check_model(model)
            shown = save_stats_html(list(paths), html_out, root=root, max_length=max_length, model=model)
            err.print(f"{len(shown)} dataset(s) -> {escape(html_out)}")
        data = compute_stats(
            list(paths), root=root, from_format=from_format, engine=engine, ray_address=ray_address
        ).to_dict()
    except (VlmdataError, RecordError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json_text(data))
    else:
        render_stats(data, Console(highlight=False, width=max(120, Console().width)))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="A .png file (one sample) or a .html file (a gallery).")
@click.option("--index", type=int, help="The record to show (0-based over the input, in order).")
@click.option("--sample", "sample_n", type=click.IntRange(1), help="Gallery of N records chosen at random.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for --sample.")
@click.option("--first", "first_n", type=click.IntRange(1), help="Gallery of the first N records (default 20).")
@click.option("--root", help="Media root (default: the format's own; a meta entry's root wins).")
@click.option("--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected).")
@click.option(
    "--qwen-model",
    type=click.Choice(list(FRAME_MODELS)),
    help="Box frame of Qwen/LLaMA-Factory input: qwen2.5-vl reads pixels of the smart-resized image "
    "(default: 0-1000, qwen2-vl/qwen3-vl).",
)
@click.option(
    "--max-pixels", type=click.IntRange(min=1), help="Qwen2.5-VL smart_resize max_pixels of the training run."
)
@click.option("--min-pixels", type=click.IntRange(min=1), help="Qwen2.5-VL smart_resize min_pixels.")
@click.option("--image-max-pixels", type=click.IntRange(min=1), help="LLaMA-Factory's image_max_pixels shrink.")
def show(
    paths: tuple[str, ...],
    output: str,
    index: int | None,
    sample_n: int | None,
    seed: int,
    first_n: int | None,
    root: str | None,
    from_format: str | None,
    **frame_options: Any,
) -> None:
    """Draw a sample's boxes and refs on its images (after converting them to pixels).

    A .png output holds one record (--index, default 0); a sample with several images has them
    side by side in that file. A .html output is a self-contained gallery of --sample N records
    (random, --seed), --first N records, or the --index record, each next to its conversation.

    \b
    vlmdata show data.jsonl --index 12 -o sample.png
    vlmdata show data.jsonl --sample 50 -o report.html
    """
    from vlmdata.tools.show import pick_first, pick_index, pick_sample, save_gallery, save_png

    frames = {k: v for k, v in frame_options.items() if v is not None}  # boxes drawn as the model sees them
    lower = output.lower()
    chosen = sum(x is not None for x in (index, sample_n, first_n))
    try:
        if chosen > 1:
            raise VlmdataError("give one of --index, --sample, --first")
        check_outputs(paths, [("-o", output)])
        if lower.endswith(".png"):
            if sample_n is not None or first_n is not None:
                raise VlmdataError("a PNG holds one sample: use --index N (or write a .html gallery)")
            item = pick_index(list(paths), index or 0, root, from_format, frames)
            assert item.sample is not None
            result = save_png(item.sample, output)
            for note in result.notes:
                err.print(f"[yellow]note:[/] {escape(note)}")
            err.print(f"{escape(item.where())} -> {escape(output)}")
        elif lower.endswith((".html", ".htm")):
            if index is not None:
                items = [(index, pick_index(list(paths), index, root, from_format, frames))]
            elif sample_n is not None:
                items = pick_sample(list(paths), sample_n, seed, root, from_format, frames)
            else:
                items = pick_first(list(paths), first_n or 20, root, from_format, frames)
            if not items:
                raise VlmdataError(f"{', '.join(paths)}: no records to show")
            save_gallery(items, output, title=f"vlmdata show {' '.join(paths)}")
            err.print(f"{len(items)} sample(s) -> {escape(output)}")
        else:
            raise VlmdataError(f"{output}: the output must be a .png (one sample) or a .html (gallery) file")
    except (VlmdataError, RecordError, OSError) as exc:
        _fail(exc)


SHOW_COMMANDS = [stats, show]
