"""LLaMA-Factory ``sharegpt`` datasets and their dataset_info.json entry (docs/formats.md#sharegpt).

Reading follows LLaMA-Factory 0.9.5 (``SharegptDatasetConverter``, ``_find_medias`` and the
multimodal plugins' ``_validate_messages``):

* columns and role/content tags come from the dataset_info entry (options ``dataset_info`` and
  ``dataset_name``, or the file's only sharegpt entry; an entry's ``tags`` replace all seven
  defaults, a tag it leaves out is unset, as in LLaMA-Factory's ``DatasetAttr.join``); without an
  entry (no ``dataset_info``, or one that does not exist yet and that only the writer will create)
  they come from the data:
  ``role``/``content`` with user/assistant (the mllm_demo entry), else ``from``/``value`` with
  LLaMA-Factory's defaults human/gpt/observation/function_call/system, in ``messages`` or
  ``conversations``, beside ``images``/``videos``/``audios``/``system``/``tools``;
* an optional first system message (else the ``system`` column), then user/observation and
  assistant/function_call turns alternating, an even number of them; LLaMA-Factory skips any
  other row ("Invalid role tag" / "Invalid message count"), so it is rejected with that reason;
* ``<image>``/``<video>``/``<audio>`` counted over all messages must equal the media lists:
  LLaMA-Factory inserts nothing and a mismatch aborts training, so it is rejected with the counts;
* media paths resolve against ``media_dir``: the dataset_info folder (LLaMA-Factory's
  ``dataset_dir``) when an entry is used, else the data file's folder, unless ``--root`` names it;
* LLaMA-Factory has no grounding syntax of its own: Qwen2-VL tokens and InternVL tags are parsed
  (both 0-1000 of the original image).

Writing emits LLaMA-Factory's default layout (``conversations`` of ``from``/``value`` turns, a
leading system turn for a system prompt, media as lists, a JSON list unless the output ends in
``.jsonl``), boxes as Qwen2-VL tokens in 0-1000, media paths relative to ``--root`` (else to the
dataset_info folder, else to the input's root); rows LLaMA-Factory would skip or abort on are
refused. With ``dataset_info`` the output's entry (``dataset_name`` or the output's stem) is added
or updated in that file, other entries untouched. The reader and the writer share these options.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from vlmdata.convert.codec import Codec, Layout, Options, ReadContext, WriteContext
from vlmdata.convert.grounding import Counters, parse_text, render_parts
from vlmdata.convert.io import RecordWriter, small_json_object
from vlmdata.convert.qwen import QWEN_FRAME_OPTIONS, RESIZED_MODEL, box_converter, check_settings, to_resized_frame
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import atomic_write_bytes, readable_path
from vlmdata.schemas.sample import MediaRef, Message, Part, Sample, Text
from vlmdata.schemas.sharegpt import (
    DATASET_INFO_ENTRY,
    DEFAULT_COLUMNS,
    DEFAULT_TAGS,
    ROLE_CONTENT_TAGS,
    SHAREGPT_RECORD,
    SOURCE_KEYS,
)

SOURCE = "LLaMA-Factory"
DATASET_INFO = "dataset_info.json"  # LLaMA-Factory reads DATASET_DIR/dataset_info.json (DATA_CONFIG)
SYNTAXES = ("qwen", "internvl")
QWEN_ONLY = ("qwen",)  # --qwen-model qwen2.5-vl: Qwen tokens hold resized pixels
MEDIA = (("images", "image"), ("videos", "video"), ("audios", "audio"))
TAG_ROLES = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "tool_response",
    "function_tag": "tool_call",
    "system_tag": "system",
}
ROLE_TAGS = {role: tag for tag, role in TAG_ROLES.items()}
PROMPT_ROLES = ("user", "tool_response")  # LLaMA-Factory's odd_tags: turns 1, 3, 5...
ANSWER_ROLES = ("assistant", "tool_call")  # even_tags: turns 2, 4, 6...
# What the writer emits: LLaMA-Factory's default column and tags, every tag spelled out in the entry.
WRITE_COLUMNS = {"messages": "conversations", "images": "images", "videos": "videos", "audios": "audios"}
WRITE_TOOLS = "tools"
WRITE_KEYS = frozenset({*WRITE_COLUMNS.values(), WRITE_TOOLS, "system", "id"})
MEDIA_TAGS = ("<image>", "<video>", "<audio>")


@dataclass(frozen=True)
class Spec:
    """How one dataset's records are laid out: column names, tags, and where media resolve."""

    messages: str
    columns: dict[str, str | None]  # system, tools, images, videos, audios -> column name or None
    role_tag: str
    content_tag: str
    roles: dict[str, str]  # tag value -> canonical role
    system_tag: str | None
    known: frozenset[str]

    @staticmethod
    def make(messages: str, columns: dict[str, str | None], tags: dict[str, str | None]) -> Spec:
        role_tag, content_tag = tags.get("role_tag"), tags.get("content_tag")
        if not role_tag or not content_tag:
            raise VlmdataError("the dataset_info entry's tags set no role_tag/content_tag; LLaMA-Factory needs both")
        roles = {tags[k]: role for k, role in TAG_ROLES.items() if tags.get(k)}
        known = frozenset({messages, "id", *(c for c in columns.values() if c)})
        return Spec(messages, columns, role_tag, content_tag, roles, tags.get("system_tag") or None, known)  # type: ignore[arg-type]


def _detected(messages: str, tags: dict[str, str]) -> Spec:
    columns = {"system": "system", "tools": "tools", "images": "images", "videos": "videos", "audios": "audios"}
    return Spec.make(messages, columns, tags)  # type: ignore[arg-type]


DETECTED = {
    (col, tag): _detected(col, tags)
    for col in ("messages", "conversations")
    for tag, tags in (("role", ROLE_CONTENT_TAGS), ("from", DEFAULT_TAGS))
}


# --- dataset_info.json --------------------------------------------------------------------------


def load_dataset_info(path: str, *, must_exist: bool) -> dict[str, Any]:
    if not os.path.exists(path):
        if must_exist:
            raise VlmdataError(f"{path}: no such dataset_info file")
        return {}
    try:
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except orjson.JSONDecodeError as exc:
        raise VlmdataError(f"{path}: not valid JSON ({exc}); fix it or write another dataset_info.json") from None
    if not isinstance(data, dict):
        raise VlmdataError(f"{path}: dataset_info.json is a JSON object of named dataset entries")
    return data


def entry_spec(path: str, name: str | None) -> Spec:
    """The Spec of entry ``name`` (or of the file's only sharegpt entry) of dataset_info ``path``."""
    info = load_dataset_info(path, must_exist=True)
    if name is None:
        sharegpt = [k for k, v in info.items() if isinstance(v, dict) and v.get("formatting") == "sharegpt"]
        if len(sharegpt) != 1:
            shown = ", ".join(sharegpt[:10]) + (" ..." if len(sharegpt) > 10 else "")
            raise VlmdataError(
                f"{path} has {len(sharegpt)} sharegpt entries ({shown or 'none'}); "
                "pass --dataset-name to say which one describes the input"
            )
        name = sharegpt[0]
    if name not in info:
        raise VlmdataError(f"{path} has no entry {name!r} (LLaMA-Factory: 'Undefined dataset {name}')")
    try:
        entry = DATASET_INFO_ENTRY.validate_python(info[name])
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise VlmdataError(f"{path}: entry {name!r}: {loc}: {err['msg']}") from None
    formatting = entry.get("formatting", "alpaca")
    if formatting != "sharegpt":
        raise VlmdataError(f"{path}: entry {name!r} has formatting {formatting!r}; vlmdata reads sharegpt entries")
    if entry.get("ranking"):
        raise VlmdataError(f"{path}: entry {name!r} is a ranking (preference) dataset; vlmdata reads SFT data")
    # LLaMA-Factory's DatasetAttr.join: a "columns"/"tags" object replaces every default, and
    # a name it leaves out becomes None.
    given = entry.get("columns")
    columns = {k: given.get(k) for k in DEFAULT_COLUMNS} if given is not None else dict(DEFAULT_COLUMNS)
    messages = columns.pop("messages")
    if not messages:
        raise VlmdataError(f"{path}: entry {name!r} has columns without 'messages'; LLaMA-Factory cannot read it")
    given_tags = entry.get("tags")
    tags = {k: given_tags.get(k) for k in DEFAULT_TAGS} if given_tags is not None else dict(DEFAULT_TAGS)
    return Spec.make(messages, columns, tags)


def update_dataset_info(
    path: str, name: str, *, file_name: str, columns: dict[str, str], tags: dict[str, str]
) -> dict[str, Any]:
    """Add or update entry ``name``; other entries, and settings such as num_samples, are kept.

    Keys that would make LLaMA-Factory read the entry from elsewhere (hub urls, script, cloud
    file) or as something else (ranking, subset, folder) are removed from an existing entry.
    """
    info = load_dataset_info(path, must_exist=False)
    old = info.get(name)
    entry = dict(old) if isinstance(old, dict) else {}
    for key in (*SOURCE_KEYS, "ranking", "subset", "folder"):
        entry.pop(key, None)
    entry.update(file_name=file_name, formatting="sharegpt", columns=columns, tags=tags)
    info[name] = entry
    atomic_write_bytes(path, orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")
    return info


class ColumnsWriter(RecordWriter):
    """The JSON writer, noting which optional columns the records use (for the entry's columns)."""

    WATCH: ClassVar[dict[str, bytes]] = {
        col: b'"' + col.encode() + b'":' for col in ("images", "videos", "audios", WRITE_TOOLS)
    }

    def __init__(self, path: str, layout: str) -> None:
        super().__init__(path, layout)
        self.used: set[str] = set()
        self._pending = dict(self.WATCH)

    def _note(self, data: bytes) -> None:
        for col, key in list(self._pending.items()):
            if key in data:  # orjson escapes quotes inside strings, so only real keys match
                self.used.add(col)
                del self._pending[col]

    def write_bytes(self, data: bytes) -> None:
        if self._pending:
            self._note(data)
        super().write_bytes(data)

    def write_many(self, encoded: list[bytes]) -> None:
        if self._pending:
            for data in encoded:
                self._note(data)
        super().write_many(encoded)

    def append_part(self, part: str | None, count: int) -> None:
        """A shard's records: scanned for the columns still unseen (usually the first chunk has them)."""
        if part is not None and self._pending:
            keep = max(len(k) for k in self.WATCH.values()) - 1
            tail = b""
            with open(part, "rb") as f:
                while self._pending and (chunk := f.read(1 << 20)):
                    self._note(tail + chunk)  # the tail: a key cut by the chunk's end
                    tail = chunk[-keep:]
        super().append_part(part, count)


# --- the codec ----------------------------------------------------------------------------------


class SharegptCodec(Codec):
    name = "sharegpt"
    read_options = frozenset(
        {"dataset_info", "dataset_name", "read_dataset_info", "read_dataset_name", *QWEN_FRAME_OPTIONS}
    )
    write_options = frozenset({"dataset_info", "dataset_name", "media_dir", *QWEN_FRAME_OPTIONS})
    title = "LLaMA-Factory sharegpt"
    layouts = ("json", "jsonl")
    default_layout = "json"
    fields = (
        "conversations|messages[{from|role, value|content}] (tags from dataset_info.json), images, videos, "
        "audios, system, tools"
    )
    boxes = "none built in: Qwen2-VL <|object_ref_start|>..<|box_start|>(x1,y1),(x2,y2)<|box_end|>, 0-1000"
    schema = SHAREGPT_RECORD
    known_keys = WRITE_KEYS

    def __init__(self) -> None:
        # Per-run caches, keyed by the identity of the run's Options (held, so never reused).
        self._read_for: Options | None = None
        self._read_spec: Spec | None = None
        self._read_resolver: PathResolver | None = None
        self._write_for: Options | None = None
        self._write_resolver: PathResolver | None = None
        self._columns: dict[str, set[str]] = {}

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict):
            return 0.0
        conv = record.get("conversations")
        if isinstance(conv, list):
            score = 0.3
            if any(isinstance(record.get(k), list) for k in ("images", "videos", "audios")):
                score = 0.9  # LLaVA/InternVL say image/video; the plural lists are LLaMA-Factory's
            elif "system" in record or "tools" in record:
                score = 0.8
            if any(isinstance(t, dict) and t.get("from") in ("observation", "function_call") for t in conv):
                score = 0.9
            return score
        if isinstance(record.get("messages"), list):
            return 0.5  # ms-swift rows look the same; ms-swift's codec answers 0.95 for them
        return 0.0

    def claims(self, path: str) -> bool:
        """A data file named by a sharegpt entry of the dataset_info.json beside it is that entry's."""
        return (
            path != "-"
            and naming_entry(os.path.join(os.path.dirname(os.path.abspath(path)), DATASET_INFO), path) is not None
        )

    def prepare_input(self, path: str, options: Options) -> Options:
        """The dataset_info.json (given, else the one beside the file) and its entry whose file_name is ``path``."""
        if path == "-" or options.dataset_name:
            return options
        info = options.dataset_info or os.path.join(os.path.dirname(os.path.abspath(path)), DATASET_INFO)
        name = naming_entry(info, path)
        if name is None:
            return options
        try:
            entry_spec(info, name)
        except VlmdataError:  # an unusable entry: the columns come from the data, validate's VD43x says why
            return options
        return dataclasses.replace(options, read_dataset_info=info, read_dataset_name=name)

    def check_options(self, options: Options) -> None:
        """--meta is InternVL's; --dataset-info must be where LLaMA-Factory looks for it."""
        super().check_options(options)
        check_settings(options)
        if options.dataset_name and not options.dataset_info:
            raise VlmdataError("--dataset-name names an entry of --dataset-info; pass both")
        if options.dataset_info:
            if os.path.basename(options.dataset_info) != DATASET_INFO:
                raise VlmdataError(
                    f"--dataset-info {options.dataset_info}: LLaMA-Factory reads DATASET_DIR/{DATASET_INFO}; "
                    f"name the file {DATASET_INFO}"
                )
            load_dataset_info(options.dataset_info, must_exist=False)  # a broken file fails before any work

    def open_output(self, path: str, layout: str, options: Options) -> Any | None:
        writer = ColumnsWriter(path, layout)
        self._columns[path] = writer.used
        return writer

    def side_files(self, options: Options) -> list[tuple[str, str | None]]:
        return [("--dataset-info", options.dataset_info)]

    def after_write(self, dst: str, written: int, root: str, options: Options) -> list[str]:
        used = self._columns.pop(dst, None)
        if not options.dataset_info or dst == "-":
            return []
        if used is None:
            used = _scan_columns(readable_path(dst))  # the output is staged until the run ends
        info_dir = os.path.dirname(os.path.abspath(options.dataset_info))
        out = os.path.abspath(dst)
        file_name = os.path.relpath(out, info_dir) if _under(out, info_dir) else out
        columns = {"messages": WRITE_COLUMNS["messages"]}
        for col in ("images", "videos", "audios", WRITE_TOOLS):
            if col in used:
                columns[col] = col
        name = options.dataset_name or os.path.splitext(os.path.basename(dst))[0]
        update_dataset_info(options.dataset_info, name, file_name=file_name, columns=columns, tags=dict(DEFAULT_TAGS))
        return [options.dataset_info]

    # --- reading ---------------------------------------------------------------------------

    def _reading(self, options: Options, ctx: ReadContext) -> tuple[Spec | None, PathResolver]:
        if options is not self._read_for:
            spec = None
            resolver = ctx.resolver
            # A dataset_info file that does not exist yet is only the writer's (sharegpt -> sharegpt
            # into a new dataset folder): the layout is then detected from the data.
            info = options.read_dataset_info or options.dataset_info
            if info and os.path.exists(info):
                spec = entry_spec(info, options.read_dataset_name or options.dataset_name)
                if options.root is None:  # media_dir defaults to dataset_dir
                    media_dir = os.path.dirname(os.path.abspath(info))
                    resolver = PathResolver(media_dir, explicit_root=False, allow_outside=options.allow_outside_root)
            elif options.dataset_name and not options.dataset_info:
                raise VlmdataError("--dataset-name names an entry of --dataset-info; pass both")
            self._read_for, self._read_spec, self._read_resolver = options, spec, resolver
        return self._read_spec, self._read_resolver  # type: ignore[return-value]

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        spec, resolver = self._reading(ctx.options, ctx)
        if spec is None:
            spec = _detect_spec(record)
        raw = record.get(spec.messages)
        if not isinstance(raw, list):
            got = "missing" if raw is None else type(raw).__name__
            raise RecordError(
                f"column {spec.messages!r} must be a list of messages ({got})",
                "fix the record, or give the dataset_info entry that names its columns",
            )
        messages = _read_messages(raw, spec, QWEN_ONLY if ctx.options.qwen_model == RESIZED_MODEL else SYNTAXES)
        system_col = spec.columns.get("system")
        value = record.get(system_col) if system_col else None
        if value:  # the system column; a leading system message overrides it (LLaMA-Factory)
            if messages[0].role != "system":
                if not isinstance(value, str):
                    raise RecordError(f"column {system_col!r} must be a string, got {type(value).__name__}")
                _no_media_tags(value, f"column {system_col!r}")
                messages.insert(0, Message("system", [Text(value)]))
            elif messages[0].text() != value:
                raise RecordError(
                    f"the record has a system message and a different {system_col!r} column",
                    "LLaMA-Factory uses the message and ignores the column: remove one of them",
                )
        _check_roles([m.role for m in messages])
        media = {kind: _media(record, spec.columns.get(col), kind, resolver) for col, kind in MEDIA}
        if ctx.options.qwen_model == RESIZED_MODEL:  # LLaMA-Factory's Qwen2.5-VL data: resized pixels
            to_resized_frame(messages, media["image"], ctx)
        counts = {kind: 0 for _, kind in MEDIA}
        for m in messages:
            for p in m.parts:
                if p.type in counts:
                    counts[p.type] += 1
        for _col, kind in MEDIA:
            if counts[kind] != len(media[kind]):
                raise RecordError(
                    f"{counts[kind]} <{kind}> tag(s) but {len(media[kind])} {kind}(s) in the record",
                    f"LLaMA-Factory counts <{kind}> in all messages and aborts training on a mismatch "
                    f"('The number of {kind}s does not match the number of <{kind}> tokens'): "
                    f"add or remove <{kind}> tags",
                )
        extra = {k: v for k, v in record.items() if k not in spec.known}
        tools_col = spec.columns.get("tools")
        if tools_col and record.get(tools_col) not in (None, ""):
            extra[WRITE_TOOLS] = record[tools_col]
        return Sample(messages, media["image"], media["video"], media["audio"], record.get("id"), extra)

    # --- writing ---------------------------------------------------------------------------

    def _writing(self, ctx: WriteContext) -> PathResolver | None:
        """Paths are written relative to LLaMA-Factory's media_dir, or absolute when it is unknown."""
        options = ctx.options
        if options is not self._write_for:
            media_dir = written_media_dir(options)
            resolver = PathResolver(media_dir, explicit_root=False, allow_outside=True) if media_dir else None
            self._write_for, self._write_resolver = options, resolver
        return self._write_resolver

    def read_root(self, options: Options, default: str) -> str:
        """LLaMA-Factory's dataset_dir: the folder of the dataset_info.json that names the input."""
        return os.path.dirname(os.path.abspath(options.read_dataset_info)) if options.read_dataset_info else default

    def media_root(self, options: Options, default: str) -> str:
        """LLaMA-Factory's media_dir: --media-dir, else the dataset_info.json folder."""
        if options.read_dataset_info and not (options.media_dir or options.dataset_info):
            return os.path.dirname(os.path.abspath(options.read_dataset_info))
        return written_media_dir(options) or default

    def advice(self, dst: str, options: Options) -> list[str]:
        media_dir = written_media_dir(options)
        if media_dir is None:
            return [
                "media paths were written absolute (no --dataset-info or --media-dir): LLaMA-Factory opens them "
                "whatever its media_dir"
            ]
        info_dir = os.path.dirname(os.path.abspath(options.dataset_info)) if options.dataset_info else None
        if media_dir == info_dir:
            return [
                f"media paths are relative to {media_dir}, LLaMA-Factory's default media_dir (the dataset_info.json "
                "folder): leave media_dir unset"
            ]
        return [f"media paths are relative to {media_dir}: set media_dir: {media_dir} in LLaMA-Factory's arguments"]

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        msgs = sample.messages
        # Role order, tag counts and tags in the system prompt are LLaMA-Factory's rules (consumers/
        # llamafactory.py): the write-time check refuses such records with their code (VD110/VD112/VD101).
        convert = box_converter(sample, ctx)  # Qwen2-VL 0-1000, or Qwen2.5-VL resized pixels (--qwen-model)
        role_tag, content_tag = DEFAULT_TAGS["role_tag"], DEFAULT_TAGS["content_tag"]
        turns = []
        for m in msgs:
            turn: dict[str, Any] = {
                role_tag: DEFAULT_TAGS[ROLE_TAGS[m.role]],
                content_tag: render_parts(m.parts, "qwen", convert),
            }
            for k, v in m.extra.items():
                if k in turn:
                    ctx.tally.dropped_keys[f"message.{k}"] += 1
                else:
                    turn[k] = v
            turns.append(turn)
        out: dict[str, Any] = {WRITE_COLUMNS["messages"]: turns}
        resolver = self._writing(ctx)
        for key, _kind in MEDIA:
            items = getattr(sample, key)
            if items:
                out[WRITE_COLUMNS[key]] = [_out_path(m, resolver) for m in items]
        if sample.id is not None:
            out["id"] = sample.id
        for k, v in sample.extra.items():
            if k == WRITE_TOOLS and k not in out:
                out[k] = v
            elif k in out or k in WRITE_KEYS:
                ctx.tally.dropped_keys[k] += 1
            else:
                out[k] = v
        return out


# --- helpers ------------------------------------------------------------------------------------


def _detect_spec(record: dict[str, Any]) -> Spec:
    """Columns and tags from the record itself (no dataset_info entry given)."""
    col = "messages" if "messages" in record else "conversations"
    raw = record.get(col)
    first = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], dict) else {}
    tag = "role" if "role" in first else "from"
    return DETECTED[(col, tag)]


def _read_messages(raw: list[Any], spec: Spec, syntaxes: tuple[str, ...]) -> list[Message]:
    if not raw:
        raise RecordError("the conversation is empty", "LLaMA-Factory drops such rows ('Dropped invalid example')")
    counters = Counters()
    messages: list[Message] = []
    role_tag, content_tag = spec.role_tag, spec.content_tag
    for k, turn in enumerate(raw):
        if not isinstance(turn, dict):
            raise RecordError(f"message {k} is not an object ({type(turn).__name__})")
        if role_tag not in turn or content_tag not in turn:
            missing = role_tag if role_tag not in turn else content_tag
            raise RecordError(
                f"message {k} has no {missing!r} key (it has {sorted(turn)})",
                "LLaMA-Factory fails on it (KeyError): fix the message or the entry's role_tag/content_tag",
            )
        tag = turn[role_tag]
        role = spec.roles.get(tag) if isinstance(tag, str) else None
        if role is None or (role == "system" and k != 0):
            allowed = ", ".join(repr(t) for t in spec.roles)
            raise RecordError(
                f"message {k} has {role_tag}={tag!r}"
                + (" (a system message is only allowed first)" if role == "system" else ""),
                f"LLaMA-Factory skips this row ('Invalid role tag'); the tags are {allowed}",
            )
        content = turn[content_tag]
        if not isinstance(content, str):
            raise RecordError(f"message {k}: {content_tag} must be a string, got {type(content).__name__}")
        if role == "system":
            _no_media_tags(content, "the system message")
            parts: list[Part] = [Text(content)] if content else []
        else:
            parts = parse_text(content, syntaxes, counters)
        extra = {key: v for key, v in turn.items() if key != role_tag and key != content_tag} if len(turn) > 2 else {}
        messages.append(Message(role, parts, extra))  # type: ignore[arg-type]
    return messages


def _no_media_tags(text: str, what: str) -> None:
    for tag in MEDIA_TAGS:
        if tag in text:
            raise RecordError(
                f"{what} holds {tag}",
                "LLaMA-Factory neither counts nor replaces media tags in the system prompt: move it to a user turn",
            )


def _check_roles(roles: list[str]) -> None:
    """LLaMA-Factory's sharegpt rule: [system], then prompt/answer turns alternating, in pairs."""
    turns = roles[1:] if roles and roles[0] == "system" else roles
    for k, role in enumerate(turns):
        prompt = k % 2 == 0
        if role not in (PROMPT_ROLES if prompt else ANSWER_ROLES):
            where = k + len(roles) - len(turns)
            wanted = "a user/observation" if prompt else "an assistant/function_call"
            raise RecordError(
                f"message {where} is {role!r} where LLaMA-Factory expects {wanted} turn; "
                "LLaMA-Factory would skip this row ('Invalid role tag')",
                "make the turns alternate user/assistant (tool results as observation, calls as function_call)",
            )
    if not turns or len(turns) % 2:
        last = f"ends with a {turns[-1]!r} turn" if turns else "has no turns besides the system prompt"
        raise RecordError(
            f"the conversation {last} ({len(turns)} non-system message(s), LLaMA-Factory needs pairs); "
            "LLaMA-Factory would skip this row ('Invalid message count')",
            "remove the trailing turn or add its answer" if turns else "add a user/assistant pair",
        )


def _media(record: dict[str, Any], column: str | None, kind: str, resolver: PathResolver) -> list[MediaRef]:
    raw = record.get(column) if column else None
    if raw is None or raw == "" or raw == []:
        return []
    items = raw if isinstance(raw, list) else [raw]  # a single value is wrapped (_find_medias)
    out = []
    for item in items:
        if isinstance(item, list):  # a video given as its frames
            if not item:
                raise RecordError(f"column {column!r} holds an empty frame list", "remove it")
            frames = [_ref(f, kind, resolver, column) for f in item]
            first = frames[0]
            first.frames = [f.resolved or f.path for f in frames]
            out.append(first)
        else:
            out.append(_ref(item, kind, resolver, column))
    return out


def _ref(item: Any, kind: str, resolver: PathResolver, column: str | None) -> MediaRef:
    if isinstance(item, dict):
        if not item.get("path"):
            raise RecordError(f"column {column!r} holds embedded bytes without a path", "write the bytes to a file")
        item = item["path"]
    if not isinstance(item, str) or not item:
        raise RecordError(f"{kind} path must be a non-empty string, got {item!r}", "fix the media list")
    return MediaRef(item, resolver.resolve(item))


_NAMING: dict[tuple[str, float], dict[str, str]] = {}


def naming_entry(info_path: str, data_path: str) -> str | None:
    """The sharegpt entry of ``info_path`` whose file_name is ``data_path`` (None: none, or no such file)."""
    try:
        key = (os.path.abspath(info_path), os.path.getmtime(info_path))
    except OSError:
        return None
    files = _NAMING.get(key)
    if files is None:
        files = {}
        info = small_json_object(info_path)
        folder = os.path.dirname(key[0])
        if isinstance(info, dict):
            for name, entry in info.items():
                if isinstance(entry, dict) and entry.get("formatting") == "sharegpt":
                    file_name = entry.get("file_name")
                    if isinstance(file_name, str) and file_name:
                        files.setdefault(os.path.normpath(os.path.join(folder, file_name)), name)
        _NAMING[key] = files
    return files.get(os.path.abspath(data_path))


def written_media_dir(options: Options) -> str | None:
    """The folder LLaMA-Factory joins written paths to: --media-dir, else the dataset_info folder
    (its default media_dir is dataset_dir), else unknown (paths are written absolute)."""
    if options.media_dir:
        return os.path.abspath(options.media_dir)
    if options.dataset_info:
        return os.path.dirname(os.path.abspath(options.dataset_info))
    return None


def _out_path(media: MediaRef, resolver: PathResolver | None) -> Any:
    if resolver is None:
        return list(media.frames) if media.frames else media.resolved or media.path
    if media.frames:
        return [resolver.relative(f) for f in media.frames]
    return resolver.relative(media.resolved or media.path)


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _scan_columns(path: str) -> set[str]:
    """Which optional columns a written file uses (when it was not written through open_output)."""
    used: set[str] = set()
    if not os.path.exists(path):
        return used
    keys = ColumnsWriter.WATCH
    tail = b""
    with open(path, "rb") as f:
        while len(used) < len(keys):
            chunk = f.read(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            used.update(col for col, key in keys.items() if key in data)
            tail = data[-16:]
    return used
