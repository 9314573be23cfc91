"""The training set: samples read from any supported format (or an InternVL meta file), their
exact token lengths, and the records left out with their reasons.

Nothing is dropped silently: a record that cannot be read or rendered for the model, or that is
longer than ``max_length``, is listed with ``file:line (id=...)`` and why, and counted; in ==
kept + rejected + too long. Lengths are exact without decoding pixels: the template is rendered
with the image sizes from the file headers, tokenised, and each image placeholder is counted as
the processor will expand it (``processor._get_num_multimodal_tokens``, the count vLLM uses too).
Image tokens are never truncated: a record that does not fit is left out whole.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vlmdata.convert.codec import Options
from vlmdata.convert.engine import DATA_ERRORS, RecordSource
from vlmdata.convert.report import Rejection
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.probe import probe_size
from vlmdata.schemas.sample import Sample
from vlmdata.tools.meta import readable_meta_datasets, repeat_plan, repeat_warning
from vlmdata.validators.engine import is_internvl_meta


@dataclass
class Source:
    """One annotation file to read: its format, media root and InternVL ``repeat_time``."""

    path: str
    root: str | None
    format: str | None = None
    repeat_time: float = 1
    name: str | None = None


@dataclass
class Loaded:
    samples: list[Sample] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    records_in: int = 0
    warnings: list[str] = field(default_factory=list)


def sources_of(paths: list[str], root: str | None, fmt: str | None) -> list[Source]:
    """Data files as sources; an InternVL meta file expands to its entries (root and repeat_time)."""
    out: list[Source] = []
    for path in paths:
        if not os.path.exists(path):
            raise VlmdataError(f"{path}: no such file")
        if is_internvl_meta(path):
            for ds in readable_meta_datasets(path):
                out.append(Source(ds.annotation, ds.root, "internvl", ds.repeat_time, ds.name))
        else:
            out.append(Source(path, root, fmt))
    return out


def stream(sources: list[Source], loaded: Loaded, allow_outside_root: bool = False) -> Iterator[Sample]:
    """Every sample of ``sources`` (repeat_time applied as InternVL does); bad records and warnings
    are added to ``loaded`` as the stream goes."""
    for src in sources:
        if src.repeat_time < 1:
            loaded.warnings.append(repeat_warning(src.name or src.path, src.repeat_time))
        keep, passes = repeat_plan(src.path, src.repeat_time)
        for _ in range(passes):
            yielded = yield from _read(src, keep, allow_outside_root, loaded)
            if not yielded:
                break  # nothing readable: reading again would only repeat the rejections


def load(sources: list[Source], allow_outside_root: bool = False) -> Loaded:
    """``stream`` into a list (small data, tests)."""
    loaded = Loaded()
    loaded.samples = list(stream(sources, loaded, allow_outside_root))
    return loaded


def _read(src: Source, keep: int | None, allow_outside_root: bool, loaded: Loaded) -> Iterator[Sample]:
    """Samples of one source; returns how many were yielded."""
    options = Options(root=src.root, allow_outside_root=allow_outside_root)
    yielded = 0
    with RecordSource(src.path, src.format, options, fatal_start=False) as source:
        for item in source.items(limit=keep):
            loaded.records_in += 1  # a syntax error counts too: in = kept + left out, as convert counts it
            if item.rejection is not None:
                loaded.rejected.append(item.rejection)
                continue
            assert item.sample is not None
            yielded += 1
            yield item.sample
    return yielded


def rejection_of(sample: Sample, exc: BaseException) -> Rejection:
    """A rejection for a sample that was read but cannot be used for training."""
    origin = sample.origin
    what, fix = (exc.what, exc.fix) if isinstance(exc, RecordError) else (f"{type(exc).__name__}: {exc}", "")
    if origin is None:
        return Rejection("<samples>", None, None, sample.id, what, fix)
    return Rejection(origin.file, origin.line, origin.index, origin.id, what, fix)


class LengthCounter:
    """Exact sequence length of a sample for one renderer/processor, from image headers only."""

    def __init__(self, renderer: Any, processor: Any) -> None:
        self.renderer = renderer
        self.processor = processor
        self.tokenizer = processor.tokenizer
        # The tokenizers backend directly: the same ids as tokenizer(text), without its per-call overhead.
        backend = getattr(self.tokenizer, "_tokenizer", None)
        self._encode_len = (
            (lambda text: len(backend.encode(text, add_special_tokens=False).ids))
            if backend is not None
            else (lambda text: len(self.tokenizer(text, add_special_tokens=False)["input_ids"]))
        )
        image_token = getattr(processor, "image_token", None)
        self._placeholder = self._encode_len(image_token) if image_token else 0
        self._image_tokens: dict[tuple[int, int], int] = {}  # by (height, width): counts repeat a lot
        self.clamped = 0  # box coordinates clamped into the model's frame, over every sample measured

    def __call__(self, sample: Sample) -> int:
        sizes = [self._size(m) for m in sample.images]
        rendered = self.renderer.render(sample, [_SizeOnly(w, h) for w, h in sizes])
        self.clamped += rendered.clamped
        n = self._encode_len(self.processor.apply_chat_template(rendered.conversation, tokenize=False))
        for w, h in sizes:
            n += self.image_tokens(h, w) - self._placeholder
        return n

    def image_tokens(self, height: int, width: int) -> int:
        """What one image placeholder expands to (the processor's own count)."""
        key = (height, width)
        if key not in self._image_tokens:
            counts = self.processor._get_num_multimodal_tokens(image_sizes=[key])
            self._image_tokens[key] = int(counts.num_image_tokens[0])
        return self._image_tokens[key]

    @staticmethod
    def _size(media: Any) -> tuple[int, int]:
        if media.width and media.height:
            return media.width, media.height
        if media.resolved is None:
            raise RecordError(f"image {media.path} has no resolved path", "pass --root")
        return probe_size(media.resolved, media.path, "to count its image tokens")


class _SizeOnly:
    """Stands in for a PIL image where only ``.size`` is needed (box frames, templates)."""

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)


@dataclass
class Measured:
    samples: Any  # SampleStore (or a list): what is trained on
    lengths: Any  # array of token counts, one per sample
    too_long: list[tuple[Rejection, int]]
    unusable: list[Rejection]


def measure(
    samples: Iterable[Sample],
    count: Callable[[Sample], int],
    max_length: int | None,
    store: Any = None,
) -> Measured:
    """Lengths of ``samples``; those over ``max_length`` or that cannot be rendered are set apart.
    The kept samples go to ``store`` (a SampleStore keeps them on disk) or a list."""
    out = Measured(store if store is not None else [], array("I"), [], [])
    for sample in samples:
        try:
            n = count(sample)
        except DATA_ERRORS as exc:
            out.unusable.append(rejection_of(sample, exc))
            continue
        if max_length is not None and n > max_length:
            rejection = rejection_of(
                sample, RecordError(f"{n} tokens, over --max-length {max_length}", "raise --max-length or shorten it")
            )
            out.too_long.append((rejection, n))
            continue
        out.samples.append(sample)
        out.lengths.append(n)
    if hasattr(out.samples, "seal"):
        out.samples.seal()
    return out
