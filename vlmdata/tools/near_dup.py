"""Near-duplicate search over 64-bit perceptual hashes by Hamming distance, without all pairs.

``HammingIndex`` is multi-index hashing (Norouzi et al., 2012): each code is cut into ``CHUNKS``
16-bit pieces and filed under each piece in its own table. By the pigeonhole principle, two codes
within distance ``radius`` agree within ``radius // CHUNKS`` bits on at least one piece, so a query
looks up every value within that many bits of each of its pieces (1 + 16 + 120... lookups per
piece) and checks only the codes found there. With 100k random-ish codes a 16-bit table holds
~1.5 codes per value, so a query at radius 6 checks ~100 candidates instead of 100k.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations
from typing import Generic, TypeVar

K = TypeVar("K")

BITS = 64
CHUNKS = 4
CHUNK_BITS = BITS // CHUNKS
_MASK = (1 << CHUNK_BITS) - 1


def _flips(radius: int) -> list[int]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    out = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(CHUNK_BITS), r):
            m = 0
            for b in bits:
                m |= 1 << b
            out.append(m)
    return out


class HammingIndex(Generic[K]):
    """Codes (64-bit ints) with a key each; ``query(code)`` finds the keys within ``radius`` bits."""

    def __init__(self, radius: int) -> None:
        if not 0 <= radius <= 32:
            raise ValueError(f"radius must be 0..32 bits, got {radius}")
        self.radius = radius
        self._flips = _flips(radius // CHUNKS)
        self._tables: list[dict[int, list[int]]] = [{} for _ in range(CHUNKS)]
        self._codes: list[int] = []  # distinct codes, by slot
        self._slot: dict[int, int] = {}  # code -> slot
        self._keys: list[list[K]] = []  # slot -> keys filed under that code
        self.candidates = 0  # codes compared over all queries (what the index saves)

    def __len__(self) -> int:
        return sum(len(k) for k in self._keys)

    def add(self, code: int, key: K) -> None:
        slot = self._slot.get(code)
        if slot is None:
            slot = len(self._codes)
            self._slot[code] = slot
            self._codes.append(code)
            self._keys.append([])
            for c in range(CHUNKS):
                self._tables[c].setdefault((code >> (c * CHUNK_BITS)) & _MASK, []).append(slot)
        self._keys[slot].append(key)

    def query(self, code: int) -> list[tuple[K, int]]:
        """(key, distance) for every key whose code is within ``radius`` of ``code``, nearest first
        (ties in the order they were added)."""
        seen: set[int] = set()
        found: list[tuple[int, int]] = []
        radius, codes = self.radius, self._codes
        for c in range(CHUNKS):
            table = self._tables[c]
            piece = (code >> (c * CHUNK_BITS)) & _MASK
            for flip in self._flips:
                slots = table.get(piece ^ flip)
                if not slots:
                    continue
                for slot in slots:
                    if slot in seen:
                        continue
                    seen.add(slot)
                    d = (codes[slot] ^ code).bit_count()
                    if d <= radius:
                        found.append((d, slot))
        self.candidates += len(seen)
        found.sort()
        return [(key, d) for d, slot in found for key in self._keys[slot]]

    def nearest(self, code: int) -> tuple[K, int] | None:
        hits = self.query(code)
        return hits[0] if hits else None


def brute_force(codes: list[int], code: int, radius: int) -> Iterator[tuple[int, int]]:
    """(position, distance) of every code within ``radius``: the reference the index must equal."""
    for k, other in enumerate(codes):
        d = (other ^ code).bit_count()
        if d <= radius:
            yield k, d
