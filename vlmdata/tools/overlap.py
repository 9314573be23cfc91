"""Train/eval leakage and image overlap between the datasets of a mixture.

``find_overlap(train, eval)`` reads every record of both sides (files, folders, InternVL meta
files, LLaMA-Factory ``dataset_info.json``: every dataset they name) and reports:

* **leaks**: every (eval sample, train sample) pair whose images are near-duplicates (perceptual
  hashes within ``image_distance`` bits, ``media.phash``, searched with ``near_dup.HammingIndex``)
  or whose normalised question+answer text is equal, or both; each side with file:line (id).
* **shared**: for every two training datasets, how many distinct images of one have a
  near-duplicate in the other. InternVL trains each dataset ``repeat_time`` times per epoch, so a
  shared image is seen ``repeat_a + repeat_b`` times, not once.

Images that cannot be hashed (missing, remote, undecodable) are counted as ``unhashed``; their
samples can still leak by text.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vlmdata.convert.codec import Options
from vlmdata.convert.engine import RecordSource, batches, describe_rejection
from vlmdata.convert.io import small_json_object
from vlmdata.convert.sharegpt import load_dataset_info
from vlmdata.errors import VlmdataError
from vlmdata.media.phash import ImageHasher, require_hashing
from vlmdata.schemas.sample import Ref, Sample, Text, where
from vlmdata.tools.near_dup import HammingIndex
from vlmdata.tools.stats import targets
from vlmdata.tools.transforms import normalize_text

DEFAULT_DISTANCE = 10  # bits of 64: in bench/dedup.py no false pair, 98% of 1-3% crops, 71% of 2-6% crops
CHUNK = 2000


@dataclass
class Dataset:
    """One data file of an input, with the name and repeat factor the mixture gives it."""

    name: str
    path: str
    root: str | None
    format: str | None = None
    repeat_time: float = 1.0
    dataset_info: str | None = None
    dataset_name: str | None = None
    samples: int = 0
    unreadable: int = 0
    images: int = 0
    unhashed: int = 0


@dataclass(slots=True)
class SampleRef:
    """Where one sample is: dataset, file, line (or index) and id."""

    dataset: str
    file: str
    line: int | None
    index: int
    id: Any

    def where(self) -> str:
        return where(self.file, self.line, self.index, self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "file": self.file, "line": self.line, "index": self.index, "id": self.id}


def is_dataset_info(path: str) -> bool:
    """A LLaMA-Factory dataset_info.json: by name, or a JSON object whose entries have ``file_name``."""
    if not path.endswith(".json") or not os.path.isfile(path):
        return False
    if os.path.basename(path) == "dataset_info.json":
        return True
    data = small_json_object(path)
    return data is not None and all(
        isinstance(v, dict) and "file_name" in v and "annotation" not in v for v in data.values()
    )


def datasets_of(paths: Iterable[str], root: str | None) -> list[Dataset]:
    """Every dataset that ``paths`` name (a meta file or dataset_info.json names several)."""
    out: list[Dataset] = []
    plain: list[str] = []
    for path in paths:
        if is_dataset_info(path):
            out.extend(_dataset_info_entries(path, root))
        else:
            plain.append(path)
    for t in targets(plain, root):
        entry = t.meta_entry or {}
        r = entry.get("repeat_time", 1)
        repeat = float(r) if isinstance(r, int | float) and not isinstance(r, bool) and r > 0 else 1.0
        out.append(Dataset(t.meta_name or t.path, t.path, t.root, t.format, repeat))
    return out


def _dataset_info_entries(path: str, root: str | None) -> list[Dataset]:
    info = load_dataset_info(path, must_exist=True)  # not JSON, or not an object: exit 2 naming the file
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for name, entry in info.items():
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if not isinstance(file_name, str):
            continue  # hub datasets: nothing local to read
        data = os.path.join(folder, file_name)
        if not os.path.isfile(data):
            raise VlmdataError(f"{path}: entry {name!r} names {data}, which is not a file")
        fmt = "sharegpt" if entry.get("formatting", "alpaca") == "sharegpt" else None
        out.append(Dataset(name, data, root, fmt, 1.0, path if fmt else None, name if fmt else None))
    if not out:
        raise VlmdataError(f"{path}: no entry with a local file_name")
    return out


def iter_samples(ds: Dataset) -> Iterator[tuple[SampleRef, Sample | None, str | None]]:
    """(where, sample, None) for each readable record, (where, None, why) for the others."""
    options = Options(root=ds.root, allow_outside_root=True, dataset_info=ds.dataset_info, dataset_name=ds.dataset_name)
    with RecordSource(ds.path, ds.format, options) as source:
        for item in source.items():
            raw, sample = item.raw, item.sample
            if sample is not None:
                yield SampleRef(ds.name, ds.path, raw.line, raw.index, sample.id), sample, None
            else:
                assert item.rejection is not None
                why = item.rejection.error if item.syntax else describe_rejection(item.rejection)
                yield SampleRef(ds.name, ds.path, raw.line, raw.index, None), None, why


def _phashes(hasher: Any, paths: list[str]) -> dict[str, int | None]:
    """Each image's perceptual hash (None: unreadable), hashed and cached in chunks."""
    codes: dict[str, int | None] = {}
    for chunk in batches(iter(paths), CHUNK):
        codes.update((p, v.phash) for p, v in hasher.get_many(chunk).items())
    return codes


def qa_text(sample: Sample) -> str:
    """The normalised question+answer text (user and assistant turns; media tags and boxes left out)."""
    lines = []
    for m in sample.messages:
        if m.role in ("user", "assistant"):
            lines.append("".join(p.text for p in m.parts if isinstance(p, Text | Ref)))
    return normalize_text("\n".join(lines))


def image_paths(sample: Sample) -> list[str]:
    return [m.resolved or m.path for m in sample.images]


@dataclass
class Leak:
    eval: SampleRef
    train: SampleRef
    image_distance: int | None = None  # None: the images do not match
    text: bool = False

    @property
    def kind(self) -> str:
        if self.image_distance is not None and self.text:
            return "both"
        return "image" if self.image_distance is not None else "text"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "image_distance": self.image_distance,
            "eval": self.eval.to_dict(),
            "train": self.train.to_dict(),
        }


@dataclass
class OverlapReport:
    train: list[Dataset] = field(default_factory=list)
    eval: list[Dataset] = field(default_factory=list)
    image_distance: int = DEFAULT_DISTANCE
    images_checked: bool = True
    text_checked: bool = True
    leaks: list[Leak] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hashed: int = 0
    hash_seconds: float = 0.0

    @property
    def eval_samples(self) -> int:
        return sum(d.samples for d in self.eval)

    @property
    def leaked_eval_samples(self) -> int:
        return len({(x.eval.file, x.eval.index) for x in self.leaks})

    def to_dict(self) -> dict[str, Any]:
        def ds(d: Dataset) -> dict[str, Any]:
            return {
                "name": d.name,
                "file": d.path,
                "samples": d.samples,
                "unreadable": d.unreadable,
                "images": d.images,
                "unhashed_images": d.unhashed,
                "repeat_time": d.repeat_time,
            }

        return {
            "train": [ds(d) for d in self.train],
            "eval": [ds(d) for d in self.eval],
            "image_distance": self.image_distance if self.images_checked else None,
            "text": self.text_checked,
            "eval_samples": self.eval_samples,
            "leaked_eval_samples": self.leaked_eval_samples,
            "clean_eval_samples": self.eval_samples - self.leaked_eval_samples,
            "leaks": [x.to_dict() for x in self.leaks],
            "leaks_by_kind": {k: sum(1 for x in self.leaks if x.kind == k) for k in ("image", "text", "both")},
            "shared_images": self.shared,
            "errors": self.errors,
        }


class _Side:
    """The samples of one side, reduced to what matching needs."""

    def __init__(self) -> None:
        self.refs: list[SampleRef] = []
        self.images: list[list[str]] = []
        self.texts: list[str] = []


def _read(datasets: list[Dataset], report: OverlapReport, text: bool) -> _Side:
    side = _Side()
    for ds in datasets:
        for ref, sample, why in iter_samples(ds):
            if sample is None:
                ds.unreadable += 1
                if len(report.errors) < 20:
                    report.errors.append(f"{ref.where()}: {why}")
                continue
            ds.samples += 1
            side.refs.append(ref)
            paths = image_paths(sample)
            ds.images += len(paths)
            side.images.append(paths)
            side.texts.append(qa_text(sample) if text else "")
    return side


def find_overlap(
    train: Iterable[str],
    eval_: Iterable[str],
    *,
    root: str | None = None,
    eval_root: str | None = None,
    image_distance: int = DEFAULT_DISTANCE,
    images: bool = True,
    text: bool = True,
    hasher: ImageHasher | None = None,
    cache_dir: str | None = None,
) -> OverlapReport:
    """See the module docstring. ``eval_`` may be empty (then only the mixture's shared images)."""
    if images:
        require_hashing("image overlap (--no-images checks text only)")
    report = OverlapReport(image_distance=image_distance, images_checked=images, text_checked=text)
    report.train = datasets_of(train, root)
    report.eval = datasets_of(eval_, eval_root if eval_root is not None else root)
    tr = _read(report.train, report, text)
    ev = _read(report.eval, report, text)
    pairs: dict[tuple[int, int], Leak] = {}
    if images and (ev.refs or len(report.train) > 1):  # else there is nothing to compare images with
        own = hasher is None
        h = hasher or ImageHasher(cache_dir=cache_dir)
        try:
            _image_leaks(report, tr, ev, h, image_distance, pairs)
        finally:
            report.hashed = h.computed
            report.hash_seconds = h.seconds
            if own:
                h.close()
    if text:
        by_text: dict[str, list[int]] = defaultdict(list)
        for k, t in enumerate(tr.texts):
            if t:
                by_text[t].append(k)
        for e, t in enumerate(ev.texts):
            for k in by_text.get(t, ()) if t else ():
                leak = pairs.get((e, k))
                if leak is None:
                    pairs[(e, k)] = Leak(ev.refs[e], tr.refs[k], None, True)
                else:
                    leak.text = True
    report.leaks = [pairs[key] for key in sorted(pairs)]
    return report


def _image_leaks(
    report: OverlapReport,
    tr: _Side,
    ev: _Side,
    hasher: ImageHasher,
    distance: int,
    pairs: dict[tuple[int, int], Leak],
) -> None:
    datasets = {d.name: d for d in report.train}
    eval_datasets = {d.name: d for d in report.eval}
    # distinct training images: path -> slot; slot -> samples using it and their datasets
    slot_of: dict[str, int] = {}
    users: list[list[int]] = []
    for k, paths in enumerate(tr.images):
        for p in paths:
            slot = slot_of.setdefault(p, len(slot_of))
            if slot == len(users):
                users.append([])
            if not users[slot] or users[slot][-1] != k:
                users[slot].append(k)
    train_paths = list(slot_of)
    codes = _phashes(hasher, train_paths)
    index: HammingIndex[int] = HammingIndex(distance)
    for p, slot in slot_of.items():
        code = codes.get(p)
        if code is None:
            for k in users[slot]:
                datasets[tr.refs[k].dataset].unhashed += 1
            continue
        index.add(code, slot)
    # eval leaks
    eval_paths = list(dict.fromkeys(p for paths in ev.images for p in paths))
    ecodes = _phashes(hasher, eval_paths)
    for e, paths in enumerate(ev.images):
        for p in paths:
            code = ecodes.get(p)
            if code is None:
                eval_datasets[ev.refs[e].dataset].unhashed += 1
                continue
            for slot, d in index.query(code):
                for k in users[slot]:
                    leak = pairs.get((e, k))
                    if leak is None:
                        pairs[(e, k)] = Leak(ev.refs[e], tr.refs[k], d)
                    elif leak.image_distance is None or d < leak.image_distance:
                        leak.image_distance = d
    # images shared between training datasets
    if len(report.train) < 2:
        return
    owners: list[set[str]] = [{tr.refs[k].dataset for k in users[slot]} for slot in range(len(users))]
    shared: dict[tuple[str, str], set[int]] = defaultdict(set)
    examples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for p, slot in slot_of.items():
        code = codes.get(p)
        if code is None:
            continue
        for other, d in index.query(code):
            for a in owners[slot]:
                for b in owners[other]:
                    if a == b or slot in shared[(a, b)]:
                        continue
                    shared[(a, b)].add(slot)
                    if len(examples[(a, b)]) < 5:
                        examples[(a, b)].append(
                            {
                                "a": tr.refs[next(k for k in users[slot] if tr.refs[k].dataset == a)].where(),
                                "b": tr.refs[next(k for k in users[other] if tr.refs[k].dataset == b)].where(),
                                "distance": d,
                            }
                        )
    distinct: dict[str, int] = defaultdict(int)
    for o in owners:
        for name in o:
            distinct[name] += 1
    names = [d.name for d in report.train]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n_ab, n_ba = len(shared.get((a, b), ())), len(shared.get((b, a), ()))
            if not n_ab and not n_ba:
                continue
            da, db = datasets[a], datasets[b]
            report.shared.append(
                {
                    "a": a,
                    "b": b,
                    "images_of_a_in_b": n_ab,
                    "images_of_b_in_a": n_ba,
                    "distinct_images_a": distinct[a],
                    "distinct_images_b": distinct[b],
                    "share_of_a": round(n_ab / distinct[a], 4) if distinct[a] else 0.0,
                    "share_of_b": round(n_ba / distinct[b], 4) if distinct[b] else 0.0,
                    "repeat_time_a": da.repeat_time,
                    "repeat_time_b": db.repeat_time,
                    "times_seen_per_epoch": da.repeat_time + db.repeat_time,
                    "examples": examples[(a, b)],
                }
            )
