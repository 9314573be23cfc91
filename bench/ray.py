"""Rows/s of ``convert --engine ray`` on 4 input shards next to ``--workers 2`` on the same shards.

    python bench/ray.py [--rows 200000] [--workdir DIR] [--cpus 2] [--address ADDR]

The data is ``bench/generate.py``'s ms-swift file (ms-swift -> InternVL, ~30% grounding rows), cut
by lines into 4 files. Variants, all in this process (imports excluded):

* ``workers2``: ``vlmdata.convert(shard, ..., workers=2)`` on each shard, one after the other;
* ``workers2-one-file``: ``workers=2`` on the uncut file (for reference);
* ``ray``: ``vlmdata.convert(shards, DIR, engine="ray")`` on a local instance with ``--cpus`` CPUs
  (``ray.init`` timed apart), a first run (worker processes import vlmdata) and a second one.

The concatenated Ray parts must equal the concatenated ``workers2`` outputs byte for byte (exit 1
if not). These are numbers to read, not a timed test: a shared 2-core machine varies 10-25%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
# this file is bench/ray.py: its folder must not shadow the ray package
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.dirname(HERE))

import vlmdata  # noqa: E402
from bench.generate import generate  # noqa: E402

SHARDS = 4


def cut(path: str, folder: str, n: int) -> list[str]:
    with open(path, "rb") as f:
        lines = f.readlines()
    size = -(-len(lines) // n)
    out = []
    for k in range(n):
        p = os.path.join(folder, f"shard-{k}.jsonl")
        with open(p, "wb") as f:
            f.writelines(lines[k * size : (k + 1) * size])
        out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "vlmdata-bench"))
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--address", help="an existing Ray cluster instead of a local instance")
    args = ap.parse_args(argv)

    import ray

    src, info = generate(args.workdir, args.rows)
    rows = info["rows"]
    run = os.path.join(args.workdir, "ray-bench")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    shards = cut(src, run, SHARDS)
    root = args.workdir
    print(f"{rows:,} rows ({info['bytes'] / 1e6:.0f} MB) in {SHARDS} shards, ms-swift -> internvl")

    t = time.perf_counter()
    outs = []
    for k, shard in enumerate(shards):
        dst = os.path.join(run, f"w2-{k}.jsonl")
        r = vlmdata.convert(shard, dst, to="internvl", root=root, workers=2)
        assert r.written == r.records_in and not r.rejected
        outs.append(dst)
    w2 = time.perf_counter() - t
    print(f"workers2           {rows / w2:>9,.0f} rows/s  ({w2:.2f} s, 4 shards one after the other)")

    t = time.perf_counter()
    vlmdata.convert(src, os.path.join(run, "w2-one.jsonl"), to="internvl", root=root, workers=2)
    one = time.perf_counter() - t
    print(f"workers2-one-file  {rows / one:>9,.0f} rows/s  ({one:.2f} s)")

    t = time.perf_counter()
    if args.address:
        ray.init(address=args.address, logging_level="ERROR")
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    init = time.perf_counter() - t
    expected = b"".join(Path(p).read_bytes() for p in outs)
    ok = True
    try:
        for attempt in ("first", "second"):
            out = os.path.join(run, "ray-out")
            t = time.perf_counter()
            r = vlmdata.convert(shards, out, to="internvl", root=root, engine="ray")
            took = time.perf_counter() - t
            parts = sorted(os.listdir(out))
            got = b"".join(Path(out, p).read_bytes() for p in parts)
            same = got == expected and r.written == rows
            ok = ok and same
            print(
                f"ray ({attempt} run)   {rows / took:>9,.0f} rows/s  ({took:.2f} s, {len(parts)} parts; "
                f"{w2 / took:.2f}x workers2; same bytes: {same})"
            )
        print(f"ray.init           {init:.2f} s (not in the rows/s above)")
    finally:
        ray.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
