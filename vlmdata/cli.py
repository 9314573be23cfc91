"""The ``vlmdata`` command: thin click wrappers over the library, rich output.

Exit status: 0 all records converted, 1 some records rejected, 2 usage or whole-file errors,
70 an internal error (a bug), 130/143/129 interrupted (see ``vlmdata.console``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlmdata.console import EXIT_USAGE, err, error, exit_for, printable_streams, say, signals_unwind
from vlmdata.consumers import TARGETS as CONSUMER_TARGETS
from vlmdata.convert.cli_options import codec_options, engine_options
from vlmdata.convert.pipeline import convert as run_convert
from vlmdata.convert.qwen import FRAME_MODELS
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import ConvertReport, json_text
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.tokens import BUDGET_MODELS

SHOWN_REJECTIONS = 20


class VlmdataGroup(click.Group):
    """Every command ends through ``console.exit_for``: no traceback for users, the right status."""

    def invoke(self, ctx: click.Context) -> object:
        printable_streams()
        with signals_unwind():
            try:
                return super().invoke(ctx)
            except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
                raise
            except BaseException as exc:  # the one place every escaping error is reported
                sys.exit(exit_for(exc))


@click.group(cls=VlmdataGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vlmdata")
@click.option("--debug", is_flag=True, help="Print the traceback of an internal error (or set VLMDATA_DEBUG=1).")
def main(debug: bool) -> None:
    """Convert and check vision-language fine-tuning data (ms-swift, InternVL, LLaVA...)."""
    if debug:
        os.environ["VLMDATA_DEBUG"] = "1"


@main.command()
@click.argument("src", nargs=-1, required=True)
@click.option("--to", "to", required=True, type=click.Choice(list(FORMATS)), help="Target format.")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Output file, folder (ending in /) or - for stdout; --engine ray: a folder of part files.",
)
@click.option("--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected).")
@codec_options
@click.option("--rejects", help="Write rejected records with their reasons to this JSONL file.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Worker processes, each converting its own byte ranges of a JSONL input "
    "(default: the usable cores for inputs over 32 MiB, else 1).",
)
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def convert(
    src: tuple[str, ...],
    to: str,
    output: str,
    from_format: str | None,
    as_json: bool,
    engine: str,
    ray_address: str | None,
    **kw: Any,
) -> None:
    """Convert SRC (a file or - for stdin) to another format.

    With --engine ray, SRC may be several files: their shards run as Ray tasks and the output
    folder gets part-00000.jsonl, part-00001.jsonl, ... in input order.

    \b
    vlmdata convert train.jsonl --to internvl -o out/train.jsonl --root /data/images
    vlmdata convert llava_v1_5.json --from llava --to swift -o swift.jsonl
    cat a.jsonl | vlmdata convert - --from swift --to llava -o -
    vlmdata convert shards/*.jsonl --to internvl -o out/ --engine ray --ray-address auto
    """
    if engine == "local" and len(src) > 1:
        error("several inputs are converted by --engine ray (part files in a folder); convert one file at a time")
        sys.exit(EXIT_USAGE)
    if engine == "ray" and kw.get("workers") is not None:
        error("--workers is the local engine's; --engine ray runs one task per shard on the cluster's CPUs")
        sys.exit(EXIT_USAGE)
    progress = None
    bar = None
    if sys.stderr.isatty() and "-" not in src and output != "-":
        from rich.progress import Progress

        bar = Progress(console=err, transient=True)
        bar.start()
        task = bar.add_task("converting", total=None)

        def progress(n: int) -> None:
            bar.advance(task, n)

    try:
        if engine == "ray":
            from vlmdata.tools.ray_engine import convert_ray

            kw.pop("workers", None)
            report = convert_ray(
                list(src), output, to, from_format=from_format, progress=progress, ray_address=ray_address, **kw
            )
        else:
            report = run_convert(src[0], output, to, from_format=from_format, progress=progress, **kw)
    except RecordError as exc:  # whole-file problems raised from reading
        error(str(exc))
        sys.exit(EXIT_USAGE)
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        # with -o - stdout carries the data, so the report goes to stderr
        click.echo(json_text(report.to_dict()), err=output == "-")
    print_report(report)
    sys.exit(0 if report.ok else 1)


def print_report(report: ConvertReport) -> None:
    for r in report.rejections[:SHOWN_REJECTIONS]:
        say(("rejected", "red"), " ", r.message())
    if report.rejected > SHOWN_REJECTIONS:
        say(f"... and {report.rejected - SHOWN_REJECTIONS} more (use --rejects FILE for all)")
    for note in report.notes():
        say(("note:", "yellow"), " ", note)
    colour = "green" if report.ok else "yellow"
    say(
        (
            f"{report.source} ({report.input_format}) -> {report.output} ({report.output_format}): "
            f"{report.records_in} in = {report.written} written + {report.rejected} rejected",
            colour,
        ),
        f" in {report.seconds:.2f}s",
    )
    for path in report.side_files:
        say(f"entry for {report.output} written to {path}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--target",
    type=click.Choice(list(CONSUMER_TARGETS)),
    help="Check against this consumer's rules (default: the one that reads the file's format).",
)
@click.option("--from", "from_format", type=click.Choice(list(FORMATS)), help="Input format (default: detected).")
@click.option(
    "--model",
    type=click.Choice(list(BUDGET_MODELS)),
    help="Compute image tokens for this model (token-budget rules).",
)
@click.option("--max-length", type=click.IntRange(1), help="Flag records whose tokens exceed this length.")
@click.option(
    "--tokenizer", type=click.Path(exists=True, file_okay=False), help="Tokenizer folder for exact text tokens."
)
@click.option(
    "--max-dynamic-patch",
    type=click.IntRange(1, 1024),
    default=12,
    show_default=True,
    help="InternVL tiles per image (a meta entry's max_dynamic_patch wins).",
)
@click.option("--min-pixels", "min_pixels", type=click.IntRange(1), help="Qwen smart_resize min_pixels.")
@click.option("--max-pixels", "max_pixels", type=click.IntRange(1), help="Qwen smart_resize max_pixels.")
@click.option("--root", help="Media root (default: the format's own, see `vlmdata convert --help`).")
@click.option("--allow-outside-root", is_flag=True, help="Do not report media paths that leave the root.")
@click.option(
    "--native-grounding",
    type=click.Choice(["qwen", "internvl", "both"]),
    help="ms-swift files: their text also holds the trained model's own box markup; check it as boxes.",
)
@click.option(
    "--qwen-model",
    type=click.Choice(list(FRAME_MODELS)),
    help="Qwen and LLaMA-Factory files: the box frame (qwen2.5-vl: pixels of the smart-resized image, with "
    "--min-pixels/--max-pixels/--image-max-pixels); default 0-1000.",
)
@click.option("--image-max-pixels", type=click.IntRange(1), help="LLaMA-Factory's image_max_pixels (Qwen2.5-VL frame).")
@click.option("--select", help="Comma-separated rule code prefixes to run (default: all), e.g. VD1,VD301.")
@click.option("--ignore", help="Comma-separated rule code prefixes to skip.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes in place (the files are rewritten atomically).")
@click.option(
    "--output-format",
    type=click.Choice(["rich", "text", "json", "github"]),
    default="rich",
    show_default=True,
    help="rich summary, ruff-style lines, JSON, or GitHub workflow annotations.",
)
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule.")
@click.option("--cache-dir", help="Where header probes are cached (default: $VLMDATA_CACHE_DIR or ~/.cache/vlmdata).")
@engine_options
def validate(
    paths: tuple[str, ...], select: str | None, ignore: str | None, output_format: str, statistics: bool, **kw: Any
) -> None:
    """Check data files, folders or InternVL meta files before training; exit 1 on errors.

    \b
    vlmdata validate data/train.jsonl --root data/images
    vlmdata validate meta.json
    vlmdata validate data/ --target internvl --model qwen2-vl --max-length 4096
    vlmdata validate data.jsonl --select VD1 --ignore VD105 --fix
    """
    from vlmdata.validators import reporters
    from vlmdata.validators.config import find_pyproject, load_config
    from vlmdata.validators.engine import validate as run_validate

    try:
        first = os.path.abspath(paths[0])
        config = load_config(find_pyproject(first if os.path.isdir(first) else os.path.dirname(first)))
        for key, value in config.items():
            name = {"max-length": "max_length", "from": "from_format"}.get(key, key)
            if name in kw and kw[name] in (None, False):
                kw[name] = value
        sel = select.split(",") if select else config.get("select")
        ign = ignore.split(",") if ignore else config.get("ignore")
        report = run_validate(list(paths), select=sel, ignore=ign, **kw)
    except VlmdataError as exc:
        error(str(exc))
        sys.exit(EXIT_USAGE)
    out = sys.stdout
    if output_format == "rich":
        reporters.print_rich(report, Console(highlight=False, soft_wrap=True))
    elif output_format == "text":
        reporters.write_text(report, out)
    elif output_format == "json":
        reporters.write_json(report, out)
    else:
        reporters.write_github(report, out)
    if statistics:
        reporters.write_statistics(report, out)
    sys.exit(1 if report.errors else 0)


@main.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Every rule's documentation.")
@click.option("--markdown", is_flag=True, help="All rules as a markdown table (the README's rules section).")
def rule(code: str | None, show_all: bool, markdown: bool) -> None:
    """Explain a rule: what it checks, why it matters, an example and the fix (`vlmdata rule VD101`)."""
    from vlmdata.validators.registry import RULES, iter_docs, load_rules

    load_rules()
    if markdown:
        from vlmdata.validators.registry import markdown_table

        click.echo(markdown_table(), nl=False)
        return
    if show_all:
        click.echo("\n".join(r.doc() for r in iter_docs()))
        return
    if not code:
        for r in iter_docs():
            click.echo(f"{r.code}  {r.severity:<8} {r.name}")
        return
    found = RULES.get(code.upper())
    if found is None:
        error(f"no rule {code!r}; `vlmdata rule` lists them")
        sys.exit(EXIT_USAGE)
    click.echo(found.doc())


@main.command()
def formats() -> None:
    """List the supported formats, their fields and box conventions."""
    table = Table(title="vlmdata formats", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("format")
    table.add_column("files")
    table.add_column("fields", overflow="fold")
    table.add_column("boxes", overflow="fold")
    for codec in FORMATS.values():
        table.add_row(
            *(escape(c) for c in (codec.name, codec.title, "/".join(codec.layouts), codec.fields, codec.boxes))
        )
    Console(width=max(140, Console().width)).print(table)


def _add_tool_commands() -> None:
    """Dataset tools (meta, split, transform, filter, stats, show) and train/export, from their packages."""
    from vlmdata.tools.meta_cli import META_COMMANDS
    from vlmdata.tools.overlap_cli import OVERLAP_COMMANDS
    from vlmdata.tools.show_cli import SHOW_COMMANDS
    from vlmdata.tools.transform_cli import TRANSFORM_COMMANDS
    from vlmdata.train.cli import TRAIN_COMMANDS

    for command in (*META_COMMANDS, *TRANSFORM_COMMANDS, *SHOW_COMMANDS, *TRAIN_COMMANDS, *OVERLAP_COMMANDS):
        main.add_command(command)


_add_tool_commands()


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
