"""``vlmdata overlap``: eval samples that leak from training data, images shared inside a mixture.

Exit status: 0 no eval sample leaks, 1 some do, 2 bad input or a missing optional package.
"""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.markup import escape

from vlmdata.convert.report import json_text
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.tools.overlap import DEFAULT_DISTANCE, OverlapReport

err = Console(stderr=True, highlight=False, soft_wrap=True)
SHOWN = 30


@click.command()
@click.option(
    "--train",
    "train",
    multiple=True,
    required=True,
    help="Training data: file, folder, meta.json or dataset_info.json (repeatable).",
)
@click.option(
    "--eval",
    "eval_",
    multiple=True,
    help="Evaluation data, same kinds (repeatable); none: only the mixture's shared images.",
)
@click.option("--root", help="Media root (default: the format's own; a meta entry's root wins).")
@click.option("--eval-root", help="Media root of the eval data (default: --root).")
@click.option(
    "--image-distance",
    type=click.IntRange(0, 32),
    default=DEFAULT_DISTANCE,
    show_default=True,
    help="Near-duplicate images: perceptual hashes at most this many bits (of 64) apart.",
)
@click.option("--no-images", is_flag=True, help="Compare text only (no image hashing).")
@click.option("--no-text", is_flag=True, help="Compare images only.")
@click.option("--cache-dir", help="Where image hashes are cached (default: $VLMDATA_CACHE_DIR or ~/.cache/vlmdata).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON on stdout.")
def overlap(
    train: tuple[str, ...],
    eval_: tuple[str, ...],
    root: str | None,
    eval_root: str | None,
    image_distance: int,
    no_images: bool,
    no_text: bool,
    cache_dir: str | None,
    as_json: bool,
) -> None:
    """Find eval samples whose image (near-duplicate) or question+answer text is in the training data.

    Every leaking pair is reported with file:line (id) on both sides. With several training
    datasets (a meta file, a dataset_info.json, several --train), images shared between them are
    counted: each is trained repeat_time_a + repeat_time_b times per epoch. Exit 1 when eval leaks.

    \b
    vlmdata overlap --train data/train.jsonl --eval data/val.jsonl --root data/images
    vlmdata overlap --train meta.json --eval bench/eval.jsonl --json
    """
    from vlmdata.tools.overlap import find_overlap

    if no_images and no_text:
        err.print("[red]error:[/] --no-images and --no-text leave nothing to compare")
        sys.exit(2)
    try:
        report = find_overlap(
            list(train),
            list(eval_),
            root=root,
            eval_root=eval_root,
            image_distance=image_distance,
            images=not no_images,
            text=not no_text,
            cache_dir=cache_dir,
        )
    except (VlmdataError, RecordError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc.filename or ''))}: {escape(str(exc.strerror or exc))}")
        sys.exit(2)
    if as_json:

        click.echo(json_text(report.to_dict()))
    print_report(report)
    sys.exit(1 if report.leaks else 0)


def print_report(report: OverlapReport) -> None:
    for leak in report.leaks[:SHOWN]:
        how = f"image {leak.image_distance} bits apart" if leak.image_distance is not None else ""
        if leak.text:
            how = f"{how} + same text" if how else "same question+answer text"
        err.print(
            f"[red]leak[/] ({leak.kind}: {how}) eval {escape(leak.eval.where())} <- train {escape(leak.train.where())}"
        )
    if len(report.leaks) > SHOWN:
        err.print(f"... and {len(report.leaks) - SHOWN} more pairs (--json lists them all)")
    if report.leaks:
        err.print(
            "[yellow]fix:[/] remove the leaking eval samples (or their training copies) so the eval measures "
            "unseen data; `--json` lists every pair with file, line and id on both sides"
        )
    for s in report.shared:
        err.print(
            f"[yellow]shared images[/] {escape(s['a'])} and {escape(s['b'])}: {s['images_of_a_in_b']} of "
            f"{s['distinct_images_a']} images of {escape(s['a'])} ({s['share_of_a']:.1%}) "
            f"are also in {escape(s['b'])}, "
            f"{s['images_of_b_in_a']} of {s['distinct_images_b']} ({s['share_of_b']:.1%}) the other way; "
            f"each is trained {s['times_seen_per_epoch']:g} times per epoch "
            f"(repeat_time {s['repeat_time_a']:g} + {s['repeat_time_b']:g}); keep one copy "
            "(`vlmdata transform --dedup-images` over both) or lower a repeat_time if that is not intended"
        )
    for e in report.errors:
        err.print(f"[yellow]unreadable[/] {escape(e)}")
    unhashed = sum(d.unhashed for d in (*report.train, *report.eval))
    if unhashed:
        err.print(
            f"[yellow]note:[/] {unhashed} image reference(s) could not be hashed (missing, remote or undecodable)"
        )
    n, bad = report.eval_samples, report.leaked_eval_samples
    what = []
    if report.images_checked:
        what.append(f"images within {report.image_distance} bits")
    if report.text_checked:
        what.append("normalised text")
    train_n = sum(d.samples for d in report.train)
    colour = "red" if bad else "green"
    err.print(
        f"[{colour}]{n} eval samples = {n - bad} clean + {bad} leaking ({len(report.leaks)} pairs) "
        f"against {train_n} training samples in {len(report.train)} dataset(s); compared {', '.join(what)}[/]"
    )


OVERLAP_COMMANDS = [overlap]
