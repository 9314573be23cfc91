"""Near-duplicate image detection: hashing speed, index speed at 100k, precision and recall.

    python bench/dedup.py [--images 200] [--size 1024x768] [--index 100000] [--queries 2000] [--json]

1. **Hashing.** ``--images`` synthetic photos (``media.synthetic.base_image``, JPEG q92 at
   ``--size``) are hashed by ``ImageHasher`` (thumbnail decode with JPEG draft mode, DCT pHash) in
   one thread and in a pool, with the cache off; then once more with a warm on-disk cache; and,
   for reference, ``imagehash.phash`` over a full ``Image.open().convert("L")`` decode.
2. **Precision / recall.** Every original gets one copy of each kind (resize 0.4-1.6x, JPEG
   q60-100, crop 2-6% per side, colour jitter +-20%). Each copy and each original is looked up in a
   ``HammingIndex`` of the originals: a hit on its own original is a true positive, a hit on any
   other original a false positive (each unordered pair once). Reported per distance threshold,
   with the recall per edit kind.
3. **Index.** ``--index`` random 64-bit codes (10% of them planted copies at distance 1-8 of
   another) are filed in a ``HammingIndex``; build time, then ``--queries`` lookups at radius 6 and
   8: time per query and codes compared per query, against a brute-force scan (whose results must
   be the same).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from vlmdata.media.phash import ImageHasher, have_hashing
from vlmdata.media.synthetic import EDITS, base_image, edit
from vlmdata.tools.near_dup import HammingIndex, brute_force

THRESHOLDS = (2, 4, 6, 8, 10, 12, 14)


def make_images(folder: Path, n: int, size: tuple[int, int]) -> tuple[list[str], list[tuple[int, str, str]]]:
    originals, copies = [], []
    for i in range(n):
        im = base_image(i, size)
        p = folder / f"o{i}.jpg"
        im.save(p, quality=92)
        originals.append(str(p))
        rng = random.Random(10_000 + i)
        for kind in EDITS:
            q = folder / f"{kind}{i}.jpg"
            edit(im, kind, rng).save(q, quality=92)
            copies.append((i, kind, str(q)))
    return originals, copies


def hashing(paths: list[str], cache_dir: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for threads in (1, os.cpu_count() or 1):
        with ImageHasher(threads=threads, cache=False) as h:
            t = time.perf_counter()
            h.get_many(paths)
            out[f"hashes/s, cold, {threads} thread(s)"] = len(paths) / (time.perf_counter() - t)
    with ImageHasher(cache_dir=cache_dir) as h:
        h.get_many(paths)
    with ImageHasher(cache_dir=cache_dir) as h:
        t = time.perf_counter()
        h.get_many(paths)
        out["hashes/s, warm cache"] = len(paths) / (time.perf_counter() - t)
    try:
        import imagehash
    except ImportError:
        return out
    sample = paths[: min(len(paths), 200)]
    t = time.perf_counter()
    for p in sample:
        with Image.open(p) as im:
            imagehash.phash(im.convert("L"))
    out["hashes/s, full decode + imagehash (1 thread)"] = len(sample) / (time.perf_counter() - t)
    return out


def precision_recall(originals: list[str], copies: list[tuple[int, str, str]]) -> list[dict[str, object]]:
    with ImageHasher(cache=False) as h:
        codes = h.get_many(originals + [c for _, _, c in copies])
    orig = [codes[p].phash for p in originals]
    rows = []
    for t in THRESHOLDS:
        index: HammingIndex[int] = HammingIndex(t)
        for k, c in enumerate(orig):
            index.add(c, k)  # type: ignore[arg-type]
        tp = 0
        false_pairs: set[tuple[str, int]] = set()
        by_kind = dict.fromkeys(EDITS, 0)
        for i, kind, path in copies:
            for k, _ in index.query(codes[path].phash):  # type: ignore[arg-type]
                if k == i:
                    tp += 1
                    by_kind[kind] += 1
                else:
                    false_pairs.add((path, k))
        for i, c in enumerate(orig):
            for k, _ in index.query(c):  # type: ignore[arg-type]
                if k > i:
                    false_pairs.add((originals[i], k))
        fp = len(false_pairs)
        per_kind = len(copies) // len(EDITS)
        rows.append(
            {
                "distance": t,
                "true_pairs": tp,
                "false_pairs": fp,
                "precision": tp / (tp + fp) if tp + fp else 1.0,
                "recall": tp / len(copies),
                **{f"recall_{k}": by_kind[k] / per_kind for k in EDITS},
            }
        )
    return rows


def index_timing(n: int, queries: int) -> list[dict[str, float]]:
    rng = random.Random(0)
    codes = [rng.getrandbits(64) for _ in range(n - n // 10)]
    for _ in range(n // 10):
        base = rng.choice(codes)
        for b in rng.sample(range(64), rng.randint(1, 8)):
            base ^= 1 << b
        codes.append(base)
    qs = [codes[rng.randrange(len(codes))] ^ (1 << rng.randrange(64)) for _ in range(queries)]
    rows = []
    for radius in (6, 8):
        index: HammingIndex[int] = HammingIndex(radius)
        t = time.perf_counter()
        for k, c in enumerate(codes):
            index.add(c, k)
        build = time.perf_counter() - t
        t = time.perf_counter()
        results = [index.query(q) for q in qs]
        per_query = (time.perf_counter() - t) / len(qs)
        check = min(50, len(qs))
        t = time.perf_counter()
        for q, got in zip(qs[:check], results[:check], strict=True):
            if sorted(got) != sorted(brute_force(codes, q, radius)):
                raise SystemExit(f"index and brute force disagree at radius {radius}")
        brute = (time.perf_counter() - t) / check
        rows.append(
            {
                "codes": len(codes),
                "radius": radius,
                "build_s": build,
                "query_ms": per_query * 1000,
                "compared_per_query": index.candidates / len(qs),
                "brute_force_query_ms": brute * 1000,
                "all_pairs_estimate_s": brute * len(codes),
                "index_all_pairs_estimate_s": per_query * len(codes),
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--size", default="1024x768")
    ap.add_argument("--index", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not have_hashing():
        print("bench/dedup.py needs numpy: pip install 'vlmdata[quality]'", file=sys.stderr)
        return 2
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        originals, copies = make_images(Path(tmp), args.images, (w, h))
        made = time.perf_counter() - t
        speed = hashing(originals + [c for _, _, c in copies], os.path.join(tmp, "cache"))
        pr = precision_recall(originals, copies)
    idx = index_timing(args.index, args.queries)
    result = {"images": len(originals) + len(copies), "generated_s": made, "hashing": speed, "precision_recall": pr,
              "index": idx}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(originals)} originals + {len(copies)} copies at {w}x{h} (generated in {made:.1f}s)")
    for k, v in speed.items():
        print(f"  {k:<48} {v:>9,.0f}")
    print("\nnear-duplicate detection (copy -> its original; originals against each other):")
    head = f"  {'bits':>4} {'precision':>9} {'recall':>7} " + " ".join(f"{k:>7}" for k in EDITS) + "  false pairs"
    print(head)
    for r in pr:
        kinds = " ".join(f"{r[f'recall_{k}']:>7.1%}" for k in EDITS)
        print(f"  {r['distance']:>4} {r['precision']:>9.1%} {r['recall']:>7.1%} {kinds}  {r['false_pairs']}")
    print(f"\nHamming index over {idx[0]['codes']:,} codes ({args.queries} queries):")
    for r in idx:
        print(
            f"  radius {r['radius']}: build {r['build_s']:.2f}s, query {r['query_ms']:.3f} ms "
            f"({r['compared_per_query']:.0f} codes compared), brute force {r['brute_force_query_ms']:.1f} ms/query; "
            f"every code against all: {r['index_all_pairs_estimate_s']:.0f}s with the index, "
            f"{r['all_pairs_estimate_s']:.0f}s brute force"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
