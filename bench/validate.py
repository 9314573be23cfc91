"""Header probing (cold, cached) against a full PIL decode, and ``vlmdata validate`` cold vs warm.

    python bench/validate.py [--images 5000] [--workdir DIR] [--threads 8] [--repeat 1] [--no-evict] [--json]

Generates ``--images`` small JPEG and PNG files (sizes 32-640 px per side, deterministic; a few
EXIF-rotated JPEGs) and an InternVL JSONL naming them with their sizes, under ``--workdir`` (kept)
or a temporary folder (removed), then measures in this one process:

* ``probe cold``: ``MediaInspector(cache_dir=<empty folder>, threads=T).inspect_many(all paths)``,
  the cache written and closed (what a first ``vlmdata validate`` pays per image);
* ``probe warm``: the same with the cache the cold run left (a second run over unchanged images);
* ``probe, no cache``: the probe alone, with the cache off;
* ``decode``: ``Image.open(p).convert("RGB")`` of the same images, in one thread (what one
  data-loader worker does per image) and in a pool of T threads (Pillow's decoders release the GIL);
* ``evicted:`` rows (default where ``os.posix_fadvise`` exists): the image files are dropped from
  the page cache (``sync`` + ``POSIX_FADV_DONTNEED`` per file, no root needed) before the pass, so
  that file reads hit the disk, as on a first run over a dataset not read recently (inodes stay
  cached; on a VM the host may still cache the disk): cold probes in 1 and T threads, the warm
  probe (which reads no file data) and the threaded decode;
* ``validate()`` wall time over the JSONL (every rule, ``--target internvl``) with an empty cache
  folder, then again with the cache it left.

Files are written once; every timed pass sees the page cache as described. ``--repeat N`` keeps
the best of N for each row. The validation must report no errors (the data is clean; the rotated
JPEGs give VD310 warnings), or the script exits 1.

``--against-convert ROWS`` measures instead what issue 13 asks of ``validate`` (docs/performance.md):
on one ``bench/generate.py`` file of ROWS ms-swift rows over 1,000 real images, in this process,
best of ``--repeat``: ``vlmdata.convert`` serially to InternVL, ``vlmdata.validate`` with the record
rules only (``--select VD0,VD1,VD2,VD4``), and ``validate`` with every rule and the probe cache
already filled (``images warm``); rows/s and each ratio to convert's rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from vlmdata.media.inspect import MediaInspector
from vlmdata.validators import validate

ROTATED_EVERY = 200  # one JPEG in 200 carries EXIF orientation 6


def generate(workdir: str, n: int) -> tuple[list[str], str]:
    """``n`` images under workdir/images and workdir/train.jsonl; returns (absolute paths, jsonl)."""
    rng = random.Random(1234)
    img_dir = os.path.join(workdir, "images")
    os.makedirs(img_dir, exist_ok=True)
    bases = []
    for k in range(6):  # textured canvases to crop from: gradients, shapes and some noise
        base = Image.linear_gradient("L").resize((960, 960)).convert("RGB")
        draw = ImageDraw.Draw(base)
        for _ in range(40):
            x, y = rng.randrange(900), rng.randrange(900)
            color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)), fill=color)
        noise = Image.effect_noise((960, 960), 12 + 4 * k).convert("RGB")
        bases.append(Image.blend(base, noise, 0.25))
    rotated = Image.Exif()
    rotated[0x0112] = 6
    paths, rows = [], []
    for i in range(n):
        w, h = rng.randint(32, 640), rng.randint(32, 640)
        x, y = rng.randint(0, 960 - w), rng.randint(0, 960 - h)
        im = bases[i % len(bases)].crop((x, y, x + w, y + h))
        sub = f"{i // 1000:02d}"
        os.makedirs(os.path.join(img_dir, sub), exist_ok=True)
        if i % 3 == 2:
            rel = f"{sub}/{i:06d}.png"
            im.save(os.path.join(img_dir, rel), compress_level=1)
        else:
            rel = f"{sub}/{i:06d}.jpg"
            extra = {"exif": rotated} if i % ROTATED_EVERY == 0 else {}
            im.save(os.path.join(img_dir, rel), quality=85, **extra)
        paths.append(os.path.join(img_dir, rel))
        rows.append(
            {
                "id": i,
                "image": rel,
                "width": w,
                "height": h,
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe the image."},
                    {"from": "gpt", "value": f"A {w}x{h} test image."},
                ],
            }
        )
    jsonl = os.path.join(workdir, "train.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return paths, jsonl


def evict(paths: list[str]) -> bool:
    """Drop the files' pages from the page cache; False where the OS cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.sync()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def probe(paths: list[str], cache_dir: str, threads: int) -> float:
    started = time.perf_counter()
    with MediaInspector(cache_dir=cache_dir, threads=threads) as ins:
        infos = ins.inspect_many(paths)
    seconds = time.perf_counter() - started
    bad = [p for p, i in infos.items() if i.error or not i.width]
    if bad:
        raise SystemExit(f"probe failed on {len(bad)} images, e.g. {bad[0]}: {infos[bad[0]].error}")
    return seconds


def decode_one(path: str) -> int:
    with Image.open(path) as im:
        return im.convert("RGB").width


def decode(paths: list[str], threads: int) -> float:
    started = time.perf_counter()
    if threads == 1:
        for p in paths:
            decode_one(p)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(decode_one, paths, chunksize=64))
    return time.perf_counter() - started


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def against_convert(rows: int, workdir: str | None, repeat: int, as_json: bool) -> int:
    """validate's rows/s next to convert's on the same generated ms-swift file (see the module doc)."""
    import vlmdata

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from generate import generate as generate_rows

    workdir = workdir or tempfile.mkdtemp(prefix="vlmdata-bench-validate-")
    src, _ = generate_rows(workdir, rows, n_images=1000)
    out = os.path.join(workdir, "out", "internvl.jsonl")
    cache = os.path.join(workdir, "probe-cache")
    vlmdata.validate(src, root=workdir, cache_dir=cache)  # fills the probe cache (untimed)

    def run_convert() -> float:
        t = time.perf_counter()
        report = vlmdata.convert(src, out, to="internvl", root=workdir, workers=1)
        assert report.written == rows, report.rejections[:3]
        return time.perf_counter() - t

    def run_validate(select: list[str] | None) -> Callable[[], float]:
        def once() -> float:
            t = time.perf_counter()
            report = vlmdata.validate(src, root=workdir, select=select, cache_dir=cache)
            assert report.records == rows and report.errors == 0, report.findings[:3]
            return time.perf_counter() - t

        return once

    seconds = {
        "convert (serial)": best(repeat, run_convert),
        "validate (records only)": best(repeat, run_validate(["VD0", "VD1", "VD2", "VD4"])),
        "validate (all rules, images warm)": best(repeat, run_validate(None)),
    }
    base = rows / seconds["convert (serial)"]
    result = {name: {"rows_per_s": rows / s, "x_convert": rows / s / base, "seconds": s} for name, s in seconds.items()}
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{rows:,} ms-swift rows, 1,000 images, best of {repeat}; {os.cpu_count()} CPUs")
    print(f"{'variant':36} {'rows/s':>10} {'x convert':>10}")
    for name, r in result.items():
        print(f"{name:36} {r['rows_per_s']:>10,.0f} {r['x_convert']:>10.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--workdir", help="keep the generated data here (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=8, help="probe threads (MediaInspector's default: 8)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the probe and validate rows")
    ap.add_argument("--decode-repeat", type=int, default=1, help="best of N for the (slow) decode rows")
    ap.add_argument("--no-evict", action="store_true", help="skip the rows with the page cache dropped")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--against-convert", type=int, metavar="ROWS", help="validate next to convert on ROWS rows")
    args = ap.parse_args(argv)
    if args.against_convert:
        return against_convert(args.against_convert, args.workdir, args.repeat, args.json)

    workdir = args.workdir or tempfile.mkdtemp(prefix="vlmdata-bench-validate-")
    os.makedirs(workdir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="cache-", dir=workdir)
    counter = [0]

    def fresh_cache() -> str:
        counter[0] += 1
        return os.path.join(scratch, f"c{counter[0]}")

    rows: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        paths, jsonl = generate(workdir, args.images)
        gen_s = time.perf_counter() - t0
        n, th, rep = len(paths), args.threads, args.repeat
        probe(paths[:50], "off", th)  # untimed: imports, thread start-up
        decode(paths[:5], 1)

        warm_dir = fresh_cache()
        cold = probe(paths, warm_dir, th)  # leaves the cache that the warm rows use
        rows[f"probe cold (empty cache), {th} threads"] = min(
            [cold, *(probe(paths, fresh_cache(), th) for _ in range(rep - 1))]
        )
        rows[f"probe warm (cache hits), {th} threads"] = best(rep, lambda: probe(paths, warm_dir, th))
        rows[f"probe, no cache, {th} threads"] = best(rep, lambda: probe(paths, "off", th))
        rows["probe, no cache, 1 thread"] = best(rep, lambda: probe(paths, "off", 1))
        rows["decode Image.open().convert('RGB'), 1 thread"] = best(args.decode_repeat, lambda: decode(paths, 1))
        rows[f"decode, {th} threads"] = best(args.decode_repeat, lambda: decode(paths, th))
        if not args.no_evict and evict(paths):

            def evicted(run: Callable[[], float]) -> Callable[[], float]:
                def wrapped() -> float:
                    evict(paths)
                    return run()

                return wrapped

            rows["evicted: probe cold, 1 thread"] = best(rep, evicted(lambda: probe(paths, fresh_cache(), 1)))
            rows[f"evicted: probe cold, {th} threads"] = best(rep, evicted(lambda: probe(paths, fresh_cache(), th)))
            rows[f"evicted: probe warm, {th} threads"] = best(rep, evicted(lambda: probe(paths, warm_dir, th)))
            rows[f"evicted: decode, {th} threads"] = best(args.decode_repeat, evicted(lambda: decode(paths, th)))

        root = os.path.join(workdir, "images")
        vdir = fresh_cache()

        def run_validate(cache_dir: str, **kw: Any) -> float:
            report = validate(jsonl, target="internvl", root=root, cache_dir=cache_dir, threads=th, **kw)
            if report.errors or report.records != n:
                first = next((f for f in report.findings if f.severity == "error"), None)
                raise SystemExit(f"validate: {report.records} records, {report.errors} errors, e.g. {first}")
            return report.seconds

        v_cold = min([run_validate(vdir), *(run_validate(fresh_cache()) for _ in range(rep - 1))])
        v_warm = best(rep, lambda: run_validate(vdir))
        v_off = best(rep, lambda: run_validate("off"))
        v_nomedia = best(rep, lambda: run_validate(vdir, ignore=["VD3"]))
    finally:
        shutil.rmtree(scratch if args.workdir else workdir, ignore_errors=True)

    result: dict[str, Any] = {
        "images": n,
        "generate_s": round(gen_s, 2),
        "threads": th,
        "cpus": os.cpu_count(),
        "probe_and_decode": {name: {"seconds": round(s, 4), "images_per_s": round(n / s)} for name, s in rows.items()},
        "validate_s": {
            "cold_cache": round(v_cold, 3),
            "warm_cache": round(v_warm, 3),
            "cache_off": round(v_off, 3),
            "without_vd3_media_rules": round(v_nomedia, 3),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{n} images ({n - n // 3} JPEG, {n // 3} PNG, 32-640 px) generated in {gen_s:.1f}s; "
        f"{os.cpu_count()} CPUs; best of {rep} (decode: {args.decode_repeat})"
    )
    width = max(map(len, rows))
    for name, s in rows.items():
        print(f"  {name:<{width}}  {n / s:>9,.0f} images/s  {s * 1000:>7,.0f} ms")
    cold_s, warm_s = rows[f"probe cold (empty cache), {th} threads"], rows[f"probe warm (cache hits), {th} threads"]
    line = f"cache speed-up, probe cold / warm: {cold_s / warm_s:.1f}x (page-cached files)"
    if f"evicted: probe warm, {th} threads" in rows:
        e_warm = rows[f"evicted: probe warm, {th} threads"]
        line += (
            f", {rows[f'evicted: probe cold, {th} threads'] / e_warm:.1f}x (evicted, {th} threads), "
            f"{rows['evicted: probe cold, 1 thread'] / e_warm:.1f}x (evicted, cold in 1 thread)"
        )
    print(line)
    ratio = rows["decode Image.open().convert('RGB'), 1 thread"] / rows["probe, no cache, 1 thread"]
    print(f"header probe vs full decode, both in 1 thread: {ratio:.0f}x faster")
    print(
        f"validate({os.path.basename(jsonl)}: {n} records, all rules, --target internvl): cold cache {v_cold:.2f}s, "
        f"warm cache {v_warm:.2f}s ({v_cold / v_warm:.1f}x), cache off {v_off:.2f}s, "
        f"without the VD3 rules {v_nomedia:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
