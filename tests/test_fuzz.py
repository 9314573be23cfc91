"""Structure-aware fuzzing of every command: no input crashes vlmdata.

Valid records of every format (tests/fuzz_corpus.py) get hostile mutations (non-finite and huge
numbers, lone surrogates, NUL bytes, 1,500-deep nesting, wrong types at any key, markup fragments,
media paths that leave the root) and go through convert (to every writable format), validate (for
every --target), transform, filter, split, stats and show. Properties:

* only the tool's own exit escapes: exit 0, 1 or 2, no traceback, no other exception;
* convert: records in = written + rejected, the output parses with exactly `written` records, and
  converts back to the source format without a crash.

Budgets: the default profile is bounded (300 examples, a fixed seed: the same examples every run; part of `make test`);
`make fuzz` sets VLMDATA_FUZZ=long and runs random examples for FUZZ_MINUTES minutes (default 20),
or FUZZ_EXAMPLES examples when that is set. The number of examples run is printed at the end of the
session and written to .hypothesis/fuzz-examples.json. A crash is any exit status outside 0/1/2
(the CLI reports an internal error as 70; the commands run with VLMDATA_DEBUG=1, so the traceback
is in the failure's output).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from vlmdata.cli import main

from . import fuzz_corpus as fc
from .conftest import make_image

LONG = os.environ.get("VLMDATA_FUZZ") == "long"
MINUTES = float(os.environ.get("FUZZ_MINUTES", "20"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 0)  # long profile: this many examples instead of a duration
COUNTS: dict[str, int] = {}

BOUNDED_SEED = 20261202
settings.register_profile(
    "fuzz-bounded",
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "fuzz-long",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PROFILE = settings.get_profile("fuzz-long" if LONG else "fuzz-bounded")

# Examples per property in the bounded profile (300 in all), and each property's share of
# FUZZ_MINUTES in the long one.
BOUNDED = {"convert": 120, "validate": 90, "tools": 90}
SHARE = {"convert": 0.5, "validate": 0.25, "tools": 0.25}
LONG_CHUNK = 100  # examples per hypothesis run in the long profile; runs repeat until the time is up


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-media")
    for name, size in fc.IMAGES.items():
        make_image(root / name, size)
    return root


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    total = sum(COUNTS.values())
    out = Path(__file__).resolve().parents[1] / ".hypothesis" / "fuzz-examples.json"
    out.parent.mkdir(exist_ok=True)
    summary = {"profile": "long" if LONG else "bounded", "total": total, **COUNTS}
    out.write_text(json.dumps(summary) + "\n")


def run_property(name: str, body: Callable[..., None], *strategies: st.SearchStrategy) -> None:
    """Run ``body`` under hypothesis: once with the bounded budget, or in the long profile in
    repeated random runs until this property's share of FUZZ_MINUTES is spent."""

    def counted(args: tuple) -> None:
        COUNTS[name] = COUNTS.get(name, 0) + 1
        body(*args)

    def run(max_examples: int) -> None:  # a fresh function each time: hypothesis decorates it once
        test = given(drawn)(settings(PROFILE, max_examples=max_examples)(lambda args: counted(args)))
        # the bounded run draws the same examples every time (derandomize alone hashes the
        # strategies' reprs, which hold object addresses)
        (test if LONG else seed(BOUNDED_SEED)(test))()

    drawn = st.tuples(*strategies)
    if not LONG:
        run(BOUNDED[name])
        return
    end = time.monotonic() + MINUTES * 60 * SHARE[name]
    target = round(EXAMPLES * SHARE[name]) if EXAMPLES else None
    while (COUNTS.get(name, 0) < target) if target else (time.monotonic() < end):
        chunk = min(LONG_CHUNK, target - COUNTS.get(name, 0)) if target else LONG_CHUNK
        run(chunk)


def crash_site(exc: BaseException) -> tuple[str, str, str]:
    """(exception class, file, function) of the innermost vlmdata frame the exception left."""
    site = ("", "")
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/vlmdata/" in frame.filename:
            site = ("vlmdata/" + frame.filename.rsplit("/vlmdata/", 1)[1], frame.name)
    return (type(exc).__name__, *site)


def stack_depth() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        frame, n = frame.f_back, n + 1
    return n


def invoke(args: list[str]) -> Any:
    """Run vlmdata in process; None when it hit a known output-layer crash (see above).

    Hypothesis raises the recursion limit while a test runs; the command gets the default 1,000
    frames above this call, as `vlmdata` has when run from a shell, so deep nesting fails here as
    it would there."""
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(stack_depth() + 1000)
    try:
        # VLMDATA_DEBUG: an internal error (exit 70) shows its traceback in the failure's output
        res = CliRunner().invoke(main, args, catch_exceptions=True, env={"VLMDATA_DEBUG": "1"})
    finally:
        sys.setrecursionlimit(old_limit)
    exc = res.exception
    if exc is not None and not isinstance(exc, SystemExit):  # the CLI group reports every error itself
        raise AssertionError(f"vlmdata {' '.join(args)} raised {exc!r} at {crash_site(exc)}\n{res.output[-3000:]}")
    assert res.exit_code in (0, 1, 2), (args, res.exit_code, res.output[-3000:])
    assert "Traceback" not in res.output, res.output[-3000:]
    return res


@st.composite
def inputs(draw: st.DrawFn, formats: list[str] | None = None) -> tuple[str, str, Any, list[str]]:
    """(format, layout, mutated records, raw noise lines) for one input file."""
    fmt = draw(st.sampled_from(formats or list(fc.SEEDS)))
    layout = draw(st.sampled_from(fc.LAYOUTS[fmt]))
    seed = fc.SEEDS[fmt]
    if fmt == "coco":
        records = draw(fc.mutated(seed))
    else:
        records = [draw(fc.mutated(r)) if draw(st.booleans()) else r for r in seed]
        records = draw(st.permutations(records))
    noise = draw(st.lists(st.sampled_from(fc.LINE_NOISE), max_size=2)) if fmt != "coco" else []
    return fmt, layout, records, noise


def write(workdir: Path, spec: tuple[str, str, Any, list[str]]) -> tuple[str, Path]:
    fmt, layout, records, noise = spec
    return fmt, fc.write_input(workdir / f"in.{layout}", records, layout, noise)


def count_output(path: Path, target: str) -> int:
    """Records in an output file, read independently of vlmdata."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        files = sorted(path.parent.glob(path.stem + "*.parquet"))
        return sum(pq.read_metadata(f).num_rows for f in files)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return sum(1 for line in text.split("\n") if line.strip() and json.loads(line) is not None)
    data = json.loads(text)
    assert isinstance(data, list), target
    return len(data)


def json_report(stdout: str) -> dict:
    return json.loads(stdout[stdout.index("{") : stdout.rindex("}") + 1])


def test_fuzz_convert(media_root: Path):
    def body(spec, target, extra, rejects):
        with tempfile.TemporaryDirectory(dir=media_root) as tmp:
            work = Path(tmp)
            fmt, src = write(work, spec)
            name, ext = target
            out = work / f"out.{ext}"
            args = ["convert", str(src), "--from", fmt, "--to", name, "-o", str(out), "--root", str(media_root)]
            args += ["--json", *extra]
            if rejects:
                args += ["--rejects", str(work / "rejects.jsonl")]
            res = invoke(args)
            if res is None or res.exit_code == 2:
                return
            report = json_report(res.stdout)
            assert report["records_in"] == report["written"] + report["rejected"], report
            assert res.exit_code == (0 if report["rejected"] == 0 else 1), (res.exit_code, report)
            assert count_output(out, name) == report["written"], report
            if report["written"] and fmt != "coco":
                back = work / f"back.{fc.LAYOUTS[fmt][0]}"
                res = invoke(["convert", str(out), "--from", name, "--to", fmt, "-o", str(back), "--root",
                              str(media_root), "--json", "--system", "merge"])  # fmt: skip
                if res is not None and res.exit_code != 2:
                    again = json_report(res.stdout)
                    assert again["records_in"] == report["written"], (again, report)
                    assert again["records_in"] == again["written"] + again["rejected"], again

    extras = st.sampled_from(
        [[], ["--system", "drop"], ["--system", "merge"], ["--allow-outside-root"], ["--relative-paths"],
         ["--llava-padded"], ["--qwen-model", "qwen2.5-vl"], ["--qwen-boxes", "json"], ["--no-sizes"],
         ["--hf-layout", "prompt-completion"], ["--hf-boxes", "internvl"], ["--coco-task", "refer"],
         ["--workers", "2"]]
    )  # fmt: skip
    run_property("convert", body, inputs(), st.sampled_from(fc.TARGETS), extras, st.booleans())


def as_meta(work: Path, src: Path, media_root: Path, entry_value: Any) -> Path:
    """An InternVL meta file naming ``src``; ``entry_value`` (when not None) replaces one of its
    settings with a hostile value."""
    entry = fc.meta_entry(str(src), str(media_root))
    if entry_value is not None:
        key, value = entry_value
        entry[key] = value
    meta = work / "meta.json"
    meta.write_text(fc.dump_value({"fuzz": entry}), encoding="utf-8")
    return meta


META_CHANGES = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["root", "annotation", "repeat_time", "length", "data_augment", "max_dynamic_patch"]),
        fc.hostile_values(),
    ),
)


def test_fuzz_validate(media_root: Path):
    def body(spec, target, fmt_flag, output_format, extra, meta):
        with tempfile.TemporaryDirectory(dir=media_root) as tmp:
            work = Path(tmp)
            fmt, src = write(work, spec)
            if meta is not False and fmt == "internvl":
                src = as_meta(work, src, media_root, meta)
            args = ["validate", str(src), "--target", target, "--root", str(media_root)]
            args += ["--output-format", output_format, "--cache-dir", str(work / "cache"), *extra]
            if fmt_flag:
                args += ["--from", fmt]
            res = invoke(args)
            if res is not None and output_format == "json" and res.exit_code != 2 and not extra:
                json.loads(res.stdout)

    run_property(
        "validate",
        body,
        inputs(),
        st.sampled_from(fc.VALIDATE_TARGETS),
        st.booleans(),
        st.sampled_from(["json", "text", "rich", "github"]),
        st.sampled_from(
            [
                [],
                ["--fix"],
                ["--statistics"],
                ["--model", "qwen2.5-vl", "--max-length", "64"],
                ["--model", "internvl3", "--max-length", "64"],
                ["--model", "llava-1.5"],
                ["--select", "VD2,VD3"],
                ["--allow-outside-root"],
            ]
        ),
        st.one_of(st.just(False), META_CHANGES),
    )


TOOL_ARGS: list[list[str]] = [
    ["transform", "-o", "{dir}/x.jsonl", "--to", "swift", "--json"],
    ["transform", "-o", "{dir}/x.json", "--to", "llava", "--drop-system", "--json"],
    ["stats", "--json", "{meta}"],
    ["show", "-o", "{dir}/m.html", "--sample", "3", "{meta}"],
    ["transform", "-o", "{out}", "--dedup", "--near-dedup", "--drop-system", "--json"],
    ["transform", "-o", "{out}", "--merge-by-image", "--max-turns", "1", "--json"],
    ["transform", "-o", "{out}", "--merge-by-image", "--merge-scope", "all", "--reroot", "/=/x", "--json"],
    ["filter", "-o", "{out}", "--repetition", "0.3", "--max-chars", "20", "--garbage", "0.1", "--json"],
    ["filter", "-o", "{out}", "--min-chars", "3", "--keep-empty", "--json"],
    ["split", "-o", "{dir}/", "--val", "0.5", "--json"],
    ["stats", "--json"],
    ["stats"],
    ["show", "-o", "{dir}/g.html", "--first", "5"],
    ["show", "-o", "{dir}/s.png", "--index", "1"],
]


def test_fuzz_tools(media_root: Path):
    def body(spec, tool, fmt_flag, rejects, meta):
        with tempfile.TemporaryDirectory(dir=media_root) as tmp:
            work = Path(tmp)
            fmt, src = write(work, spec)
            out = work / ("out." + fc.LAYOUTS[fmt][0])
            if "{meta}" in tool:  # the input named by an InternVL meta file
                if fmt != "internvl":
                    return
                src = as_meta(work, src, media_root, meta)
                tool = [a for a in tool if a != "{meta}"]
            args = [tool[0], str(src)] + [a.format(out=out, dir=work) for a in tool[1:]]
            args += ["--root", str(media_root)]
            if fmt_flag:
                args += ["--from", fmt]
            if rejects and tool[0] in ("transform", "filter"):
                args += ["--rejects", str(work / "rejects.jsonl")]
            res = invoke(args)
            if res is not None and tool[0] == "filter" and res.exit_code != 2:
                report = json_report(res.stdout)
                dropped = sum(report["dropped"].values())
                assert report["records_in"] == report["written"] + report["rejected"] + dropped, report

    run_property("tools", body, inputs(), st.sampled_from(TOOL_ARGS), st.booleans(), st.booleans(), META_CHANGES)
