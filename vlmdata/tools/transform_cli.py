"""``vlmdata transform`` and ``vlmdata filter``: click commands over ``tools.stream.run_stream``.

Exported as ``TRANSFORM_COMMANDS`` for the main group. Exit status like ``convert``: 0 every record
was read and written (samples dropped on purpose do not count as errors), 1 some records were
rejected (unreadable or unwritable), 2 usage or whole-file errors.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from vlmdata.convert.cli_options import codec_options
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import json_text
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.tools import filters as F
from vlmdata.tools import transforms as T
from vlmdata.tools.stream import SampleFilter, StreamReport, Transform, apply_filters, run_stream

err = Console(stderr=True, highlight=False, soft_wrap=True)
SHOWN = 20


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("src"),
        click.option("-o", "--output", required=True, help="Output file, folder (ending in /) or - for stdout."),
        click.option(
            "--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected)."
        ),
        click.option("--to", "to", type=click.Choice(list(FORMATS)), help="Output format (default: the input's)."),
        lambda f: codec_options(f, ("root", "allow_outside_root")),
        click.option(
            "--rejects", help="Write rejected and dropped records (with reason, filter, score) to this JSONL."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command()
@_common
@click.option("--merge-by-image", is_flag=True, help="Merge QA records of the same image(s) into one conversation.")
@click.option(
    "--merge-scope",
    type=click.Choice(["consecutive", "all"]),
    default="consecutive",
    show_default=True,
    help="consecutive: neighbouring records only (streaming); all: across the file (holds samples in memory).",
)
@click.option("--max-turns", type=click.IntRange(1), help="Split conversations longer than N rounds into several.")
@click.option("--dedup", is_flag=True, help="Drop exact duplicates: same media bytes (sha256) and same text.")
@click.option(
    "--near-dedup",
    is_flag=True,
    help="Drop near duplicates: same media bytes, text similar by MinHash (quality extra).",
)
@click.option(
    "--near-threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="--near-dedup: the word-3-gram Jaccard similarity from which texts are duplicates.",
)
@click.option(
    "--dedup-images", is_flag=True, help="Keep one sample per cluster of near-duplicate images (quality extra)."
)
@click.option(
    "--image-distance",
    type=click.IntRange(0, 32),
    default=8,
    show_default=True,
    help="--dedup-images: perceptual hashes at most this many bits (of 64) apart are one cluster.",
)
@click.option("--reroot", multiple=True, metavar="OLD=NEW", help="Rewrite media path prefixes (repeatable).")
@click.option("--drop-system", is_flag=True, help="Remove system prompts (default: keep them).")
def transform(
    src: str,
    output: str,
    merge_by_image: bool,
    merge_scope: str,
    max_turns: int | None,
    dedup: bool,
    near_dedup: bool,
    near_threshold: float,
    dedup_images: bool,
    image_distance: int,
    reroot: tuple[str, ...],
    drop_system: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Rewrite SRC sample by sample, in its own format unless --to.

    Order: --reroot, --drop-system, --dedup, --near-dedup, --dedup-images, --merge-by-image, --max-turns.
    Dropped samples go to --rejects with the sample they duplicate ("cluster").

    \b
    vlmdata transform in.jsonl -o out.jsonl --merge-by-image --max-turns 10 --dedup
    vlmdata transform in.jsonl -o out.jsonl --reroot /old/images=/data/images --drop-system
    vlmdata transform in.jsonl -o out.jsonl --dedup-images --image-distance 6 --rejects dups.jsonl
    """
    stages: list[Transform] = []
    if reroot:
        try:
            rules = [T.parse_reroot(spec) for spec in reroot]
        except ValueError as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}")
            sys.exit(2)
        stages.append(partial(T.reroot, rules=rules))
    if drop_system:
        stages.append(T.drop_system)
    hasher = T.MediaHasher()
    if dedup:
        stages.append(partial(T.dedup_exact, hasher=hasher))
    try:
        if near_dedup:
            from vlmdata.tools.dedup import QUALITY_EXTRA

            if importlib.util.find_spec("datasketch") is None:
                raise VlmdataError(f"--near-dedup needs the optional datasketch package: {QUALITY_EXTRA}")
            stages.append(partial(T.dedup_near, hasher=hasher, threshold=near_threshold))
        if dedup_images:
            from vlmdata.media.phash import require_hashing
            from vlmdata.tools.dedup import dedup_images as dedup_images_stage

            require_hashing("--dedup-images")
            stages.append(partial(dedup_images_stage, distance=image_distance))
    except VlmdataError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    if merge_by_image:
        stages.append(partial(T.merge_by_image, scope=merge_scope))
    if max_turns is not None:
        stages.append(partial(T.split_turns, max_turns=max_turns))
    _run(src, output, as_json, transforms=stages, **kw)


@click.command("filter")
@_common
@click.option("--repetition", type=click.FloatRange(0, 1), help="Drop answers whose repeated n-gram/line share > X.")
@click.option("--ngram", default=3, show_default=True, type=click.IntRange(1), help="n of --repetition's n-grams.")
@click.option("--max-chars", type=click.IntRange(0), help="Drop samples whose answers are longer than N characters.")
@click.option("--min-chars", type=click.IntRange(0), help="Drop samples whose answers are shorter than N characters.")
@click.option("--garbage", type=click.FloatRange(0, 1), help="Drop text whose control/replacement character share > X.")
@click.option(
    "--keep-empty", is_flag=True, help="Keep samples with empty or placeholder-only answers (dropped by default)."
)
@click.option("--scorer", metavar="DIR", help="A local transformers model folder that scores each sample 0-10.")
@click.option(
    "--min-score",
    type=click.FloatRange(0, 10),
    default=5.0,
    show_default=True,
    help="--scorer: drop samples the judge scores below this.",
)
@click.option("--flag-repetition", is_flag=True, help="--scorer: ask the judge about repetitive answers instead.")
@click.option("--prompt", "prompt_file", metavar="FILE", help="--scorer: prompt template file with {conversation}.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="--scorer: samples per batch.")
@click.option(
    "--score-cache",
    metavar="FILE",
    help="--scorer: JSONL of verdicts, reused and appended (default: OUTPUT.scores.jsonl); a rerun resumes.",
)
@click.option("--max-new-tokens", type=click.IntRange(1), default=64, show_default=True, help="--scorer: reply length.")
def filter_(
    src: str,
    output: str,
    repetition: float | None,
    ngram: int,
    max_chars: int | None,
    min_chars: int | None,
    garbage: float | None,
    keep_empty: bool,
    scorer: str | None,
    min_score: float,
    flag_repetition: bool,
    prompt_file: str | None,
    batch_size: int,
    score_cache: str | None,
    max_new_tokens: int,
    as_json: bool,
    **kw: Any,
) -> None:
    """Drop samples that heuristics flag; --rejects records each with its filter and score.

    Filters run in this order and the first that objects names the drop: empty, max-chars/min-chars,
    repetition, garbage, then the --scorer judge on what is left (llm-score, or llm-repetition with
    --flag-repetition). The judge's score and reason go to --rejects.

    \b
    vlmdata filter in.jsonl -o kept.jsonl --rejects dropped.jsonl --repetition 0.3 --max-chars 8000
    vlmdata filter in.jsonl -o kept.jsonl --rejects low.jsonl --scorer models/judge --min-score 7
    """
    checks: list[SampleFilter] = []
    if not keep_empty:
        checks.append(F.empty())
    if max_chars is not None or min_chars is not None:
        checks.append(F.length(min_chars, max_chars))
    if repetition is not None:
        checks.append(F.repetition(repetition, ngram))
    if garbage is not None:
        checks.append(F.garbage(garbage))
    if scorer is None:
        if flag_repetition or prompt_file:
            err.print("[red]error:[/] --flag-repetition and --prompt need --scorer DIR (the judge model)")
            sys.exit(2)
        _run(src, output, as_json, filters=checks, **kw)
        return
    from vlmdata.tools.scorer import HFJudge, ScoreCache, ScoreStage

    try:
        template = None
        if prompt_file:
            with open(prompt_file, encoding="utf-8") as f:
                template = f.read()
        cache_path = score_cache or (None if output == "-" else output.rstrip("/") + ".scores.jsonl")
        judge = HFJudge(scorer, max_new_tokens=max_new_tokens)
        stage = ScoreStage(
            judge,
            judge_name=os.path.abspath(scorer),
            min_score=min_score,
            template=template,
            repetition=flag_repetition,
            batch_size=batch_size,
            cache=ScoreCache(cache_path),
        )
    except VlmdataError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc.filename or ''))}: {escape(str(exc.strerror or exc))}")
        sys.exit(2)

    def heuristics(samples: Any, events: Any) -> Any:
        return apply_filters(samples, checks, events)

    def note() -> None:
        err.print(
            f"judge {escape(scorer)}: {stage.judged} sample(s) judged, {stage.cached} from the cache"
            + (f" ({escape(cache_path)})" if cache_path else "")
            + (f", {stage.unparsed} kept with a reply that did not parse" if stage.unparsed else "")
        )

    _run(src, output, as_json, transforms=[heuristics, stage], before_exit=note, **kw)


def _run(src: str, output: str, as_json: bool, before_exit: Callable[[], None] | None = None, **kw: Any) -> None:
    try:
        report = run_stream(src, output, **kw)
    except (VlmdataError, RecordError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(2)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc.filename or ''))}: {escape(str(exc.strerror or exc))}")
        sys.exit(2)
    if as_json:

        click.echo(json_text(report.to_dict()), err=output == "-")
    print_stream_report(report)
    if before_exit is not None:
        before_exit()
    sys.exit(0 if report.ok else 1)


def print_stream_report(report: StreamReport) -> None:
    for r in report.rejections[:SHOWN]:
        err.print(f"[red]rejected[/] {escape(r.message())}")
    if report.rejected > SHOWN:
        err.print(f"... and {report.rejected - SHOWN} more (use --rejects FILE for all)")
    for line in report.drop_examples[:SHOWN]:
        err.print(f"[yellow]dropped[/] {escape(line)}")
    if report.dropped_total > SHOWN:
        err.print(f"... and {report.dropped_total - SHOWN} more dropped (use --rejects FILE for all)")
    for note in report.notes():
        err.print(f"[yellow]note:[/] {escape(note)}")
    terms = [f"{report.written} written", f"{report.rejected} rejected"]
    terms += [f"{n} dropped by {name}" for name, n in sorted(report.dropped.items())]
    if report.merged:
        terms.append(f"{report.merged} merged into earlier samples")
    equation = f"{report.records_in} in = " + " + ".join(terms)
    if report.split_added:
        equation += f" - {report.split_added} added by splitting"
    colour = "green" if report.ok else "yellow"
    err.print(
        f"[{colour}]{escape(report.source)} ({report.input_format}) -> {escape(report.output)} "
        f"({report.output_format}): {equation}[/] in {report.seconds:.2f}s"
    )


TRANSFORM_COMMANDS = [transform, filter_]
