"""Dataset statistics: samples, turns, images, image sizes, boxes and text lengths.

Inputs are data files, folders (every .jsonl/.json/.parquet under them) and InternVL meta files,
expanded the way ``vlmdata validate`` expands them (``validators.engine.expand``). Image sizes
come from header probes (``MediaInspector``, cached on disk), never from decoding pixels. Boxes
are measured in pixels of the original image after the frame conversion (``convert_box`` to
``Frame.PIXEL``), so a 0-1000 box and a pixel box of the same object measure the same.

``compute_stats`` returns a ``Stats`` whose ``to_dict()`` is the ``--json`` output;
``render_stats`` prints it as a rich table with one-line unicode histograms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from vlmdata.convert.codec import Options
from vlmdata.convert.engine import RecordSource, batches, describe_rejection
from vlmdata.convert.frames import convert_box
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.inspect import MediaInfo, MediaInspector
from vlmdata.schemas.sample import Box, Boxes, Frame, Points, Ref, Sample, Text, location, part_boxes
from vlmdata.validators.engine import Target, expand

CHUNK = 1000
BARS = " ▁▂▃▄▅▆▇█"
HIST_BINS = 10


# --------------------------------------------------------------------------- reading samples


@dataclass(slots=True)
class Item:
    """One record of an input: its Sample, or why it could not be read."""

    file: str
    line: int | None
    index: int  # position in its file
    sample: Sample | None
    error: str | None = None

    def where(self) -> str:
        if self.sample is not None and self.sample.origin is not None:
            return self.sample.origin.where()
        return location(self.file, self.line, self.index)


def targets(paths: Iterable[str], root: str | None) -> list[Target]:
    """Data files named by ``paths`` (files, folders, InternVL meta files), each once.

    A folder holding both a meta file and the annotation it names would list the annotation
    twice; the meta entry (which knows the media root) wins.
    """
    out: list[Target] = []
    seen: dict[str, int] = {}
    for t in expand(paths, root):
        if t.meta_entry is not None and not os.path.isfile(t.path):
            raise VlmdataError(
                f"{t.meta_file}: entry {t.meta_name!r} names {t.path or '(nothing)'}, which is not a file"
            )
        if t.meta_file is not None and t.meta_entry is None:
            raise VlmdataError(f"{t.path}: reads like an InternVL meta file but is not valid JSON (vlmdata validate)")
        key = os.path.realpath(t.path)
        if key in seen:
            if t.meta_entry is not None and out[seen[key]].meta_entry is None:
                out[seen[key]] = t
            continue
        seen[key] = len(out)
        out.append(t)
    return out


def iter_items(
    paths: Iterable[str], root: str | None = None, fmt: str | None = None, frames: dict[str, Any] | None = None
) -> Iterator[Item]:
    """Every record of every data file named by ``paths``; bad records come as Items with an error.
    ``frames``: reading options that fix the box frame (``qwen_model``, ``max_pixels``, ...)."""
    for t in targets(paths, root):
        yield from _file_items(t, root, fmt, frames or {})


def _file_items(t: Target, root: str | None, fmt: str | None, frames: dict[str, Any]) -> Iterator[Item]:
    use_root = t.root if t.root is not None else root
    options = Options(root=use_root, allow_outside_root=True, **frames)
    with RecordSource(t.path, t.format or fmt, options) as source:
        for item in source.items():
            raw = item.raw
            if item.rejection is None:
                yield Item(t.path, raw.line, raw.index, item.sample)
            elif item.syntax:
                yield Item(t.path, raw.line, raw.index, None, item.rejection.error)
            else:
                yield Item(t.path, raw.line, raw.index, None, describe_rejection(item.rejection))


# --------------------------------------------------------------------------- sample facts


def image_path(sample: Sample, i: int) -> str:
    media = sample.images[i]
    return media.resolved or media.path


def box_groups(sample: Sample) -> Iterator[tuple[int, str | None, Boxes | Points]]:
    """(message index, the ref it belongs to or None, Boxes/Points) for every box group: a group
    takes the last ``Ref`` before it in its message that no earlier group took."""
    for mi, msg in enumerate(sample.messages):
        ref: str | None = None
        for part in msg.parts:
            if isinstance(part, Ref):
                ref = part.text
            elif isinstance(part, Boxes | Points):
                yield mi, ref, part
                ref = None


def text_chars(sample: Sample) -> int:
    """Characters of text the conversation holds (text and ref parts; media tags not counted)."""
    return sum(len(p.text) for m in sample.messages for p in m.parts if isinstance(p, Text | Ref))


def turns(sample: Sample) -> int:
    """Rounds: assistant messages (a conversation without one counts its user messages)."""
    n = sum(1 for m in sample.messages if m.role == "assistant")
    return n or sum(1 for m in sample.messages if m.role == "user")


def to_pixels(box: Box, size: tuple[int, int]) -> Box:
    """``box`` in pixels of the original image of ``size`` (W, H)."""
    return convert_box(box, Frame.PIXEL, lambda: size)[0]


def record_size(sample: Sample, i: int) -> tuple[int, int] | None:
    media = sample.images[i]
    if media.width and media.height:
        return media.width, media.height
    return None


# --------------------------------------------------------------------------- distributions


def summary(values: list[float], integer: bool = False) -> dict[str, Any]:
    """count, total, min, max, mean, median, p95 and a histogram of ``values``."""
    if not values:
        return {"count": 0}
    s = sorted(values)
    n = len(s)

    def pct(q: float) -> float:
        return s[min(n - 1, max(0, math.ceil(q * n) - 1))]

    out: dict[str, Any] = {
        "count": n,
        "total": _num(sum(s)),
        "min": _num(s[0]),
        "max": _num(s[-1]),
        "mean": round(sum(s) / n, 3),
        "median": _num(pct(0.5)),
        "p95": _num(pct(0.95)),
    }
    out["histogram"] = histogram(s, integer)
    return out


def _num(v: float) -> float:
    return int(v) if float(v).is_integer() else round(v, 3)


def histogram(sorted_values: list[float], integer: bool) -> dict[str, list[Any]]:
    """Bins as ``{"edges": [lo0, lo1, ..., hi], "counts": [...]}``; one bin per value for small integer ranges."""
    lo, hi = sorted_values[0], sorted_values[-1]
    if integer and hi - lo < 2 * HIST_BINS:
        edges: list[float] = [lo + k for k in range(int(hi - lo) + 2)]
    elif hi == lo:
        edges = [lo, hi]
    else:
        step = (hi - lo) / HIST_BINS
        edges = [round(lo + k * step, 4) for k in range(HIST_BINS)] + [hi]
    counts = [0] * (len(edges) - 1)
    last = len(counts) - 1
    for v in sorted_values:
        k = last if v >= edges[-1] else _bin(edges, v)
        if integer and hi - lo < 2 * HIST_BINS:
            k = int(v - lo)
        counts[k] += 1
    return {"edges": [_num(e) for e in edges], "counts": counts}


def _bin(edges: list[float], v: float) -> int:
    lo, hi = 0, len(edges) - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if edges[mid] <= v:
            lo = mid
        else:
            hi = mid - 1
    return lo


def bar(counts: list[int]) -> str:
    """One character per bin, height proportional to its count (an empty bin is a space, a
    non-empty one at least the lowest block)."""
    top = max(counts, default=0)
    if top == 0:
        return ""
    out = []
    for c in counts:
        out.append(" " if c == 0 else BARS[max(1, round(c / top * (len(BARS) - 1)))])
    return "".join(out)


# --------------------------------------------------------------------------- the stats


@dataclass
class Stats:
    files: list[str] = field(default_factory=list)
    samples: int = 0
    unreadable_records: int = 0
    errors: list[str] = field(default_factory=list)  # the first few unreadable records, with where
    turns: list[float] = field(default_factory=list)
    images_per_sample: list[float] = field(default_factory=list)
    videos: int = 0
    image_refs: int = 0
    unique_images: set[str] = field(default_factory=set)
    missing_images: int = 0
    broken_images: int = 0
    image_width: list[float] = field(default_factory=list)
    image_height: list[float] = field(default_factory=list)
    aspect_ratio: list[float] = field(default_factory=list)  # W / H
    boxes_per_sample: list[float] = field(default_factory=list)
    box_width: list[float] = field(default_factory=list)
    box_height: list[float] = field(default_factory=list)
    box_area_fraction: list[float] = field(default_factory=list)
    points: int = 0
    boxes_outside_image: int = 0
    boxes_without_size: int = 0  # a normalised box whose image size is unknown (image missing)
    frames: dict[str, int] = field(default_factory=dict)
    text_chars: list[float] = field(default_factory=list)
    trained_samples: int | None = None  # with InternVL repeat_time applied, when a meta file is read

    per_file: list[int] = field(default_factory=list)  # readable samples of each file, in order

    MAX_ERRORS = 20

    def merge(self, other: Stats) -> None:
        """Add the statistics of ``other`` (the next files in input order). Exact: distributions keep
        their raw values (summaries are computed from them in ``to_dict``), unique images their set,
        errors the first MAX_ERRORS in order; ``trained_samples`` is recomputed by the caller."""
        self.files.extend(other.files)
        self.per_file.extend(other.per_file)
        self.errors.extend(other.errors[: max(0, Stats.MAX_ERRORS - len(self.errors))])
        self.unique_images |= other.unique_images
        for key, value in other.frames.items():
            self.frames[key] = self.frames.get(key, 0) + value
        for f in fields(self):
            if f.name in ("files", "per_file", "errors", "unique_images", "frames", "trained_samples"):
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "samples": self.samples,
            "trained_samples": self.trained_samples,
            "unreadable_records": self.unreadable_records,
            "errors": self.errors,
            "turns": summary(self.turns, True),
            "images_per_sample": summary(self.images_per_sample, True),
            "image_refs": self.image_refs,
            "unique_images": len(self.unique_images),
            "missing_images": self.missing_images,
            "broken_images": self.broken_images,
            "videos": self.videos,
            "image_width": summary(self.image_width, True),
            "image_height": summary(self.image_height, True),
            "aspect_ratio": summary([round(v, 4) for v in self.aspect_ratio]),
            "boxes_per_sample": summary(self.boxes_per_sample, True),
            "boxes": int(sum(self.boxes_per_sample)),
            "points": self.points,
            "box_frames": dict(sorted(self.frames.items())),
            "box_width": summary(self.box_width),
            "box_height": summary(self.box_height),
            "box_area_fraction": summary(self.box_area_fraction),
            "boxes_outside_image": self.boxes_outside_image,
            "boxes_without_size": self.boxes_without_size,
            "text_chars": summary(self.text_chars, True),
        }


def compute_stats(
    paths: Iterable[str] | str,
    *,
    root: str | None = None,
    from_format: str | None = None,
    inspector: MediaInspector | None = None,
    cache_dir: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> Stats:
    """Statistics over every record of ``paths`` (see the module docstring). ``engine="ray"``:
    one Ray task per data file (``vlmdata[ray]``), merged exactly."""
    if isinstance(paths, str):
        paths = [paths]
    paths = list(paths)
    if engine == "ray":
        from vlmdata.tools.ray_engine import stats_ray

        return stats_ray(paths, root=root, from_format=from_format, cache_dir=cache_dir, ray_address=ray_address)
    if engine != "local":
        raise VlmdataError(f"unknown engine {engine!r}; choose local or ray")
    own = inspector is None
    insp = inspector or MediaInspector(cache_dir=cache_dir)
    stats = Stats()
    found = targets(paths, root)
    try:
        for t in found:
            stats.merge(target_stats(t, root, from_format, insp))
    finally:
        if own:
            insp.close()
    stats.files = [t.path for t in found]
    stats.trained_samples = trained_samples(found, stats)
    return stats


def target_stats(t: Target, root: str | None, from_format: str | None, insp: MediaInspector) -> Stats:
    """The statistics of one data file (``compute_stats`` merges them in input order; the Ray
    engine computes them as one task per file)."""
    stats = Stats(files=[t.path])

    def readable() -> Iterator[Sample]:
        for item in _file_items(t, root, from_format, {}):
            if item.sample is not None:
                yield item.sample
                continue
            stats.unreadable_records += 1
            if len(stats.errors) < Stats.MAX_ERRORS:
                stats.errors.append(f"{item.where()}: {item.error}")

    for chunk in batches(readable(), CHUNK):
        add_chunk(stats, chunk, insp)
    stats.per_file = [stats.samples]
    return stats


def trained_samples(found: list[Target], stats: Stats) -> int | None:
    """InternVL's count with ``repeat_time`` applied, when a meta file named the data files."""
    if not any(t.meta_entry is not None for t in found):
        return None
    return sum(trained_count(n, t.meta_entry) for t, n in zip(found, stats.per_file, strict=True))


def trained_count(n: int, meta_entry: dict[str, Any] | None) -> int:
    """Samples InternVL trains on from ``n`` records: ``repeat_time`` < 1 keeps the head
    ``int(n * r)`` lines, > 1 repeats the list ``int(r)`` times (docs/formats.md#internvl-meta)."""
    r = (meta_entry or {}).get("repeat_time", 1)
    if not isinstance(r, int | float) or r <= 0:
        return n
    return int(n * r) if r < 1 else n * int(r)


def add_chunk(stats: Stats, samples: list[Sample], insp: MediaInspector) -> dict[str, MediaInfo]:
    """Add a chunk of samples, their image headers probed together; returns the headers."""
    infos = insp.inspect_many(image_path(s, i) for s in samples for i in range(len(s.images)))
    for s in samples:
        _add_sample(stats, s, infos)
    return infos


def _add_sample(stats: Stats, s: Sample, infos: dict[str, MediaInfo]) -> None:
    stats.samples += 1
    stats.turns.append(turns(s))
    stats.images_per_sample.append(len(s.images))
    stats.videos += len(s.videos)
    stats.text_chars.append(text_chars(s))
    sizes: list[tuple[int, int] | None] = []
    for i in range(len(s.images)):
        path = image_path(s, i)
        stats.image_refs += 1
        stats.unique_images.add(path)
        info = infos.get(path)
        size = None
        if info is None or not info.exists:
            stats.missing_images += 1
        elif info.error:
            stats.broken_images += 1
        elif info.width and info.height:
            size = (info.width, info.height)
        if size is not None:
            stats.image_width.append(size[0])
            stats.image_height.append(size[1])
            stats.aspect_ratio.append(size[0] / size[1])
        sizes.append(size or record_size(s, i))
    nboxes = 0
    for _, _, group in box_groups(s):
        items = part_boxes(group)
        for box in items:
            stats.frames[box.frame.value] = stats.frames.get(box.frame.value, 0) + 1
            if box.is_point:
                stats.points += 1
                continue
            nboxes += 1
            size = sizes[group.image_index] if 0 <= group.image_index < len(sizes) else None
            if size is None:
                if box.frame is not Frame.PIXEL:
                    stats.boxes_without_size += 1
                    continue
                px = box
            else:
                try:
                    px = to_pixels(box, size)
                except RecordError:
                    stats.boxes_without_size += 1
                    continue
            w, h = float(px.x2) - px.x1, float(px.y2) - px.y1  # type: ignore[arg-type]
            stats.box_width.append(round(w, 2))
            stats.box_height.append(round(h, 2))
            if size is not None:
                stats.box_area_fraction.append(round(max(w, 0) * max(h, 0) / (size[0] * size[1]), 5))
                if px.x1 < 0 or px.y1 < 0 or px.x2 > size[0] or px.y2 > size[1] or w <= 0 or h <= 0:  # type: ignore[operator]
                    stats.boxes_outside_image += 1
    stats.boxes_per_sample.append(nboxes)


# --------------------------------------------------------------------------- rendering


DIST_ROWS = (
    ("turns", "turns / sample"),
    ("images_per_sample", "images / sample"),
    ("image_width", "image width (px)"),
    ("image_height", "image height (px)"),
    ("aspect_ratio", "aspect ratio (W/H)"),
    ("boxes_per_sample", "boxes / sample"),
    ("box_width", "box width (px)"),
    ("box_height", "box height (px)"),
    ("box_area_fraction", "box area / image"),
    ("text_chars", "text (chars)"),
)


def render_stats(data: dict[str, Any], console: Any) -> None:
    """Print the ``Stats.to_dict()`` result as rich tables with histograms."""
    from rich.markup import escape
    from rich.table import Table

    head = Table(title="vlmdata stats", show_header=False, box=None, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("files", escape(", ".join(data["files"])))
    head.add_row("samples", f"{data['samples']:,}")
    if data.get("trained_samples") is not None:
        head.add_row("trained samples", f"{data['trained_samples']:,} (InternVL repeat_time applied)")
    if data["unreadable_records"]:
        head.add_row("unreadable records", f"[red]{data['unreadable_records']:,}[/]")
    head.add_row(
        "images",
        f"{data['image_refs']:,} references, {data['unique_images']:,} unique"
        + (f", [red]{data['missing_images']:,} missing[/]" if data["missing_images"] else "")
        + (f", [red]{data['broken_images']:,} unreadable[/]" if data["broken_images"] else ""),
    )
    if data["videos"]:
        head.add_row("videos", f"{data['videos']:,}")
    frames = ", ".join(f"{k} {v}" for k, v in data["box_frames"].items()) or "none"
    head.add_row("boxes", f"{data['boxes']:,} ({frames})" + (f", {data['points']:,} points" if data["points"] else ""))
    if data["boxes_outside_image"]:
        head.add_row("", f"[yellow]{data['boxes_outside_image']:,} boxes outside their image[/]")
    if data["boxes_without_size"]:
        head.add_row("", f"[yellow]{data['boxes_without_size']:,} boxes not measured (image size unknown)[/]")
    console.print(head)

    table = Table(show_lines=False)
    for col, justify in (
        ("", "left"),
        ("count", "right"),
        ("min", "right"),
        ("median", "right"),
        ("mean", "right"),
        ("p95", "right"),
        ("max", "right"),
        ("histogram", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col in ("", "histogram"))  # type: ignore[arg-type]
    for key, label in DIST_ROWS:
        d = data[key]
        if not d.get("count"):
            table.add_row(label, "0", "", "", "", "", "", "")
            continue
        hist = d["histogram"]
        table.add_row(
            label,
            f"{d['count']:,}",
            _fmt(d["min"]),
            _fmt(d["median"]),
            _fmt(d["mean"]),
            _fmt(d["p95"]),
            _fmt(d["max"]),
            f"[cyan]{bar(hist['counts'])}[/] [dim]{_fmt(d['min'])}..{_fmt(d['max'])}[/]",
        )
    console.print(table)
    for e in data["errors"]:
        console.print(f"[red]unreadable[/] {escape(e)}", soft_wrap=True)


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
