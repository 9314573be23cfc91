"""A direct ms-swift -> InternVL transcoder for the common record shapes (docs/performance.md#hot-path-costs).

The full path parses and validates a record, builds a ``Sample`` (about 36 small objects for a
4-message row), checks it, renders it and reads the rendered record's structure: ~45 us a row,
0.04x of the orjson parse+dump floor. Most rows are plain: explicit ``<image>`` tags matching the
images, ``<ref-object>``/``<bbox>`` placeholders filled from a pixel ``objects`` dict, no extra keys.
For those the output is the input text with placeholders replaced, so this path keeps the text as
a string, builds parts only for grounding, and caches (output path, size) per media path.

It *declines* (returns None, with no side effect) every record it does not fully understand: the
pipeline then runs the full path, which gives the same answer it always did. A record it takes
gets exactly the bytes, counters and write-time verdict the full path would give:
tests/test_fast_path.py checks that on the sample data, the real data, and fuzzed records. The
write-time check is shared: a record is taken only when the record checker already passed a record
of its structure (``RecordChecker.clean``), and its boxes pass the same bounded-frame test
(``plain_boxes``) the checker uses.

Hook: ``ConvertWork.fast_for``/``run`` (``vlmdata/convert/shards.py``) build it once per decoder
and hand it every record not decoded yet; a ``bytes`` result is written, None takes the full path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from vlmdata.consumers import get_consumer
from vlmdata.consumers.base import TO_FROM
from vlmdata.consumers.swift import ROLE_ALIASES
from vlmdata.convert.codec import ReadContext, WriteContext
from vlmdata.convert.frames import pixel_corners_to_norm1000 as to_norm1000
from vlmdata.convert.internvl import InternVLCodec
from vlmdata.errors import RecordError
from vlmdata.media.paths import CACHE_LIMIT
from vlmdata.schemas.sample import _NUMBER, COORD_LIMIT  # Box's coordinate rule

FastConvert = Callable[[bytes], "bytes | None"]

TOP_KEYS = frozenset({"id", "messages", "images", "objects"})
MEDIA_KEYS = frozenset({"image", "video", "videos", "audio", "audios"})
INTERNVL_KEYS = InternVLCodec.known_keys
OBJECT_KEYS = frozenset({"ref", "bbox", "bbox_type"})
_ROLE_FROM = {alias: TO_FROM[role] for alias, role in ROLE_ALIASES.items() if role in ("user", "assistant", "system")}
_USER_FROM = TO_FROM["user"]
_SYSTEM_FROM = TO_FROM["system"]
_PATH_MISS = (None, None, None)
_ABSENT = object()  # "no id" in a structure key


def fast_converter(src: str, dst: str, rctx: ReadContext, wctx: WriteContext, checker: Any) -> FastConvert | None:
    """The fast path for ``src`` -> ``dst`` with these options, or None when there is none."""
    if src != "swift" or dst != "internvl":
        return None
    options = rctx.options
    if options.native_grounding or options.fix_boxes or options.internvl_video != "auto":
        return None
    if not (checker.quick_boxes and checker.exact_boxes):
        return None
    # Text reaches the output unparsed only when it holds no '<' besides known tags; that proves
    # VD108 (markup the target reads) silent only while every string the consumer reads holds a '<'.
    if not all("<" in s for s in get_consumer(checker.target).interpreted):
        return None
    return SwiftToInternVL(rctx, wctx, checker).convert


class SwiftToInternVL:
    """ms-swift ``messages`` rows -> InternVL records, for the shapes described in the module doc."""

    def __init__(self, rctx: ReadContext, wctx: WriteContext, checker: Any) -> None:
        self.resolver = rctx.resolver
        self.out_resolver = wctx.resolver
        self.sizes = wctx.sizes
        self.with_sizes = wctx.options.sizes
        self.tally = wctx.tally
        self.clean: set[Any] = checker.clean
        self.structure_key = checker.structure_key  # the checker's key of a record (validators.check.shape_of)
        self.string_shape = checker.string_shape  # ... and of one string in it
        # strings that make a text other than plain text with <image> tags (in any text part: a
        # string found anywhere in the content is the conservative test, straddling a tag or not)
        self.markup = tuple(s for s in (*get_consumer(checker.target).interpreted, "<audio>") if s != "<image>")
        # source path -> (path written, (width, height) or None when unreadable, its shape_of)
        self.paths: dict[str, tuple[str, tuple[int, int] | None, Any]] = {}
        # flat structure keys whose records' structure (shape_of, the checker's key) passed the
        # checker. A flat key is built while converting (no second walk) and determines shape_of.
        # A passed structure stays passed: the checker's verdict on a structure is a function of it
        # (it forgets structures only to bound memory), so this set needs no invalidation.
        self.passed: set[tuple[Any, ...]] = set()

    def _media(self, path: Any) -> tuple[str | None, tuple[int, int] | None, Any]:
        """(path written, size or None, shape of the written path) of a source path, cached; the
        path's own error (outside the root, unreadable...) declines the record."""
        if type(path) is not str:
            return _PATH_MISS
        hit = self.paths.get(path)
        if hit is not None:
            return hit
        if not path or path.endswith("/"):
            return _PATH_MISS
        try:
            resolved = self.resolver.resolve(path)
        except Exception:  # the full path raises it again, as its rejection (or its crash)
            return _PATH_MISS
        if resolved.endswith("/"):
            return _PATH_MISS
        out = self.out_resolver.relative(resolved)
        if out.endswith("/"):
            return _PATH_MISS
        try:
            size: tuple[int, int] | None = self.sizes.size(resolved, path)
        except RecordError:
            size = None  # the full path writes no width/height, and rejects boxes on this image
        except Exception:
            return _PATH_MISS
        if size is not None and not (type(size[0]) is int and type(size[1]) is int and size[0] > 0 and size[1] > 0):
            return _PATH_MISS
        if len(self.paths) >= CACHE_LIMIT:
            self.paths.clear()
        hit = self.paths[path] = (out, size, self.string_shape(out, "image"))
        return hit

    def convert(self, payload: bytes) -> bytes | None:
        """The record's InternVL line, or None to decline (then nothing was changed).

        Nothing here raises: every value is type-checked before use, and the only calls that can
        fail on bad data (path resolution, the size probe) are caught in ``_media``; values nested
        too deeply for the structure key or the JSON writer decline the record."""
        try:
            try:
                record = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return None
            if type(record) is not dict:
                return None
            extras = None
            if not record.keys() <= TOP_KEYS:  # unknown keys: carried after the InternVL keys, or dropped (counted)
                extras = [(k, v) for k, v in record.items() if k not in TOP_KEYS]
                for k, _v in extras:
                    if k in MEDIA_KEYS:
                        return None  # "image" is an alias of "images" to ms-swift; videos, audios
            rid = record.get("id")
            # --- media
            images = record.get("images")
            if images is None or images == []:
                images = []
            elif type(images) is not list:
                return None
            paths: list[str] = []
            sizes: list[tuple[int, int] | None] = []
            string_shape = self.string_shape
            structure_key = self.structure_key
            key: list[Any] = [_ABSENT if rid is None else structure_key(rid, "id")]
            cached = self.paths.get
            for p in images:
                hit = cached(p) if type(p) is str else None
                out_path, size, path_shape = hit if hit is not None else self._media(p)
                if out_path is None:
                    return None
                paths.append(out_path)
                sizes.append(size)
                key.append(path_shape)
            # --- objects (a current-style dict of pixel boxes on image 0), validated as fill_current does
            objects = record.get("objects")
            refs: list[Any] = []
            bboxes: list[Any] = []
            if objects is not None:
                if type(objects) is not dict or not objects or not objects.keys() <= OBJECT_KEYS:
                    return None
                refs = objects.get("ref") or []
                bboxes = objects.get("bbox")
                if type(refs) is not list or type(bboxes) is not list:
                    return None
                if objects.get("bbox_type", "real") != "real":
                    return None
            grounding = objects is not None
            # --- messages
            raw_messages = record.get("messages")
            if type(raw_messages) is not list or not raw_messages:
                return None
            n_images = len(images)
            tags = 0
            ri = bi = 0
            clamped = 0
            conversations = []
            add = key.append
            first_user_has_image = False
            for k, m in enumerate(raw_messages):
                if type(m) is not dict:
                    return None
                turn_extras = None
                if len(m) != 2:
                    if "from" in m or "value" in m:
                        return None  # role/content aliases
                    turn_extras = [(ek, ev) for ek, ev in m.items() if ek != "role" and ek != "content"]
                role = m.get("role")
                content = m.get("content")
                if type(content) is not str or type(role) is not str:
                    return None
                who = _ROLE_FROM.get(role)
                if who is None or (who == _SYSTEM_FROM and k):
                    return None
                value = content
                if "<" in content:
                    lt = content.count("<")
                    n_img = content.count("<image>")
                    n_ref = n_box = 0
                    if n_img:
                        if who != _USER_FROM:
                            return None  # InternVL reads tags in human turns only: the full path rejects it
                        tags += n_img
                        if k == 0:
                            first_user_has_image = True
                    if lt != n_img:
                        if grounding:
                            n_ref = content.count("<ref-object>")
                            n_box = content.count("<bbox>")
                        if lt != n_img + n_ref + n_box:  # a '<' that is no tag: is it markup?
                            for tag in self.markup:
                                if tag in content:
                                    return None  # VD108 (markup InternVL reads), a video or audio tag, <img>
                    if n_ref or n_box:
                        filled = _fill(content, refs, ri, bboxes, bi, sizes[0] if n_images else None)
                        if filled is None:
                            return None
                        value, ri, bi, n_clamped = filled
                        clamped += n_clamped
                turn = {"from": who, "value": value}
                conversations.append(turn)
                add(who)
                add(string_shape(value, "value"))
                if turn_extras:  # per-message keys (loss...): kept after from/value, as write_turns does
                    for ek, ev in turn_extras:
                        turn[ek] = ev
                        add((ek, structure_key(ev, ek)))
            if tags != n_images:
                return None  # the full path inserts tags (counted) or rejects
            unused = (len(refs) - ri) + (len(bboxes) - bi) if grounding else 0
            # --- the InternVL record, keys in InternVLCodec.encode's order
            out: dict[str, Any] = {}
            if rid is not None:
                out["id"] = rid
            if n_images == 1 and first_user_has_image and conversations[0]["from"] == _USER_FROM:
                out["image"] = paths[0]
                if self.with_sizes and sizes[0]:
                    out["width"], out["height"] = sizes[0]
            elif n_images:
                out["image"] = paths
                if self.with_sizes and all(sizes):
                    out["width_list"] = [s[0] for s in sizes]  # type: ignore[index]
                    out["height_list"] = [s[1] for s in sizes]  # type: ignore[index]
            out["conversations"] = conversations
            key.append(len(out))  # with the id and image form: which of width/height, width_list/height_list are there
            key.append(type(out.get("image")))
            dropped = None
            if extras:  # Codec.put_extra: a key of the format is never overwritten
                for k, v in extras:
                    if k in INTERNVL_KEYS:
                        dropped = [*(dropped or ()), k]
                    else:
                        out[k] = v
                    key.append((k, structure_key(v, k)))
            flat = tuple(key)
            if flat not in self.passed:
                if self.structure_key(out) not in self.clean:
                    return None  # the checker has not passed this structure yet: the full path checks it
                if len(self.passed) >= CACHE_LIMIT:
                    self.passed.clear()
                self.passed.add(flat)
            data = orjson.dumps(out)
            tally = self.tally
            tally.clamped += clamped
            tally.unused_objects += unused
            if dropped:
                for k in dropped:
                    tally.dropped_keys[k] += 1
            return data
        except (RecursionError, TypeError, ValueError):  # nesting near the JSON limits: the full path rejects it
            return None


def _fill(
    content: str, refs: list[Any], ri: int, bboxes: list[Any], bi: int, size: tuple[int, int] | None
) -> tuple[str, int, int, int] | None:
    """``content`` with its ``<ref-object>``/``<bbox>`` placeholders filled as ms-swift fills them and
    InternVL writes them: refs from ``refs[ri:]``, pixel boxes from ``bboxes[bi:]`` on an image of
    ``size`` moved to 0-1000, adjacent ``<bbox>`` as one referent's boxes (``merge_adjacent_boxes``).
    Returns (text, next ref, next box, coordinates clamped), or None to decline."""
    pieces: list[str] = []
    clamped = 0
    pos = 0
    find = content.find
    i = find("<")
    while i >= 0:
        if content.startswith("<ref-object>", i):
            pieces.append(content[pos:i])
            if ri >= len(refs):
                return None
            ref = refs[ri]
            if type(ref) is not str or "<" in ref:
                return None  # VD108 decides on markup in a ref: the full path
            ri += 1
            pieces.append("<ref>" + ref + "</ref>")
            pos = i + 12
        elif content.startswith("<bbox>", i):
            pieces.append(content[pos:i])
            if size is None:
                return None  # no image, or no size: the full path rejects the box
            items = []
            pos = i
            while content.startswith("<bbox>", pos):
                if bi >= len(bboxes):
                    return None
                b = bboxes[bi]
                bi += 1
                if type(b) is not list or len(b) != 4:
                    return None
                x1, y1, x2, y2 = b
                if not (
                    type(x1) in _NUMBER
                    and type(y1) in _NUMBER
                    and type(x2) in _NUMBER
                    and type(y2) in _NUMBER
                    and -COORD_LIMIT <= x1 <= COORD_LIMIT  # Box.__post_init__'s test (False for NaN)
                    and -COORD_LIMIT <= y1 <= COORD_LIMIT
                    and -COORD_LIMIT <= x2 <= COORD_LIMIT
                    and -COORD_LIMIT <= y2 <= COORD_LIMIT
                ):
                    return None
                (a1, b1, a2, b2), n = to_norm1000(x1, y1, x2, y2, size)
                clamped += n
                if not (a1 < a2 and b1 < b2):
                    return None  # VD201 (reversed or empty box): the full path words the rejection
                items.append(f"[{a1}, {b1}, {a2}, {b2}]")
                pos += 6
            pieces.append("<box>[" + ", ".join(items) + "]</box>")
        else:  # <image> (kept as it is) or a plain '<'
            i = find("<", i + 1)
            continue
        i = find("<", pos)
    pieces.append(content[pos:])
    return "".join(pieces), ri, bi, clamped
