"""Streaming record readers and atomic writers.

JSONL is read line by line as bytes (the codec validates each line from bytes). A JSON list is
read incrementally: chunks of text go through the C-accelerated ``json`` scanner one element at a
time, so memory holds one element plus one chunk, never the file. Writers write to a temporary
file beside the target and rename it into place only when the whole run succeeded.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

import orjson

from vlmdata.errors import VlmdataError
from vlmdata.outputs import discard, publish, temp_for

CHUNK = 1 << 20
MAX_ELEMENT = 256 << 20  # one JSON list element larger than this is treated as broken


@dataclass(slots=True)
class Raw:
    """One record as read: JSONL bytes, or an already parsed JSON list element."""

    payload: bytes | Any
    line: int | None
    index: int


class SyntaxErrorInFile(Exception):
    """The JSON list cannot be read past this point (reported once, with line and column)."""

    def __init__(self, message: str, line: int, column: int, index: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.index = index


def open_input(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    if os.path.isdir(path):
        raise VlmdataError(f"{path}: is a directory; give a data file (.jsonl or .json)")
    if not os.path.exists(path):
        raise VlmdataError(f"{path}: no such file")
    return open(path, "rb")


class PeekReader:
    """A binary stream whose first bytes can be looked at without consuming them (for stdin)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.head = b""

    def peek(self, n: int = 4096) -> bytes:
        while len(self.head) < n:
            more = self.stream.read(n - len(self.head))
            if not more:
                break
            self.head += more
        return self.head

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.stream.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.stream.read(n - len(data))
            return data
        return self.stream.read(n)

    def lines(self) -> Iterator[bytes]:
        head, self.head = self.head, b""
        if head:
            parts = head.split(b"\n")
            rest = self.stream.readline() if not head.endswith(b"\n") else b""
            parts[-1] += rest
            for p in parts[:-1]:
                yield p + b"\n"
            if parts[-1]:
                yield parts[-1]
        yield from self.stream


def sniff_layout(reader: PeekReader) -> str:
    """'json' for a JSON list, 'stream' for one pretty-printed object, else 'jsonl' (also when empty)."""
    head = reader.peek(1 << 16)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        return "jsonl"  # empty input: no records (0 in = 0 written), not an error
    if stripped[:1] == b"[":
        return "json"
    first_line = stripped.split(b"\n", 1)[0].strip()
    if first_line == b"{":
        return "stream"
    return "jsonl"


def iter_jsonl(reader: PeekReader) -> Iterator[Raw]:
    return jsonl_records(reader.lines())


def jsonl_records(lines: Iterable[bytes], first: bool = True, counted: Any = None) -> Iterator[Raw]:
    """The records of JSONL lines numbered from 1 (``first``: line 1 is the file's, where a BOM may
    stand); ``counted.lines_read`` is set to the number of lines, blank ones included."""
    index = 0
    lineno = 0
    for lineno, line in enumerate(lines, 1):
        if lineno == 1 and first and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line or line.isspace():
            continue  # blank lines (e.g. a trailing one) are not records (no strip(): it copies the line)
        yield Raw(line, lineno, index)
        index += 1
    if counted is not None:
        counted.lines_read = lineno


def iter_json_values(reader: PeekReader, *, in_list: bool) -> Iterator[Raw]:
    """Elements of a top-level JSON list (or a stream of JSON values), one at a time."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")("strict")
    buf = ""
    pos = 0
    line_base = 1  # line number of buf[0]
    mark = [0, 1]  # (offset in buf, its line): lines are counted from the last mark, not from 0
    eof = False
    index = 0

    def fill() -> bool:
        nonlocal buf, pos, line_base, eof
        if eof:
            return False
        data = reader.read(CHUNK)
        try:
            text = utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            line = line_base + buf.count("\n")
            raise SyntaxErrorInFile(f"invalid UTF-8 ({exc.reason})", line, 0, index) from None
        if not data:
            eof = True
        if pos > CHUNK:
            line_base += buf.count("\n", 0, pos)
            buf, pos = buf[pos:], 0
            mark[:] = [0, line_base]
        buf += text
        return True

    def line_of(p: int) -> int:
        if p >= mark[0]:
            line = mark[1] + buf.count("\n", mark[0], p)
            mark[:] = [p, line]
            return line
        return line_base + buf.count("\n", 0, p)

    def where(p: int) -> tuple[int, int]:
        """(line, column) for error messages (the column scan is only paid on errors)."""
        line = line_of(p)
        col = p - (buf.rfind("\n", 0, p) + 1) + 1
        return line, col

    def skip_ws() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                return

    fill()
    skip_ws()
    if in_list:
        pos += 1  # the '[' that sniff_layout saw
        skip_ws()
        if pos < len(buf) and buf[pos] == "]":
            return
    while True:
        skip_ws()
        if pos >= len(buf):
            if in_list:
                line, col = where(pos)
                raise SyntaxErrorInFile("the list is not closed with ']'", line, col, index)
            return
        while True:  # pos stays at the element's start (fill() may shift the buffer under it)
            try:
                value, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if not eof and len(buf) - pos < MAX_ELEMENT and fill():
                    continue
                line, col = where(exc.pos)
                raise SyntaxErrorInFile(exc.msg, line, col, index) from None
            except RecursionError:
                end = _value_end(buf, pos)
                if end is None:
                    if not eof and len(buf) - pos < MAX_ELEMENT and fill():
                        continue
                    line, col = where(pos)
                    raise SyntaxErrorInFile("a value nested too deeply is not closed", line, col, index) from None
                value = TooDeep(buf[pos:end].encode("utf-8", "surrogatepass"))
                break
        yield Raw(value, line_of(pos), index)
        index += 1
        pos = end
        skip_ws()
        if not in_list:
            continue
        if pos < len(buf) and buf[pos] == ",":
            pos += 1
            skip_ws()
            if pos < len(buf) and buf[pos] == "]":
                line, col = where(pos)
                raise SyntaxErrorInFile("trailing comma before ']'", line, col, index)
            continue
        if pos < len(buf) and buf[pos] == "]":
            return
        line, col = where(pos)
        raise SyntaxErrorInFile("expected ',' or ']' after a list element", line, col, index)


class TooDeep(bytes):
    """The text of a list element nested deeper than the JSON parser's recursion limit.

    It stays bytes, so every codec rejects it the way it rejects invalid JSON in a JSONL line.
    """


def _value_end(buf: str, pos: int) -> int | None:
    """End of the JSON value starting at ``buf[pos]`` by bracket counting (strings skipped), or None.

    Only used when the C scanner gives up on deep nesting, so a plain loop is fine here.
    """
    depth = 0
    k = pos
    n = len(buf)
    while k < n:
        c = buf[k]
        if c == '"':
            k += 1
            while k < n and buf[k] != '"':
                k += 2 if buf[k] == "\\" else 1
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return k + 1
        elif depth == 0 and c in ",\n":
            return k
        k += 1
    return None


def read_raw(path: str) -> tuple[str, Iterator[Raw], BinaryIO]:
    """(layout, records, stream to close) for ``path`` ('-' = stdin)."""
    stream = open_input(path)
    reader = PeekReader(stream)
    try:
        layout = sniff_layout(reader)
    except Exception:
        if path != "-":
            stream.close()
        raise
    if layout == "jsonl":
        return "jsonl", iter_jsonl(reader), stream
    return "json", iter_json_values(reader, in_list=layout == "json"), stream


SMALL_JSON = 10_000_000  # side files (meta JSON, dataset_info.json) are read whole up to this size


def small_json_object(path: str) -> dict[str, Any] | None:
    """A side file's JSON object (an InternVL meta file, a dataset_info.json), or None when the file
    is larger than SMALL_JSON, unreadable, not JSON or not a non-empty object."""
    try:
        if os.path.getsize(path) > SMALL_JSON:
            return None
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data else None


class RangeRecords:
    """The records of bytes ``[start, end)`` of a JSONL file, which start and end on line boundaries
    (a shard, see ``vlmdata/convert/shards.py``). Lines are numbered from 1 within the range and
    ``lines_read`` says how many it held once read, so the caller can rebase positions."""

    def __init__(self, path: str, start: int, end: int) -> None:
        with open(path, "rb") as f:
            f.seek(start)
            self._data = f.read(end - start)
        self._first = start == 0
        self.lines_read = 0

    def __iter__(self) -> Iterator[Raw]:
        data, self._data = self._data, b""
        return jsonl_records(io.BytesIO(data), self._first, self)

    def close(self) -> None:
        self._data = b""


def plan_ranges(path: str, target_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``target_bytes`` covering a JSONL file, each ending after a newline.

    Only the bytes up to the next newline after each cut are read (to find the boundary)."""
    size = os.path.getsize(path)
    if size == 0:
        return []
    cuts = [0]
    with open(path, "rb") as f:
        pos = target_bytes
        while pos < size:
            f.seek(pos)
            f.readline()
            nxt = f.tell()
            if nxt >= size:
                break
            cuts.append(nxt)
            pos = nxt + target_bytes
    cuts.append(size)
    return list(itertools.pairwise(cuts))


class RecordWriter:
    """Writes records as JSONL or as one JSON list through a temp file (see ``vlmdata.outputs``).

    ``commit`` publishes the file (at once, or with the running transaction); ``abort`` removes
    it. A write error (a full disk) is raised as an OSError that names the output, not the temp.
    """

    def __init__(self, path: str, layout: str) -> None:
        self.path = path
        self.layout = layout
        self.count = 0
        self._tmp: str | None = None
        if path == "-":
            self._out: IO[bytes] = sys.stdout.buffer
        else:
            fd, self._tmp = temp_for(path)
            self._out = os.fdopen(fd, "wb", buffering=1 << 20)
        if layout == "json":
            self._guard(self._out.write, b"[")

    def _guard(self, op: Any, *args: Any) -> Any:
        try:
            return op(*args)
        except OSError as exc:
            if self._tmp is None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, self.path) from None

    def write(self, record: dict[str, Any]) -> None:
        self.write_bytes(orjson.dumps(record))

    def write_bytes(self, data: bytes) -> None:
        try:
            if self.layout == "json":
                self._out.write(b"\n" if self.count == 0 else b",\n")
                self._out.write(data)
            else:
                self._out.write(data)
                self._out.write(b"\n")
        except OSError as exc:
            self._guard(_reraise, exc)
        self.count += 1

    def write_many(self, encoded: list[bytes]) -> None:
        """Pre-encoded records (from worker processes)."""
        if not encoded:
            return
        if self.layout == "json":
            for data in encoded:
                self.write_bytes(data)
        else:
            self._guard(self._out.write, b"\n".join(encoded) + b"\n")
            self.count += len(encoded)

    def append_part(self, part: str | None, count: int) -> None:
        """Append a shard's part file: its records already serialised as this writer would (lines,
        or JSON list elements joined by ",\n"). The bytes are copied by the kernel where it can."""
        if part is None or count == 0:
            return
        if self.layout == "json":
            self._guard(self._out.write, b"\n" if self.count == 0 else b",\n")
        self._guard(self._out.flush)
        with open(part, "rb") as src:
            self._guard(_copy_file, src, self._out)
        self.count += count

    def commit(self) -> None:
        if self.layout == "json":
            self._guard(self._out.write, b"\n]\n")
        self._guard(self._out.flush)
        if self._tmp is not None:
            self._guard(os.fsync, self._out.fileno())
            self._out.close()
            tmp, self._tmp = self._tmp, None
            publish(tmp, self.path)

    def abort(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._out.close()  # a full disk fails the final flush too
            discard(self._tmp)
            self._tmp = None


def _copy_file(src: BinaryIO, out: IO[bytes]) -> None:
    """Copy ``src`` to the end of ``out`` (flushed): copy_file_range, else sendfile, else reads."""
    size = os.fstat(src.fileno()).st_size
    fd = out.fileno()
    offset = 0
    try:
        while offset < size:
            if hasattr(os, "copy_file_range"):
                n = os.copy_file_range(src.fileno(), fd, size - offset)
            else:
                n = os.sendfile(fd, src.fileno(), None, size - offset)
            if n == 0:
                break
            offset += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF, errno.EOPNOTSUPP):
            raise
    if offset < size:
        src.seek(offset)
        while chunk := src.read(CHUNK):
            out.write(chunk)
        out.flush()


def _reraise(exc: OSError) -> None:
    raise exc
