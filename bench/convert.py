"""Throughput and peak memory of ``vlmdata.convert`` (ms-swift -> InternVL) against the JSON floor.

    python bench/convert.py [--rows 200000] [--small-rows 20000] [--workdir DIR] [--json] [--repeat 1]
                            [--unique-images] [--profile] [--profile-rows 50000] [--alt PYTHONPATH]

For each size (``--small-rows`` and ``--rows``; the file comes from ``bench/generate.py``: one
image per row cycling over 200 real 640x480 JPEGs, 1-2 rounds, ~30% grounding rows with pixel
``objects``), every variant runs in a fresh Python process so that its peak RSS is its own:

* ``floor``: read lines from the file, ``orjson.loads`` + ``orjson.dumps`` each, write to a new
  file (no validation, no fsync: the peers' floor, docs/performance.md#peers-floor); best of 3;
* ``serial``: ``vlmdata.convert(src, dst, to="internvl", root=WORKDIR)``;
* ``workers2``: the same with ``workers=2``.

rows/s counts the in-process time of the pass (imports excluded; ``convert`` includes its atomic
write and fsync). Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of the process that ran the pass;
for ``workers2`` the largest worker's peak (``RUSAGE_CHILDREN`` after the pool is joined) is shown
beside it. Every conversion must report N records in, N written, 0 rejected, have N lines, and
its first 2,000 rows must match an independent rendering of the expected InternVL conversations
(``verify``); ``serial`` and ``workers2`` outputs must be byte-identical. A failed check exits 1.

``--unique-images`` gives every row its own image file (hard links), so that per-path caches
(path resolution, image size probes) miss as they do on real data; the default cycles 200 paths.
Timings on a shared 2-core machine vary by 10-25% between runs: use ``--repeat 3`` to compare.

``--alt PATH`` also runs ``serial``/``workers2`` with ``PYTHONPATH=PATH`` (a scratch copy of the
package, to measure a proposed change against the tree in the same run). ``--profile`` runs a
cProfile of one serial conversion of ``--profile-rows`` rows and prints the top entries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import H, W, generate

FLOOR_REPEAT = 3
VERIFY_ROWS = 2000


# --------------------------------------------------------------------------- child side


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def child_floor(src: str, dst: str) -> dict[str, Any]:
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
    started = time.perf_counter()
    n = 0
    with open(src, "rb") as f, open(dst, "wb", buffering=1 << 20) as out:
        write = out.write
        for line in f:
            write(dumps(loads(line)))
            write(b"\n")
            n += 1
        out.flush()
        seconds = time.perf_counter() - started
        synced = time.perf_counter()
        os.fsync(out.fileno())
        fsync = time.perf_counter() - synced
    return {"records_in": n, "written": n, "rejected": 0, "seconds": seconds, "fsync_seconds": fsync}


def child_convert(src: str, dst: str, root: str, workers: int) -> dict[str, Any]:
    imported = time.perf_counter()
    import vlmdata

    import_seconds = time.perf_counter() - imported
    started = time.perf_counter()
    report = vlmdata.convert(src, dst, to="internvl", root=root, workers=workers)
    seconds = time.perf_counter() - started
    return {
        "records_in": report.records_in,
        "written": report.written,
        "rejected": report.rejected,
        "first_rejections": [r.message() for r in report.rejections[:3]],
        "seconds": seconds,
        "import_seconds": import_seconds,
        "package": os.path.dirname(vlmdata.__file__),
    }


def child_profile(src: str, dst: str, root: str, top: int) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    import vlmdata

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    report = vlmdata.convert(src, dst, to="internvl", root=root)
    profiler.disable()
    seconds = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    rows = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {"function": f"{_short(path)}:{line}({func})", "ncalls": ncalls, "tottime": tottime, "cumtime": cumtime}
        )
    rows.sort(key=lambda r: -r["tottime"])
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(r"vlmdata", 30)
    return {
        "written": report.written,
        "rejected": report.rejected,
        "seconds_profiled": seconds,
        "top_tottime": rows[:top],
        "cumulative_text": text.getvalue(),
    }


def _short(path: str) -> str:
    marker = os.sep + "vlmdata" + os.sep
    return "vlmdata/" + path.split(marker, 1)[1] if marker in path else path


def child_main(args: argparse.Namespace) -> None:
    if args.child == "floor":
        result = child_floor(args.src, args.dst)
    elif args.child == "profile":
        result = child_profile(args.src, args.dst, args.root, args.top)
    else:
        result = child_convert(args.src, args.dst, args.root, 2 if args.child == "workers2" else 1)
    result["rss_mb"] = _rss_mb(resource.RUSAGE_SELF)
    result["children_rss_mb"] = _rss_mb(resource.RUSAGE_CHILDREN)
    print(json.dumps(result))


# --------------------------------------------------------------------------- parent side


def run_child(variant: str, src: str, dst: str, root: str, pythonpath: str | None = None, top: int = 25) -> dict:
    if os.path.exists(dst):
        os.unlink(dst)  # a fresh file: rewriting a big file in place makes ext4 flush on close
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        variant,
        "--src",
        src,
        "--dst",
        dst,
        "--root",
        root,
        "--top",
        str(top),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{variant} failed with exit status {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


_PLACEHOLDER = re.compile(r"<ref-object>|<bbox>")
ROLE_FROM = {"user": "human", "assistant": "gpt"}


def expected_internvl(row: dict) -> dict:
    """The InternVL record for one generated row, rendered without vlmdata (docs/formats.md#internvl,
    docs/formats.md#internvl-grounding)."""
    objects = row.get("objects") or {"ref": [], "bbox": []}
    refs, boxes = iter(objects["ref"]), iter(objects["bbox"])

    def fill(m: re.Match) -> str:
        if m.group(0) == "<ref-object>":
            return f"<ref>{next(refs)}</ref>"
        x1, y1, x2, y2 = next(boxes)
        norm = [round(x1 / W * 1000), round(y1 / H * 1000), round(x2 / W * 1000), round(y2 / H * 1000)]
        return "<box>[[" + ", ".join(str(v) for v in norm) + "]]</box>"

    turns = [{"from": ROLE_FROM[m["role"]], "value": _PLACEHOLDER.sub(fill, m["content"])} for m in row["messages"]]
    return {"image": row["images"][0], "conversations": turns}


def verify(src: str, dst: str, rows: int) -> list[str]:
    """Problems found in ``dst``: line count, and the first VERIFY_ROWS rows against expected_internvl."""
    problems = []
    lines = count_lines(dst)
    if lines != rows:
        problems.append(f"{dst} has {lines} lines, expected {rows}")
    with open(src, "rb") as fs, open(dst, "rb") as fd:
        for k, (a, b) in enumerate(zip(fs, fd, strict=False)):
            if k >= VERIFY_ROWS:
                break
            want, got = expected_internvl(json.loads(a)), json.loads(b)
            got_slice = {"image": got.get("image"), "conversations": got.get("conversations")}
            if got_slice != want:
                problems.append(f"row {k}: got {got_slice} expected {want}")
                break
    return problems


def check_run(name: str, result: dict, rows: int) -> list[str]:
    problems = []
    for key in ("records_in", "written"):
        if result[key] != rows:
            problems.append(f"{name}: {key}={result[key]}, expected {rows}")
    if result["rejected"]:
        problems.append(f"{name}: rejected={result['rejected']}: {result.get('first_rejections')}")
    return problems


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def print_table(results: list[dict], floors: dict[int, float]) -> None:
    head = (
        f"{'rows':>9}  {'variant':<16} {'rows/s':>10} {'x floor':>8} {'seconds':>8} {'peak RSS MB':>12} "
        f"{'worker MB':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        worker = f"{r['children_rss_mb']:.0f}" if r["variant"].startswith("workers") else ""
        print(
            f"{fmt_int(r['rows']):>9}  {r['variant']:<16} {fmt_int(r['rows_per_s']):>10} "
            f"{r['rows_per_s'] / floors[r['rows']]:>8.3f} {r['seconds']:>8.2f} {r['rss_mb']:>12.0f} {worker:>10}"
        )


def parent_main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load_before = os.getloadavg()
    own_dir = args.workdir is None
    workdir = args.workdir or tempfile.mkdtemp(prefix="vlmdata-bench-")
    sizes = sorted({min(args.small_rows, args.rows), args.rows})
    variants: list[tuple[str, str, str | None]] = [("serial", "serial", None), ("workers2", "workers2", None)]
    if args.alt:
        variants += [("serial[alt]", "serial", args.alt), ("workers2[alt]", "workers2", args.alt)]
    results: list[dict] = []
    floors: dict[int, float] = {}
    problems: list[str] = []
    notes: list[str] = []
    data: dict[int, dict] = {}
    try:
        for rows in sizes:
            src, stats = generate(workdir, rows, args.seed, unique_images=args.unique_images)
            data[rows] = stats
            out = os.path.join(workdir, "out")
            os.makedirs(out, exist_ok=True)
            floor_runs = [
                run_child("floor", src, os.path.join(out, f"floor-{rows}.jsonl"), workdir)
                for _ in range(max(FLOOR_REPEAT, args.repeat))
            ]
            best = min(floor_runs, key=lambda r: r["seconds"])
            floors[rows] = rows / best["seconds"]
            results.append({"variant": "floor", "rows": rows, "rows_per_s": floors[rows], **best})
            digests: dict[str, str] = {}
            for label, variant, pythonpath in variants:
                dst = os.path.join(out, f"{label}-{rows}.jsonl".replace("[", "-").replace("]", ""))
                runs = [run_child(variant, src, dst, workdir, pythonpath) for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["seconds"])
                problems += check_run(f"{label} at {rows}", best, rows)
                problems += [f"{label} at {rows}: {p}" for p in verify(src, dst, rows)]
                digests[label] = digest(dst)
                results.append({"variant": label, "rows": rows, "rows_per_s": rows / best["seconds"], **best})
                os.unlink(dst)
            for label in digests:
                base = "serial[alt]" if label.endswith("[alt]") else "serial"
                if digests[label] != digests[base]:
                    problems.append(f"at {rows} rows: {label} output differs from {base}")
            if "serial[alt]" in digests:
                same = digests["serial[alt]"] == digests["serial"]
                notes.append(
                    f"at {rows} rows: the alt output is {'byte-identical to' if same else 'DIFFERENT from'} the tree's"
                )
        profile = None
        if args.profile:
            prow = args.profile_rows
            src, _ = generate(workdir, prow, args.seed, unique_images=args.unique_images)
            profile = run_child("profile", src, os.path.join(workdir, "out", "profile.jsonl"), workdir, top=args.top)
    finally:
        if own_dir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    total = time.perf_counter() - started
    if args.json:
        print(
            json.dumps(
                {
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": sys.version.split()[0],
                        "loadavg_before": load_before,
                    },
                    "notes": notes,
                    "data": data,
                    "results": results,
                    "profile": profile,
                    "problems": problems,
                    "total_seconds": total,
                },
                indent=2,
            )
        )
    else:
        package = next((r["package"] for r in results if "package" in r), "?")
        load = ", ".join(f"{v:.2f}" for v in load_before)
        print(
            f"vlmdata.convert swift -> internvl ({package}); {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
            f"load average before: {load}"
        )
        for rows, stats in data.items():
            print(
                f"  data {fmt_int(rows)} rows: {stats['grounding_rows']:,} grounding rows, "
                f"{stats['boxes']:,} boxes, {stats['bytes'] / 1e6:.1f} MB"
            )
        print()
        print_table(results, floors)
        if profile:
            print(
                f"\ncProfile of one serial conversion of {fmt_int(args.profile_rows)} rows "
                f"({profile['seconds_profiled']:.2f} s under the profiler), top by own time:"
            )
            print(f"  {'tottime':>8} {'cumtime':>8} {'ncalls':>9}  function")
            for r in profile["top_tottime"]:
                print(f"  {r['tottime']:>8.3f} {r['cumtime']:>8.3f} {r['ncalls']:>9}  {r['function']}")
        for note in notes:
            print(note)
        print(f"\ntotal {total:.0f} s; " + ("all checks passed" if not problems else "CHECKS FAILED:"))
        for p in problems:
            print("  " + p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the large run (default 200,000)")
    ap.add_argument("--small-rows", type=int, default=20_000, help="rows of the small run (default 20,000)")
    ap.add_argument("--workdir", help="keep data here (reused across runs); default: a temp dir, removed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--unique-images",
        action="store_true",
        help="one image file (a hard link) per row, as in real data, instead of 200 cycled paths",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per conversion variant; the best is shown")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--profile", action="store_true", help="also cProfile one serial conversion")
    ap.add_argument("--profile-rows", type=int, default=50_000)
    ap.add_argument("--top", type=int, default=25, help="profile entries to show")
    ap.add_argument("--alt", help="also run the conversions with this PYTHONPATH (a scratch copy of vlmdata)")
    ap.add_argument("--child", choices=("floor", "serial", "workers2", "profile"), help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--dst", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
