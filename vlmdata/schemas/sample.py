"""The canonical sample every format is read into and written from.

The classes are slotted stdlib dataclasses so that codecs can build them cheaply on the hot
path (see docs/performance.md#hot-path-costs: a per-record pydantic object graph costs 4x
more than the JSON round trip itself). Pydantic still owns their schema: ``SAMPLE_ADAPTER``
validates and serialises a ``Sample`` with ``Part`` as a discriminated union on ``type``, which
is what untrusted input (``Sample.from_dict``, JSON dumps of samples) goes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from vlmdata.errors import RecordError


def whole(v: float) -> float:
    """A whole float as an int (``3.0`` -> ``3``), anything else as it is: box numbers are written
    as the sources write them, ``[1, 2, 3, 4]`` not ``[1.0, 2.0, 3.0, 4.0]``. The one copy of this rule."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


COORD_LIMIT = 1e9  # |coordinate| in any frame; beyond it the frame arithmetic overflows or loses precision
_NUMBER = (int, float)  # exact types: bool is not a coordinate


class Frame(str, Enum):
    """Coordinate frame of a box (docs/frames.md#frames-at-a-glance lists who uses which)."""

    PIXEL = "pixel"  # pixels of the original image (ms-swift `real`, COCO, LLaMA-Factory)
    NORM1000 = "norm1000"  # integers 0-1000 (InternVL, Qwen2-VL, Qwen3-VL, ms-swift renders)
    NORM999 = "norm999"  # legacy ms-swift <=3.0 `norm_1000`: int(v / size * 999) (docs/formats.md#swift-legacy-objects)
    NORM1 = "norm1"  # fractions 0-1 of the original image (ms-swift `norm1`, LLaVA unpadded)
    NORM1_SQUARE = "norm1_square"  # fractions of the centred padded square (LLaVA-1.5 VG, docs/frames.md#norm1_square)
    PIXEL_RESIZED = "pixel_resized"  # pixels of the smart-resized image (Qwen2.5-VL, docs/frames.md#pixel_resized)


@dataclass(slots=True, frozen=True)
class Box:
    """A corner box ``x1, y1, x2, y2`` (or a point when ``x2``/``y2`` are None) in ``frame``."""

    x1: float
    y1: float
    x2: float | None
    y2: float | None
    frame: Frame
    resized: tuple[int, int] | None = None  # (W', H') when frame is PIXEL_RESIZED

    def __post_init__(self) -> None:
        # Every reader builds its boxes here, so a coordinate the frame arithmetic cannot handle
        # (NaN, Infinity, 1e308, 2**70, a bool) rejects its record instead of crashing a conversion
        # or being written as null. The first test is the hot path: plain numbers in range.
        x1, y1, x2, y2 = self.x1, self.y1, self.x2, self.y2
        if (
            type(x1) in _NUMBER
            and type(y1) in _NUMBER
            and -COORD_LIMIT <= x1 <= COORD_LIMIT  # False for NaN
            and -COORD_LIMIT <= y1 <= COORD_LIMIT
            and (
                x2 is None
                or (
                    type(x2) in _NUMBER
                    and type(y2) in _NUMBER
                    and -COORD_LIMIT <= x2 <= COORD_LIMIT
                    and -COORD_LIMIT <= y2 <= COORD_LIMIT  # type: ignore[operator]
                )
            )
        ):
            return
        for v in (x1, y1) if x2 is None else (x1, y1, x2, y2):
            if type(v) is bool or not isinstance(v, int | float):
                raise RecordError(f"box coordinate {v!r} is not a number", "fix the box")
            if not -COORD_LIMIT <= v <= COORD_LIMIT:
                raise RecordError(
                    f"box coordinate {v!r} is not a finite number within ±{COORD_LIMIT:.0e}",
                    "fix the box (NaN, Infinity and overflowing numbers cannot be converted)",
                )

    @property
    def is_point(self) -> bool:
        return self.x2 is None

    def coords(self) -> tuple[float, ...]:
        if self.x2 is None:
            return (self.x1, self.y1)
        return (self.x1, self.y1, self.x2, self.y2)  # type: ignore[return-value]


@dataclass(slots=True)
class Text:
    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImageSlot:
    """Where image ``index`` of the sample sits in the conversation (an ``<image>`` tag)."""

    index: int
    type: Literal["image"] = "image"


@dataclass(slots=True)
class VideoSlot:
    index: int
    type: Literal["video"] = "video"


@dataclass(slots=True)
class AudioSlot:
    """ms-swift carries audios beside images; kept so that nothing is dropped on the way."""

    index: int
    type: Literal["audio"] = "audio"


@dataclass(slots=True)
class Ref:
    """A referring expression (``<ref>..</ref>``, ``<|object_ref_start|>..``, ``<ref-object>``)."""

    text: str
    type: Literal["ref"] = "ref"


@dataclass(slots=True)
class Boxes:
    """One or more boxes of one referent, on image ``image_index``."""

    boxes: tuple[Box, ...]
    image_index: int = 0
    type: Literal["boxes"] = "boxes"


@dataclass(slots=True)
class Points:
    points: tuple[Box, ...]
    image_index: int = 0
    type: Literal["points"] = "points"


def part_boxes(part: Boxes | Points) -> tuple[Box, ...]:
    """The boxes of a Boxes part or the points of a Points part."""
    return part.boxes if part.type == "boxes" else part.points  # type: ignore[union-attr]


def map_boxes(part: Boxes | Points, convert: Callable[[Box], Box]) -> Boxes | Points:
    """``part`` (same kind, same image) with every box or point passed through ``convert``, in
    order: the one loop every frame conversion of a Sample's parts goes through."""
    if part.type == "boxes":
        return Boxes(tuple([convert(b) for b in part.boxes]), part.image_index)  # type: ignore[union-attr]
    return Points(tuple([convert(b) for b in part.points]), part.image_index)  # type: ignore[union-attr]


Part = Annotated[
    Text | ImageSlot | VideoSlot | AudioSlot | Ref | Boxes | Points,
    Field(discriminator="type"),
]

Role = Literal["system", "user", "assistant", "tool_call", "tool_response"]


@dataclass(slots=True)
class Message:
    role: Role
    parts: list[Part]
    extra: dict[str, Any] = field(default_factory=dict)  # per-message keys (loss, loss_scale...)

    def text(self) -> str:
        """Plain text of the message with slots shown as tags (for messages and reports)."""
        out = []
        for part in self.parts:
            if isinstance(part, Text | Ref):
                out.append(part.text)
            elif isinstance(part, ImageSlot):
                out.append("<image>")
            elif isinstance(part, VideoSlot):
                out.append("<video>")
            elif isinstance(part, AudioSlot):
                out.append("<audio>")
        return "".join(out)


@dataclass(slots=True)
class MediaRef:
    """A media reference: the path as written plus where it resolves.

    ``width``/``height`` come from the record (InternVL ``width``/``height``) or are probed from
    the file header on demand (``vlmdata.media.probe``); they stay None until someone needs them.
    """

    path: str
    resolved: str | None = None  # absolute path under the media root (URLs unchanged)
    width: int | None = None
    height: int | None = None
    frames: list[str] | None = None  # a video given as a list of frame files (ms-swift, Qwen)


def location(file: str, line: int | None, index: int | None) -> str:
    """``file:line`` for line-based files, ``file[index]`` for JSON lists (index from 0)."""
    if line is not None:
        return f"{file}:{line}"
    return f"{file}[{index}]" if index is not None else file


def where(file: str, line: int | None, index: int | None, record_id: Any = None) -> str:
    """The one way every message names a record: ``file:line (id=...)``."""
    loc = location(file, line, index)
    return loc if record_id is None else f"{loc} (id={record_id})"


@dataclass(slots=True)
class Origin:
    """Where a sample came from, so every message can say ``file:line (id=...)``."""

    file: str
    line: int | None = None
    index: int | None = None
    id: Any = None

    def where(self) -> str:
        return where(self.file, self.line, self.index, self.id)


@dataclass(slots=True)
class Sample:
    messages: list[Message]
    images: list[MediaRef] = field(default_factory=list)
    videos: list[MediaRef] = field(default_factory=list)
    audios: list[MediaRef] = field(default_factory=list)
    id: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown record keys, carried along
    origin: Origin | None = None

    @property
    def system(self) -> str | None:
        """The system prompt, when the first message is a system message."""
        if self.messages and self.messages[0].role == "system":
            return self.messages[0].text()
        return None

    def to_dict(self) -> dict[str, Any]:
        return SAMPLE_ADAPTER.dump_python(self, mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        """Validate untrusted data into a Sample (discriminated union on part ``type``)."""
        return SAMPLE_ADAPTER.validate_python(data)


SAMPLE_ADAPTER: TypeAdapter[Sample] = TypeAdapter(Sample)
