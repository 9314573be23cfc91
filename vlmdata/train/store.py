"""The training set's samples kept on disk, not in memory.

Training needs random access (shuffling, length-grouped batches, several epochs), so the samples
cannot just stream by. Held as Python objects they cost about 1.7 KB each (1.7 GB for a million
rows); here each one is pickled once into a temporary spill file and read back with one
``pread`` when a batch needs it (about 25 us), and memory holds only 12 bytes of offset and size
per sample. The spill file is deleted when the store is closed or collected; each process (rank,
dataloader worker after fork) reads the same file through its own descriptor.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from array import array
from collections.abc import Iterator

from vlmdata.schemas.sample import Sample


class SampleStore:
    """An append-then-read sequence of ``Sample`` backed by a temporary file."""

    def __init__(self, folder: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix="vlmdata-samples-", suffix=".pkl", dir=folder)
        self._writer = os.fdopen(fd, "wb")
        self._offsets = array("q")
        self._sizes = array("I")
        self._end = 0
        self._fd: int | None = None
        self._pid = self._owner = os.getpid()

    def append(self, sample: Sample) -> None:
        blob = pickle.dumps(sample, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(blob)
        self._offsets.append(self._end)
        self._sizes.append(len(blob))
        self._end += len(blob)

    def __len__(self) -> int:
        return len(self._offsets)

    def seal(self) -> None:
        """No more appends: the file is complete before anyone reads it (or forks)."""
        if not self._writer.closed:
            self._writer.close()

    def __getitem__(self, i: int) -> Sample:
        if i < 0:
            i += len(self)
        self.seal()
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return pickle.loads(os.pread(self._fd, self._sizes[i], self._offsets[i]))

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def __bool__(self) -> bool:
        return len(self) > 0

    def close(self) -> None:
        self.seal()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
        if self._owner == os.getpid() and os.path.exists(self.path):
            os.unlink(self.path)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()
