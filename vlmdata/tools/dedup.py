"""Near-duplicate removal: one sample per image cluster, and text near-duplicates by MinHash LSH.

``dedup_images`` keeps the first sample of each cluster of samples whose images are perceptual
near-duplicates (every image within ``distance`` bits of the same-position image of one kept
sample, same number of images). Hashes come from ``media.phash`` (cached on disk), the search
from ``near_dup.HammingIndex``; only kept samples are indexed, so a cluster is the first sample and
every later one within ``distance`` of it (no chaining through intermediate copies). Samples without
images, or with an image that cannot be hashed (missing, remote), are kept.

``dedup_text_near`` drops a sample whose media bytes equal an earlier kept sample's and whose
text's word-3-gram set has an estimated Jaccard similarity >= ``threshold`` with it (MinHash,
``num_perm`` permutations, found with ``datasketch.MinHashLSH`` instead of comparing all pairs).
Memory: ~``num_perm`` x 8 bytes per kept sample (1 KB at 128).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vlmdata.convert.engine import batches
from vlmdata.errors import VlmdataError
from vlmdata.media.phash import QUALITY_EXTRA, ImageHasher, require_hashing
from vlmdata.schemas.sample import Sample
from vlmdata.tools.near_dup import HammingIndex
from vlmdata.tools.stream import Drop, Events

_NOOP = Events()
BATCH = 256  # samples whose images are hashed together (threads, one cache query)
SHINGLE = 3


def _where(sample: Sample) -> str:
    return sample.origin.where() if sample.origin else f"id={sample.id}"


def dedup_images(
    samples: Iterable[Sample],
    events: Events | None = None,
    *,
    distance: int = 8,
    hasher: ImageHasher | None = None,
) -> Iterator[Sample]:
    """See the module docstring; the drop names the cluster (its first sample) and the distance."""
    require_hashing("--dedup-images")
    events = events or _NOOP
    own = hasher is None
    h = hasher or ImageHasher()
    index: HammingIndex[int] = HammingIndex(distance)
    kept: list[tuple[list[int], str, Any]] = []  # per kept sample with images: codes, where, id
    try:
        for batch in batches(samples, BATCH):
            yield from _dedup_batch(batch, events, h, index, kept)
    finally:
        if own:
            h.close()


def _dedup_batch(
    batch: list[Sample],
    events: Events,
    hasher: ImageHasher,
    index: HammingIndex[int],
    kept: list[tuple[list[int], str, Any]],
) -> Iterator[Sample]:
    visuals = hasher.get_many(m.resolved or m.path for s in batch for m in s.images)
    for sample in batch:
        codes = [visuals[m.resolved or m.path].phash for m in sample.images]
        if not codes or any(c is None for c in codes):
            yield sample
            continue
        full: list[int] = [c for c in codes if c is not None]
        best: tuple[int, int] | None = None  # (kept number, max distance)
        for k, d0 in index.query(full[0]):
            other = kept[k][0]
            if len(other) != len(full) or (best is not None and k > best[0]):
                continue
            dist = max([d0, *((a ^ b).bit_count() for a, b in zip(full[1:], other[1:], strict=True))])
            if dist <= index.radius:
                best = (k, dist)
        if best is not None:
            _, where, first_id = kept[best[0]]
            n = len(full)
            what = "its image is" if n == 1 else f"its {n} images are"
            events.drop(
                sample,
                Drop(
                    "dedup-images",
                    best[1],
                    f"{what} within {best[1]} bits of {where}'s (kept as the first of the cluster)",
                    {"cluster": where, "cluster_id": first_id, "distance": best[1]},
                ),
            )
            continue
        index.add(full[0], len(kept))
        kept.append((full, _where(sample), sample.id))
        yield sample


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    """Word n-grams of an already normalised text (the whole text when it has fewer words)."""
    words = text.split()
    if len(words) <= n:
        return {" ".join(words)}
    return {" ".join(words[k : k + n]) for k in range(len(words) - n + 1)}


def dedup_text_near(
    samples: Iterable[Sample],
    events: Events | None = None,
    *,
    media_key: Callable[[Sample], Any],
    text_of: Callable[[Sample], str],
    threshold: float = 0.8,
    num_perm: int = 128,
) -> Iterator[Sample]:
    """See the module docstring. ``media_key(sample)`` and ``text_of(sample)`` (normalised text)
    come from ``tools.transforms``."""
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        raise VlmdataError(f"--near-dedup needs the optional datasketch package: {QUALITY_EXTRA}") from None
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    events = events or _NOOP
    # the LSH only proposes candidates (each is checked against ``threshold``); above 0.9 its band
    # layout degenerates, so it is asked for 0.9 then
    lsh = MinHashLSH(threshold=min(threshold, 0.9), num_perm=num_perm)
    kept: list[tuple[tuple[str, ...], str, Any]] = []
    for sample in samples:
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode("utf-8", "surrogatepass") for s in shingles(text_of(sample))])
        media = tuple(media_key(sample))
        best: tuple[int, float] | None = None
        for k in sorted(lsh.query(m)):
            kmedia, _, km = kept[k]
            if kmedia != media:
                continue
            j = m.jaccard(km)
            if j >= threshold:
                best = (k, j)
                break
        if best is not None:
            where = kept[best[0]][1]
            events.drop(
                sample,
                Drop(
                    "near-dedup",
                    round(best[1], 4),
                    f"text ~{best[1]:.0%} similar (MinHash Jaccard of word {SHINGLE}-grams >= {threshold:g}) "
                    f"to {where}, with the same media",
                    {"cluster": where},
                ),
            )
            continue
        lsh.insert(len(kept), m)
        kept.append((media, _where(sample), m))
        yield sample
