"""The on-disk sample store the training set lives in (vlmdata/train/store.py)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Origin, Ref, Sample, Text
from vlmdata.train.store import SampleStore


def make(i: int) -> Sample:
    return Sample(
        [
            Message("user", [ImageSlot(0), Text(f"Where is object {i}? " + "padding text " * (i % 7))]),
            Message("assistant", [Ref(f"object {i}"), Boxes((Box(i, i + 1, i + 10, i + 11, Frame.PIXEL),))]),
        ],
        images=[MediaRef(f"img/{i}.jpg", f"/data/img/{i}.jpg", 640, 480)],
        id=f"s{i}",
        origin=Origin("train.jsonl", i + 1, i, f"s{i}"),
    )


def test_samples_come_back_equal_in_any_order(tmp_path: Path):
    store = SampleStore(str(tmp_path))
    originals = [make(i) for i in range(300)]
    for s in originals:
        store.append(s)
    store.seal()
    assert len(store) == 300 and bool(store)
    for i in (299, 0, 150, -1):
        assert store[i] == originals[i]
    assert list(store) == originals
    store.close()
    assert not os.path.exists(store.path)


def test_memory_holds_offsets_not_samples(tmp_path: Path):
    n = 20_000
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        store = SampleStore(str(tmp_path))
        for i in range(n):
            store.append(make(i))
        store.seal()
        held = tracemalloc.get_traced_memory()[0] - base
        as_objects = [make(i) for i in range(2000)]
        objects = (tracemalloc.get_traced_memory()[0] - base - held) / len(as_objects)
    finally:
        tracemalloc.stop()
    per_sample = held / n
    assert per_sample < 40  # two array slots (12 bytes) plus amortised growth
    assert objects > 20 * per_sample  # the same samples as Python objects
    assert os.path.getsize(store.path) > 100 * n  # they went to disk
    store.close()


def test_a_forked_dataloader_worker_reads_the_same_samples(tmp_path: Path):
    torch = pytest.importorskip("torch")
    store = SampleStore(str(tmp_path))
    for i in range(64):
        store.append(make(i))
    store.seal()
    loader = torch.utils.data.DataLoader(store, batch_size=8, num_workers=2, collate_fn=lambda b: [s.id for s in b])
    ids = [i for batch in loader for i in batch]
    assert ids == [f"s{i}" for i in range(64)]
    assert os.path.exists(store.path)  # a worker exiting does not delete the parent's file
    store.close()
    assert not os.path.exists(store.path)
