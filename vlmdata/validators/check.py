"""The write-time check: every record ``convert`` writes is read back as its target consumer reads
it, through the same record rules ``vlmdata validate --target T`` runs (same codes, same words).

A record with an error-level finding is rejected with that finding's code and message, so that
``validate`` on what ``convert`` wrote never finds an error. Text of the source that the target
would read as media tags or markup (VD108) is checked on the source sample, before writing: once
written it is indistinguishable from a real tag.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from vlmdata.consumers import get_consumer, target_of
from vlmdata.consumers.base import literal_markup
from vlmdata.convert.codec import Options, Tally
from vlmdata.convert.engine import DATA_ERRORS, Decoder, describe_error
from vlmdata.convert.io import Raw
from vlmdata.convert.registry import get_codec
from vlmdata.errors import RecordError
from vlmdata.media.paths import PathResolver, is_remote, is_url
from vlmdata.schemas.sample import Box, Boxes, Message, Sample, map_boxes
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import Rule, selected
from vlmdata.validators.rules.common import raw_messages
from vlmdata.validators.rules.grounding import LIMITS
from vlmdata.validators.view import RecordView, build_view

# Record rules that need a whole file (duplicate ids) or a model (token budgets) say nothing here.
NOT_PER_RECORD = ("VD120", "VD5")


def format_hit(rule: Rule, hit: dict[str, Any]) -> str:
    fields = {k: v for k, v in hit.items() if k not in ("line", "snippet", "fixable")}
    try:
        return rule.message.format(**fields)
    except (KeyError, IndexError, ValueError):
        return f"{rule.message} {fields}"


def markup_hit(sample: Sample, target: str) -> dict[str, Any] | None:
    """VD108's fields for ``sample`` against consumer ``target`` (None when its text is plain to it)."""
    consumer = get_consumer(target)
    found = literal_markup(sample, consumer)
    if not found:
        return None
    k, strings = found[0]
    more = f" (and {len(found) - 1} more message(s))" if len(found) > 1 else ""
    return {
        "where": f"message {k}{more}",
        "strings": ", ".join(repr(s) for s in strings),
        "consumer": consumer.title,
    }


CONVERT_FIXES = {"VD201": "or convert with --fix-boxes swap (reversed corners swapped, noted per record)"}
SHAPES_KEPT = 4096
EXACT_KEYS = frozenset({"role", "from", "type"})  # role names and block types: kept as they are
PATH_KEYS = frozenset({"image", "images", "video", "videos", "audio", "audios", "path", "url", "image_url"})
_MARKUP = re.compile(r"<[^<>\s]{1,40}>\n?")
# The box rules ``plain_boxes`` stands in for: VD201 (reversed) and VD202 (out of range) read only the
# boxes; VD204 and VD206 look at ms-swift objects and say nothing for any other target.
QUICK_BOX_RULES = frozenset({"VD201", "VD202", "VD204", "VD206"})


def shape_of(value: Any, key: str = "") -> Any:
    """What the error-level record rules can see of a record without boxes, as a hashable value.

    Those rules read keys, role values and block types, the media tags and markup in text (with the
    newline after a tag: InternVL reads ``<video>\n``), whether a text is empty, how many media there
    are and whether a path is a URL or a folder, and the kind of each value. Text is reduced to its
    tags and its emptiness, paths to (empty?, URL?, folder?), numbers to their type: two records with one
    shape get one verdict. Only clean verdicts are kept; a record whose shape has not passed yet is
    checked in full (so a message always names the record's own turns).

    Loops instead of comprehensions and strings inlined: this runs once per written record.
    """
    t = type(value)
    if t is dict:
        out: list[Any] = []
        for k, v in value.items():
            tv = type(v)
            if tv is str:
                out.append((k, _str_shape(v, k)))
            elif tv is dict or tv is list:
                out.append((k, shape_of(v, k)))
            else:
                out.append((k, tv))
        return tuple(out)
    if t is list:
        items: list[Any] = [list]
        for v in value:
            tv = type(v)
            if tv is str:
                items.append(_str_shape(v, key))
            elif tv is dict or tv is list:
                items.append(shape_of(v, key))
            else:
                items.append(tv)
        return tuple(items)
    if t is str:
        return _str_shape(value, key)
    return t


def _str_shape(value: str, key: str) -> Any:
    if key in EXACT_KEYS:
        return value
    if key in PATH_KEYS:
        return (not value, is_remote(value), is_url(value), value.endswith("/"))
    if "<" not in value:
        return not value.strip()
    return (not value.strip(), *_MARKUP.findall(value))


def has_grounding(sample: Sample) -> bool:
    for m in sample.messages:
        for p in m.parts:
            if p.type == "boxes" or p.type == "points":
                return True
    return False


def swap_reversed(sample: Sample) -> int:
    """Swap x1/x2 and y1/y2 of boxes given as (x2, y2, x1, y1); returns how many boxes changed.
    A box with zero width or height stays as it is (no swap makes it a box): VD201 rejects it."""
    n = 0
    for m in sample.messages:
        for k, p in enumerate(m.parts):
            if p.type != "boxes":
                continue
            out = []
            changed = False
            for b in p.boxes:  # type: ignore[union-attr]
                if b.x2 is not None and b.y2 is not None and (b.x1 > b.x2 or b.y1 > b.y2):
                    x1, x2 = sorted((b.x1, b.x2))
                    y1, y2 = sorted((b.y1, b.y2))
                    b = Box(x1, y1, x2, y2, b.frame, b.resized)
                    changed = True
                    n += 1
                out.append(b)
            if changed:
                m.parts[k] = Boxes(tuple(out), p.image_index)  # type: ignore[union-attr]
    return n


class RecordChecker:
    """Reads written records of format ``fmt`` back as its consumer does and runs the record rules."""

    # The structure key and its piece for one string, for a writer that builds the key as it goes
    # (convert/fastpath.py, which may not import this module): one definition of both.
    structure_key = staticmethod(shape_of)
    string_shape = staticmethod(_str_shape)

    def __init__(self, fmt: str, name: str, out_root: str, options: Options, tally: Tally | None = None) -> None:
        # an input-only format (COCO) has no consumer: its writer refuses every record itself
        self.target = target_of(fmt)
        self.consumer = get_consumer(self.target)
        self.swap = options.fix_boxes == "swap"
        self.tally = tally if tally is not None else Tally()
        self.fmt = fmt
        self.name = name
        self.rules = [
            r
            for r in selected(None, NOT_PER_RECORD)
            if r.scope == "record" and r.severity == "error" and r.code not in ("VD108",)
        ]
        # the consumer's own rules first; VD002 (its reader refuses the record) says least, so it comes last
        self.rules.sort(key=lambda r: r.code == "VD002")
        self.markup_rule = next(r for r in selected(("VD108",), None))
        self.ctx = ValidationContext(self.target)
        self.ctx.file_state = {}
        # The written record is read with the target codec alone: no side files, paths where written.
        read_options = dataclasses.replace(
            options, dataset_info=None, dataset_name=None, meta=None, extract_images=None, allow_outside_root=True
        )
        resolver = PathResolver(out_root, explicit_root=False, allow_outside=True)
        self.decoder = Decoder(get_codec(fmt), name, resolver, read_options, Tally())
        self.clean: set[Any] = set()  # shapes of records that passed every rule
        self.box_rules = [r for r in self.rules if r.check.__module__.endswith(".rules.grounding")]
        self.exact_boxes = fmt != "llava"  # LLaVA prints 2 decimals: its boxes are checked as read back
        self.quick_boxes = self.target != "swift" and {r.code for r in self.box_rules} == QUICK_BOX_RULES

    def encode(self, codec: Any, sample: Sample, wctx: Any, raw: Raw) -> dict[str, Any]:
        """``sample`` written by ``codec`` and read back as the target's consumer reads it: the one
        order of the write-time check (convert, vlmdata.write). ``raw`` gives the record's position;
        a record the consumer would refuse or read otherwise raises RecordError."""
        self.before_write(sample)
        wctx.written_boxes = boxes = []
        record: dict[str, Any] = codec.encode(sample, wctx)
        self.after_write(record, raw, sample, boxes)
        return record

    def before_write(self, sample: Sample) -> None:
        """VD108 on the source sample: text the target would read as tags or markup; and, with
        ``--fix-boxes swap``, reversed corners swapped (noted per record)."""
        if self.swap:
            swapped = swap_reversed(sample)
            if swapped:
                self.tally.swapped_boxes += swapped
                self.tally.note(sample.origin, f"swapped the corners of {swapped} reversed box(es)")
        if not literal_markup(sample, self.consumer):  # the common case, without building the finding
            return
        hit = markup_hit(sample, self.target)
        if hit is not None:
            raise RecordError(f"VD108 {format_hit(self.markup_rule, hit)}")

    def after_write(
        self, record: dict[str, Any], raw: Raw, sample: Sample | None = None, boxes: list[Box] | None = None
    ) -> None:
        """The record rules on the written record, read back by the target codec (the box rules read
        boxes in the frame the target reads them in; VD002 when the target's reader refuses it).

        Kept cheap: a record whose shape (``shape_of``: everything the rules read but numbers and
        plain text) already passed in full is not read back again. Without boxes it is done; with
        boxes, the box rules run on the boxes as the writer wrote them (``boxes``, in the target's
        frame, exact where the target writes them as computed: every format but LLaVA's 2 decimals).
        """
        grounded = sample is None or has_grounding(sample)
        key = shape_of(record) if sample is not None else None
        if sample is not None and key in self.clean:
            if not grounded:
                return
            if self.exact_boxes and boxes is not None:
                if self.quick_boxes and plain_boxes(record, sample, boxes):
                    return
                if self._boxes_only(record, raw, sample, boxes):
                    return
        view: RecordView = build_view(record, self.name, raw.line, raw.index, self.fmt)
        try:  # read back: boxes in the target's frame, and the target reader's own refusals (VD002)
            view.sample = self.decoder.decode(Raw(record, raw.line, raw.index))
        except DATA_ERRORS as exc:
            view.decode_error = describe_error(exc)
        self._run(self.rules, view)
        if key is not None:
            if len(self.clean) >= SHAPES_KEPT:
                self.clean.clear()
            self.clean.add(key)

    def _boxes_only(self, record: dict[str, Any], raw: Raw, sample: Sample, boxes: list[Box]) -> bool:
        """The box rules on ``sample`` with the written boxes; False when they cannot be placed exactly."""
        placed = with_boxes(sample, boxes)
        if placed is None:
            return False
        view = build_view(record, self.name, raw.line, raw.index, self.fmt)
        if len(view.turns) != len(placed.messages):  # a system prompt merged or dropped: read back instead
            return False
        view.sample = placed
        self._run(self.box_rules, view)
        return True

    def _run(self, rules: list[Rule], view: RecordView) -> None:
        self.ctx.file_state.clear()
        for rule in rules:
            for hit in rule.check(view, self.ctx):
                raise RecordError(f"{rule.code} {format_hit(rule, hit)}", CONVERT_FIXES.get(rule.code, ""))


def plain_boxes(record: dict[str, Any], sample: Sample, boxes: list[Box]) -> bool:
    """True when ``_boxes_only`` would place ``boxes`` and the box rules would find nothing: every
    box in a bounded frame (0-1000, 0-1, ...), inside it, corners in order. No view is built, no
    Sample copied; anything else (pixel frames, a count that differs, a bad box) says False and the
    record takes the full box check, which words the finding."""
    turns = raw_messages(record)
    if turns is None:
        return False
    if len(turns) != len(sample.messages):
        return False
    n = 0
    for m in sample.messages:
        for p in m.parts:
            t = p.type
            if t == "boxes":
                n += len(p.boxes)  # type: ignore[union-attr]
            elif t == "points":
                n += len(p.points)  # type: ignore[union-attr]
    if n != len(boxes):
        return False
    for b in boxes:
        hi = LIMITS.get(b.frame)
        if hi is None:
            return False
        x2, y2 = b.x2, b.y2
        if x2 is None or y2 is None:
            if x2 is not None or y2 is not None or not (0 <= b.x1 <= hi and 0 <= b.y1 <= hi):
                return False
        elif not (0 <= b.x1 < x2 <= hi and 0 <= b.y1 < y2 <= hi):
            return False
    return True


def with_boxes(sample: Sample, boxes: list[Box]) -> Sample | None:
    """``sample`` with its boxes and points replaced, in order, by ``boxes`` (None when the counts differ)."""
    it = iter(boxes)
    messages = []
    try:
        for m in sample.messages:
            parts = list(m.parts)
            for k, p in enumerate(parts):
                if p.type == "boxes" or p.type == "points":
                    parts[k] = map_boxes(p, lambda _b: next(it))  # type: ignore[arg-type]
            messages.append(Message(m.role, parts, m.extra))
    except StopIteration:
        return None
    if next(it, None) is not None:
        return None
    return Sample(messages, sample.images, sample.videos, sample.audios, sample.id, sample.extra, sample.origin)
