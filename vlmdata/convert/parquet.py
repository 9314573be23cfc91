"""Parquet files of Hugging Face datasets (pyarrow, the ``hf`` extra): reading a file, a folder of
files or the shards of a name, and the sharded, atomic writer. The HF messages codec
(``convert/hf.py``, docs/formats.md#hf) turns the rows into samples and back.

Reading: a ``.parquet`` file or a folder of them, in record batches; a missing ``NAME.parquet``
reads its ``NAME-*-of-*.parquet`` shards. Writing: ``NAME.parquet``, or ``NAME-00000-of-0000N.parquet``
shards when it holds more than ``--shard-size`` rows (renamed into place at commit; older shards
of NAME are removed then); ``--embed-images`` stores the file bytes with the basename as path, as
``datasets`` does. The first 2,000 records written fix the parquet columns: a later record with a
new key, or a value of another type, stops the run with a message saying so (write JSONL for such
data).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from vlmdata.convert.io import Raw
from vlmdata.errors import VlmdataError
from vlmdata.outputs import after_publish, discard, publish, temp_for

if TYPE_CHECKING:
    from vlmdata.convert.codec import Options

CONVERSATION_COLUMNS = ("messages", "prompt", "completion")  # HF's conversational columns
READ_BATCH = 1000  # parquet rows per record batch on read
ROW_GROUP = 1000  # parquet rows per row group on write (HF datasets' default batch)
SCHEMA_ROWS = 2000  # the first records, whose keys and value types fix the parquet columns
ROW_GROUP_EMBEDDED = 100  # with image bytes (datasets' row group size for image datasets)
MISSING_PYARROW = "parquet needs pyarrow: pip install 'vlmdata[hf]'"


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise VlmdataError(MISSING_PYARROW) from None
    return pa, pq


def is_parquet(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith(".")


def parquet_files(path: str) -> list[str]:
    """The file itself, or the .parquet files directly in a folder (sorted: shard order)."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if is_parquet(f))
        if not files:
            raise VlmdataError(f"{path}: no .parquet files in this folder")
        return files
    if not os.path.exists(path):
        shards = shards_of(path)
        if not shards:
            raise VlmdataError(f"{path}: no such file")
        return shards  # NAME.parquet written as NAME-00000-of-0000N.parquet shards
    return [path]


def _shard_pattern(stem: str) -> re.Pattern[str]:
    return re.compile(re.escape(stem) + r"-\d{5}-of-\d{5}\.parquet")


def shards_of(path: str) -> list[str]:
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if not base.endswith(".parquet") or not os.path.isdir(folder):
        return []
    pattern = _shard_pattern(base[: -len(".parquet")])
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if pattern.fullmatch(f))


def read_parquet(path: str) -> tuple[Iterator[Raw], Callable[[], None]]:
    """Rows of ``path`` (a file or a folder of shards) as Raw dicts, one record batch at a time."""
    pa, pq = _pyarrow()
    files = parquet_files(path)
    opened: list[Any] = []

    def open_file(name: str) -> Any:
        try:
            pf = pq.ParquetFile(name)
        except (pa.ArrowException, OSError) as exc:
            raise VlmdataError(f"{name}: not a readable parquet file ({exc})") from None
        columns = set(pf.schema_arrow.names)
        if "messages" not in columns and not {"prompt", "completion"} <= columns:
            raise VlmdataError(
                f"{name}: no messages (or prompt + completion) column; it has {', '.join(sorted(columns))}"
            )
        opened.append(pf)
        return pf

    first = open_file(files[0])  # errors about the file itself come before any work

    def rows() -> Iterator[Raw]:
        index = 0
        for k, name in enumerate(files):
            pf = first if k == 0 else open_file(name)
            for batch in pf.iter_batches(batch_size=READ_BATCH):
                for row in batch.to_pylist():
                    yield Raw(row, None, index)
                    index += 1
            pf.close()

    def close() -> None:
        for pf in opened:
            pf.close()

    return rows(), close


IMAGES_FEATURE = {"feature": {"_type": "Image"}, "_type": "Sequence"}  # datasets reads this (also 2.x)


class ParquetWriter:
    """HF parquet in shards of ``shard_size`` rows, atomically: temp files renamed at commit."""

    def __init__(self, path: str, options: Options) -> None:
        self.pa, self.pq = _pyarrow()
        self.path = path
        self.shard_size = options.shard_size
        self.embed = options.embed_images
        self.row_group = ROW_GROUP_EMBEDDED if self.embed else ROW_GROUP
        self.count = 0
        self.folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(self.folder, exist_ok=True)
        base = os.path.basename(path)
        self.stem = base[: -len(".parquet")] if base.endswith(".parquet") else base
        self._pending: list[dict[str, Any]] = []
        self._tmp: list[str] = []
        self._writer: Any = None
        self._in_shard = 0
        self._schema: Any = None
        self._names: frozenset[str] = frozenset()
        self._message_names: frozenset[str] = frozenset()

    # the RecordWriter interface

    def write(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= (self.row_group if self._schema is not None else SCHEMA_ROWS):
            self._flush(final=False)

    def write_many(self, encoded: list[bytes]) -> None:
        loads = orjson.loads
        self._pending.extend([loads(data) for data in encoded])
        if len(self._pending) >= (self.row_group if self._schema is not None else SCHEMA_ROWS):
            self._flush(final=False)

    def commit(self) -> None:
        try:
            self._flush(final=True)
            if self._writer is None:  # no rows: one empty file with the default columns
                self._schema = self._schema or self._infer([])
                self._open_shard()
            self._writer.close()
            self._writer = None
        except BaseException:
            self.abort()  # the pipeline aborts on errors while writing, not on those of commit itself
            raise
        n = len(self._tmp)
        finals = [self.path] if n == 1 else [self._shard_name(k, n) for k in range(n)]
        for tmp, final in zip(self._tmp, finals, strict=True):
            publish(tmp, final)
        self._tmp = []
        after_publish(lambda: self._remove_stale(set(finals)))

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for tmp in self._tmp:
            discard(tmp)
        self._tmp = []

    # internals

    def _shard_name(self, k: int, n: int) -> str:
        return os.path.join(self.folder, f"{self.stem}-{k:05d}-of-{n:05d}.parquet")

    def _remove_stale(self, finals: set[str]) -> None:
        """Shards of an earlier, larger run under the same name would join a ``NAME-*`` glob."""
        pattern = _shard_pattern(self.stem)
        stale = [os.path.join(self.folder, f) for f in os.listdir(self.folder) if pattern.fullmatch(f)]
        if self.path not in finals:
            stale.append(self.path)
        for name in stale:
            if name not in finals and os.path.isfile(name):
                os.unlink(name)

    def _flush(self, *, final: bool) -> None:
        pending = self._pending
        if self._schema is None and pending:
            self._schema = self._infer(pending)  # the first chunk fixes the columns
        start = 0
        while len(pending) - start >= self.row_group or (final and start < len(pending)):
            if self._writer is None or self._in_shard >= self.shard_size:
                self._open_shard()
            take = min(self.row_group, self.shard_size - self._in_shard, len(pending) - start)
            rows = pending[start : start + take]
            start += take
            self._writer.write_table(self._table(rows), row_group_size=take)
            self._in_shard += take
            self.count += take
        del pending[:start]

    def _open_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        fd, tmp = temp_for(self.path, f"{len(self._tmp):05d}")
        os.close(fd)
        self._tmp.append(tmp)
        try:
            self._writer = self.pq.ParquetWriter(tmp, self._schema)
        except self.pa.ArrowNotImplementedError as exc:  # e.g. a key whose values are all {}
            raise VlmdataError(f"{self.path}: the records' columns cannot be written as parquet ({exc})") from None
        self._in_shard = 0

    def _infer(self, rows: list[dict[str, Any]]) -> Any:
        pa = self.pa
        image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        block = pa.struct([("type", pa.string()), ("text", pa.string())])
        plain = [{k: v for k, v in r.items() if k not in ("images", "videos")} for r in rows]
        try:
            row_type = pa.array(plain).type if plain else pa.struct([])  # the union of the rows' keys
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:  # Overflow: an int beyond int64
            raise VlmdataError(f"{self.path}: the records' keys do not fit one parquet schema ({exc})") from None
        fields = []
        for f in (row_type.field(k) for k in range(row_type.num_fields)):
            if f.name in CONVERSATION_COLUMNS:
                fields.append(pa.field(f.name, pa.list_(self._message_type(f.type, block))))
            else:
                fields.append(pa.field(f.name, _no_null(pa, f.type)))
        if not any(f.name in CONVERSATION_COLUMNS for f in fields):
            fields.insert(0, pa.field("messages", pa.list_(self._message_type(None, block))))
        at = max(k for k, f in enumerate(fields) if f.name in CONVERSATION_COLUMNS) + 1
        media = [pa.field("images", pa.list_(image))]  # always: TRL and datasets expect the column
        if any(r.get("videos") for r in rows):
            media.append(pa.field("videos", pa.list_(pa.string())))
        fields[at:at] = media
        features = {"images": IMAGES_FEATURE}
        schema = pa.schema(fields, metadata={"huggingface": orjson.dumps({"info": {"features": features}})})
        self._names = frozenset(schema.names)
        return schema

    def _message_type(self, inferred: Any, block: Any) -> Any:
        pa = self.pa
        fields = [pa.field("role", pa.string()), pa.field("content", pa.list_(block))]
        names = {"role", "content"}
        value = getattr(inferred, "value_type", None)
        if value is not None and pa.types.is_struct(value):
            for k in range(value.num_fields):
                f = value.field(k)
                if f.name not in names:
                    fields.append(pa.field(f.name, _no_null(pa, f.type)))
                    names.add(f.name)
        self._message_names = frozenset(self._message_names | names)
        return pa.struct(fields)

    def _table(self, rows: list[dict[str, Any]]) -> Any:
        pa = self.pa
        names = self._names
        message_names = self._message_names
        for k, row in enumerate(rows):
            if not row.keys() <= names:
                self._refuse(k, f"new key(s) {sorted(row.keys() - names)}")
            for column in CONVERSATION_COLUMNS:
                for m in row.get(column) or ():
                    if not m.keys() <= message_names:
                        self._refuse(k, f"new message key(s) {sorted(m.keys() - message_names)}")
            row["images"] = [self._image(v) for v in row.get("images") or ()]
        try:
            return pa.Table.from_pylist(rows, schema=self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise VlmdataError(
                f"{self.path}: records near row {self.count} do not fit the parquet columns that the first "
                f"records fixed ({exc}); give every record the same keys and value types, or write JSONL"
            ) from None

    def _refuse(self, k: int, what: str) -> None:
        raise VlmdataError(
            f"{self.path}: row {self.count + k} has {what} that the first records did not have; parquet "
            "keeps one set of columns: give every record the same keys, or write JSONL"
        )

    def _image(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            return {"bytes": None, "path": value}
        with open(value["file"], "rb") as f:
            return {"bytes": f.read(), "path": value["path"]}


def _no_null(pa: Any, tp: Any) -> Any:
    """An inferred type with its all-null parts made strings (a later row may fill them)."""
    if pa.types.is_null(tp):
        return pa.string()
    if pa.types.is_list(tp) or pa.types.is_large_list(tp):
        return pa.list_(_no_null(pa, tp.value_type))
    if pa.types.is_struct(tp):
        return pa.struct([pa.field(tp.field(k).name, _no_null(pa, tp.field(k).type)) for k in range(tp.num_fields)])
    return tp
