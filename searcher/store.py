"""The on-disk index: a versioned manifest naming one immutable generation directory.

    <index>/manifest.json          format name and version, config, model, projection, counts; written last
    <index>/gen-000007/            the generation the manifest names
        chunks.jsonl               one chunk per line, in id order (orjson)
        chunks.offsets.npy         int64 byte offset of each line, plus the file length
        ids.npy                    int64 chunk ids, ascending; row i of every file is chunk ids[i]
        full.npy                   float32 (n, dim) unit vectors, in the projection's frame; memory-mapped (or
                                   full.f16.npy, full.mx8.npy + .faiss, full.sq8.npy + .faiss: config.full_storage,
                                   vectors.py)
        coarse.faiss               IndexIDMap(IndexFlatIP(coarse_dim)) over the same ids
        rotation.npy               float32 (dim, dim) orthogonal rotation, for the `pca` projection only
        files.jsonl                the indexed files: path, sha256, size, mtime, document count, id range
    <index>/pending/               embeddings of a run that has not published yet (see cache.py)
    <index>/.searcher-index        the marker: written first, so a folder searcher did not make is never touched

An index directory is untrusted input. Everything the manifest names must be one of searcher's own generated
names inside the index directory (never a symlink), and every file is checked when opened - dtype, shape, counts,
ids - so a damaged or hostile index gives one IndexFormatError naming the file and the fix, never a traceback,
and never a read outside the index. Garbage collection deletes only exact generated names, and only inside a
directory that carries the marker.

A writer builds a complete new generation beside the current one, fsyncs it, then replaces manifest.json in
one rename; only then is the old generation deleted. So a reader always sees a whole index, and a run killed
at any moment leaves the previous index in place. JSON, .npy and FAISS files only; no pickle anywhere.
`open_index` is the inverse of `writer.GenerationWriter.publish`; a round-trip test proves it.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import coarse, vectors
from .errors import IndexFormatError, IndexNotFoundError
from .manifest import (  # noqa: F401 - re-exported: the layout and the manifest are the store's API too
    _GARBAGE,
    ENCODER_NAME,
    FENCE,
    FORMAT_NAME,
    FORMAT_VERSION,
    GENERATION_NAME,
    MANIFEST,
    MARKER,
    PENDING,
    FileEntry,
    Manifest,
    Projection,
    damaged,
    generation_dir,
    generations_on_disk,
    has_marker,
    inside,
    is_index_dir,
    prepare_index_dir,
    read_manifest,
    rebuild_hint,
)


class StoredIndex:
    """A read-only, validated view of the published generation. Every file is opened once, at construction, so a
    writer that publishes a newer generation (and deletes this one) while we hold it does not disturb us."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        for attempt in range(3):
            self.manifest = read_manifest(self.index_dir)
            self.path = generation_dir(self.index_dir, self.manifest.generation)
            try:
                self._open()
                return
            except FileNotFoundError as e:
                # subtle: a writer may have replaced the manifest and deleted our generation between the two
                # reads; the retry sees the new manifest.
                if attempt == 2:
                    raise damaged(self.index_dir, Path(e.filename or self.path), "missing") from None

    def _open(self) -> None:
        inside(self.index_dir, self.path)
        if not self.path.is_dir():
            raise FileNotFoundError(errno.ENOENT, "missing", str(self.path))
        n_expected, d = self.manifest.chunks, self.manifest.model.dim
        self.ids = self._npy("ids.npy", np.int64, 1)
        self._fence: tuple[int, np.ndarray] | None = None  # rows_of's stride and every stride-th id, on first use
        n = len(self.ids)
        if n != n_expected:
            raise self._bad("ids.npy", f"{n} ids where the manifest counts {n_expected} chunks")
        if n and (self.ids[0] < 0 or self.ids[-1] >= self.manifest.next_id):
            raise self._bad("ids.npy", "ids outside the range the manifest allows")
        storage = self.manifest.config.full_storage
        name = vectors.FILES[storage]
        head = vectors.head_dims(storage, d, self.manifest.projection.coarse_dim)
        expected = (n, d + head)
        # float32 rows as mapped, or FullVectors over the codes of another storage type
        self.full: Any = map_rows(self._file(name), index_dir=self.index_dir, dtype=vectors.DTYPES[storage])
        if self.full.shape != expected:
            raise self._bad(name, f"shape {self.full.shape}, expected {expected}")
        if storage != "float32":
            quantizer = None
            if storage in vectors.QUANTIZERS and d > head:
                try:
                    quantizer = vectors.read_quantizer(self._file(vectors.QUANTIZERS[storage]), d - head)
                except ValueError as e:
                    raise self._bad(vectors.QUANTIZERS[storage], str(e)) from None
            self.full = vectors.FullVectors(self.full, storage, d, quantizer, head)
        self.offsets = self._npy("chunks.offsets.npy", np.int64, 1)
        chunks_path = self._file("chunks.jsonl")
        self._chunks = open(chunks_path, "rb")  # noqa: SIM115 - closed in close()
        self._coarse_file: Any = None
        self._files_file: Any = None
        try:
            size = os.fstat(self._chunks.fileno()).st_size
            if len(self.offsets) != n + 1 or (n + 1 and (self.offsets[0] != 0 or self.offsets[-1] != size)):
                raise self._bad("chunks.offsets.npy", "offsets do not match chunks.jsonl")
            self.rotation = None
            if self.manifest.projection.kind == "pca":
                self.rotation = np.asarray(self._npy("rotation.npy", np.float32, 2))
                if self.rotation.shape != (d, d):
                    raise self._bad("rotation.npy", f"shape {self.rotation.shape}, expected {(d, d)}")
            self._coarse_file = open(self._file("coarse.faiss"), "rb")  # noqa: SIM115 - read in load_coarse
            # subtle: opened now, read later (files()): a reader keeps its generation's file table after a writer
            # publishes the next one and deletes this folder, as it keeps the vectors
            self._files_file = open(self._file("files.jsonl"), "rb")  # noqa: SIM115 - closed in close()
            self._lexical = self._open_lexical()
        except BaseException:
            self.close()
            raise

    def check_order(self) -> None:
        """Ids and offsets ascending: a scan of every row, so only a writer pays for it (it carries rows over by
        range). Readers need not: rows_of and each chunk record are checked when used."""
        if len(self) > 1 and not bool(np.all(np.diff(self.ids) > 0)):
            raise self._bad("ids.npy", "ids are not strictly ascending")
        if len(self) and not bool(np.all(np.diff(self.offsets) > 0)):
            raise self._bad("chunks.offsets.npy", "offsets are not ascending")

    def open_lexical(self):
        """The generation's LexicalIndex, if it has a usable one (a real folder, tantivy-readable, one entry per
        chunk); None otherwise. Opened with the other files (see _open_lexical)."""
        return self._lexical

    def _open_lexical(self):
        """subtle: opened with the rest of the generation, not on first use: tantivy maps its files when it opens,
        so a reader keeps its generation's lexical side even after a writer deletes that folder (publishing a
        newer one), as it keeps the vectors; opened later, it would find the folder gone."""
        from .lexical import LEXICAL_DIR, LexicalIndex

        path = self.path / LEXICAL_DIR
        if path.is_symlink() or not path.is_dir():
            if not self.path.is_dir():  # deleted by a writer since the manifest was read: the caller retries
                raise FileNotFoundError(errno.ENOENT, "missing", str(self.path))
            return None
        tokenizer = self.manifest.config.lexical_tokenizer
        try:
            lexical = LexicalIndex(path, tokenizer)
        except ValueError as e:
            if "Lockfile" not in str(e):
                return None
            # subtle: tantivy takes a lock file even to read; on a read-only index folder, read a private copy.
            try:
                lexical = LexicalIndex(_private_copy(path), tokenizer)
            except Exception:  # noqa: BLE001 - damaged: rebuild it
                return None
        except Exception:  # noqa: BLE001 - tantivy raises ValueError/OSError on damage; any means: rebuild it
            return None
        return lexical if len(lexical) == len(self) else None

    def lexical_path(self) -> Path | None:
        """The folder of the generation's lexical index, if usable (see open_lexical)."""
        from .lexical import LEXICAL_DIR

        return self.path / LEXICAL_DIR if self.open_lexical() is not None else None

    def _bad(self, name: str, what: str) -> IndexFormatError:
        return damaged(self.index_dir, self.path / name, what)

    def _file(self, name: str) -> Path:
        path = self.path / name
        if path.is_symlink():
            raise self._bad(name, "a link, not a file of the index")
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "missing", str(path))
        return path

    def _npy(self, name: str, dtype, ndim: int) -> np.ndarray:
        path = self._file(name)
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError, TypeError) as e:
            raise self._bad(
                name, f"not a readable .npy file: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}"
            ) from None
        if not isinstance(x, np.ndarray) or x.dtype != dtype or x.ndim != ndim:
            raise self._bad(
                name,
                f"dtype {getattr(x, 'dtype', '?')} and {getattr(x, 'ndim', '?')} dims, "
                f"expected {np.dtype(dtype)} and {ndim}",
            )
        return x

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        for f in (
            getattr(self, "_chunks", None),
            getattr(self, "_coarse_file", None),
            getattr(self, "_files_file", None),
        ):
            if f is not None:
                f.close()
        self._lexical = None  # tantivy unmaps its files when the last reference goes

    def load_coarse(self):
        """The coarse FAISS index, read from the file opened with the generation, checked against ids.npy."""
        import faiss

        self._coarse_file.seek(0)
        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(self._coarse_file.read))
        except (RuntimeError, MemoryError, ValueError) as e:
            raise self._bad(
                "coarse.faiss", f"not a readable FAISS index: {str(e).strip().splitlines()[-1][:120]}"
            ) from None
        problem = coarse.check(index, self.manifest.coarse.get("kind"), self.manifest.projection.coarse_dim, len(self))
        if problem:
            raise self._bad("coarse.faiss", problem)
        coarse.prepare(index)
        return index

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row numbers of chunk ids; an id the index does not hold means its files disagree.

        subtle: a binary search over all of ids.npy (80 MB at 10M chunks) misses the CPU's caches at every step
        and touches ~20 pages of the memory map per id: 2,000 ids took ~5 ms. Every FENCE-th id, held in RAM
        (16 B per 1,000 chunks), names the page of ids.npy that holds an id, and the search ends inside that page:
        ~0.5 ms for 2,000 sorted ids (a probe on the 10M x 1024 benchmark index, 2-core Xeon with AMX; the whole
        query's gain is in RESULTS.md, ten million chunks). As many ids as pages or more (a filter's, a sync's, a
        long shortlist of a small index) touch every page anyway, where one sweep of searchsorted is faster (5M
        sorted ids of 10M: 0.22 s against 1.45)."""
        ids = np.asarray(ids, dtype=np.int64)
        n = len(self.ids)
        rows = np.searchsorted(self.ids, ids) if len(ids) * FENCE >= n else self._fenced_rows(ids, n)
        if len(ids) and (rows.max(initial=0) >= len(self.ids) or not np.array_equal(self.ids[rows], ids)):
            raise self._bad("coarse.faiss", "it names chunk ids that ids.npy does not hold")
        return rows

    def _fenced_rows(self, ids: np.ndarray, n: int) -> np.ndarray:
        if self._fence is None:
            self._fence = FENCE, np.array(self.ids[::FENCE])
        stride, fence = self._fence
        lo = np.maximum(np.searchsorted(fence, ids, side="right") - 1, 0) * stride
        hi = np.minimum(lo + stride, n)
        for _ in range(stride.bit_length()):  # a lower-bound search of ids[lo:hi] for each id at once
            mid = (lo + hi) >> 1
            go = lo < hi
            less = go & (self.ids[np.minimum(mid, n - 1)] < ids)
            lo, hi = np.where(less, mid + 1, lo), np.where(go & ~less, mid, hi)
        return lo

    def chunk_lines(self, rows: Iterable[int]) -> list[bytes]:
        return [self.chunk_bytes(int(self.offsets[row]), int(self.offsets[row + 1])) for row in rows]

    def chunk_bytes(self, start: int, end: int) -> bytes:
        """Bytes start..end of chunks.jsonl. pread, not seek + read: threads (the server's) share this file, and
        pread has no shared position."""
        data = os.pread(self._chunks.fileno(), end - start, start)
        if len(data) != end - start:
            raise self._bad("chunks.jsonl", "it ends before its offsets say it does")
        return data

    def chunks(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        """Chunk records (id, doc_id, title, source, text, start, end, hash) of the given rows."""
        return [self._record(line) for line in self.chunk_lines(rows)]

    def _record(self, line: bytes) -> dict[str, Any]:
        try:
            r = orjson.loads(line)
            if not (
                isinstance(r, dict)
                and type(r["id"]) is int
                and all(isinstance(r[k], str) for k in CHUNK_STR)
                and type(r["start"]) is int
                and type(r["end"]) is int
            ):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise self._bad("chunks.jsonl", "a line is not a chunk record") from None
        return r

    def iter_chunks(self) -> Iterator[dict[str, Any]]:
        """Every chunk record, in row order."""
        with open(self._file("chunks.jsonl"), "rb") as f:
            for line in f:
                yield self._record(line)

    def files(self) -> list[FileEntry]:
        """The generation's file table, from the file opened with the generation (one pread: safe from threads)."""
        fd = self._files_file.fileno()
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        known = _file_table(data)
        if known is not None:
            return list(known)
        try:
            entries = [FileEntry.from_json(line) for line in data.splitlines() if line.strip()]
        except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
            raise self._bad("files.jsonl", "a line is not a file record") from None
        remember_file_table(data, entries)
        return entries


# The file tables this process last wrote or parsed, as (their bytes, their entries): an update parses the previous
# generation's table, which the update before wrote (parsing it again was a large share of a one-file update in a
# folder of thousands of files: RESULTS.md, update-one). Looked up by the bytes themselves, so a table is never taken
# for another; FileEntry is frozen, and callers get a new list.
_file_tables: list[tuple[bytes, tuple[FileEntry, ...]]] = []
FILE_TABLES_KEPT = 2  # an index's current table and the one being written, or two indexes served side by side
FILE_TABLE_MAX_BYTES = 32 << 20  # ~150,000 files; a larger table is parsed each time rather than held twice
_file_tables_lock = threading.Lock()


def _file_table(data: bytes) -> tuple[FileEntry, ...] | None:
    with _file_tables_lock:
        for known, entries in _file_tables:
            if known == data:
                return entries
    return None


def remember_file_table(data: bytes, entries: Iterable[FileEntry]) -> None:
    """Keep a file table's parsed entries for `data`, its bytes as files.jsonl holds them."""
    if len(data) > FILE_TABLE_MAX_BYTES:
        return
    with _file_tables_lock:
        kept = [t for t in _file_tables if t[0] != data]
        _file_tables[:] = [*kept[len(kept) - FILE_TABLES_KEPT + 1 :], (data, tuple(entries))]


CHUNK_STR = ("doc_id", "title", "source", "text", "hash")


def _private_copy(path: Path) -> Path:
    """A copy of a folder in a temporary directory that is deleted when the process exits."""
    import atexit
    import tempfile

    copy = Path(tempfile.mkdtemp(prefix="searcher-lexical-"))
    atexit.register(shutil.rmtree, copy, True)
    for name in os.listdir(path):
        if not name.startswith(".tantivy-"):
            shutil.copyfile(path / name, copy / name)
    return copy


def map_rows(path: Path, *, index_dir: Path | None = None, dtype=np.float32) -> np.ndarray:
    """A read-only memory map of a 2-d .npy file of `dtype`, advised for random row access.

    subtle: a rerank reads a few hundred scattered rows. With the default advice the kernel reads ahead and maps
    64 KB around every touched row, so a cold query reads far more than it needs and the process's resident
    memory soon covers most of the file; MADV_RANDOM maps only the pages that are touched.
    """

    def bad(what: str) -> IndexFormatError:
        return damaged(index_dir or path.parent, path, what)

    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran, file_dtype = read_header(f)
        except (ValueError, EOFError, OSError, TypeError) as e:
            raise bad(f"not a readable .npy file: {e}") from None
        offset = f.tell()
        dtype = np.dtype(dtype)
        if fortran or len(shape) != 2 or file_dtype != dtype:
            raise bad(f"dtype {file_dtype}, shape {shape}: expected a C-ordered 2-d {dtype} array")
        if os.fstat(f.fileno()).st_size < offset + shape[0] * shape[1] * dtype.itemsize:
            raise bad("shorter than its header says (truncated)")
        if shape[0] == 0 or shape[1] == 0:
            return np.empty(shape, dtype=dtype)
        mapped = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype=dtype, buffer=mapped, offset=offset)


def open_index(index_dir: Path | str) -> StoredIndex:
    return StoredIndex(Path(index_dir))


def require_index(index_dir: Path) -> None:
    """IndexNotFoundError unless `index_dir` is a real folder holding a searcher index."""
    if not index_dir.is_dir() or index_dir.is_symlink() or not is_index_dir(index_dir):
        raise IndexNotFoundError(f"no searcher index at {index_dir}; `searcher list` shows your indexes")
