"""The on-disk index: a versioned manifest naming one immutable generation directory.

    <index>/manifest.json          format name and version, config, model, projection, counts; written last
    <index>/gen-000007/            the generation the manifest names
        chunks.jsonl               one chunk per line, in id order (orjson)
        chunks.offsets.npy         int64 byte offset of each line, plus the file length
        ids.npy                    int64 chunk ids, ascending; row i of every file is chunk ids[i]
        full.npy                   float32 (n, dim) unit vectors, in the projection's frame; memory-mapped
        coarse.faiss               IndexIDMap(IndexFlatIP(coarse_dim)) over the same ids
        rotation.npy               float32 (dim, dim) orthogonal rotation, for the `pca` projection only
        files.jsonl                the indexed files: path, sha256, size, mtime, document count, id range
    <index>/pending/               embeddings of a run that has not published yet (see cache.py)

A writer builds a complete new generation beside the current one, fsyncs it, then replaces manifest.json in
one rename; only then is the old generation deleted. So a reader always sees a whole index, and a run killed
at any moment leaves the previous index in place. JSON, .npy and FAISS files only; no pickle anywhere.
`open_index` is the inverse of `GenerationWriter.publish`; a round-trip test proves it.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .atomic import fsync_dir, fsync_file, write_atomic
from .config import IndexConfig
from .encoder import ModelInfo
from .errors import IndexFormatError, IndexNotFoundError

FORMAT_NAME = "searcher-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PENDING = "pending"


@dataclass(frozen=True)
class Projection:
    kind: str  # "prefix" or "pca": how coarse vectors are made from full ones
    requested: str  # what the config asked for ("auto", "prefix", "pca")
    coarse_dim: int
    fitted_chunks: int = 0  # chunks in the index when the rotation was fitted (pca only)
    measurement: dict[str, Any] = field(default_factory=dict)  # how `auto` chose, when it measured


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute
    sha256: str
    size: int
    mtime_ns: int
    documents: int
    id_start: int  # the file's chunks have ids id_start .. id_end - 1
    id_end: int

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))


@dataclass(frozen=True)
class Manifest:
    generation: int
    created: str
    updated: str
    config: IndexConfig
    model: ModelInfo
    projection: Projection
    files: int
    documents: int
    chunks: int
    next_id: int  # ids are never reused: the next chunk gets this one
    sources: tuple[str, ...]  # folders and files indexed into this index
    query_encoder: str | None = None  # directory of the exported torch-free encoder (onnx_encoder.py), if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
            "config": self.config.to_dict(),
            "model": self.model.to_dict(),
            "projection": dataclasses.asdict(self.projection),
            "counts": {"files": self.files, "documents": self.documents, "chunks": self.chunks},
            "next_id": self.next_id,
            "sources": list(self.sources),
            "query_encoder": self.query_encoder,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Inverse of `to_dict`."""
        return cls(
            generation=d["generation"],
            created=d["created"],
            updated=d["updated"],
            config=IndexConfig.from_dict(d["config"]),
            model=ModelInfo.from_dict(d["model"]),
            projection=Projection(**d["projection"]),
            files=d["counts"]["files"],
            documents=d["counts"]["documents"],
            chunks=d["counts"]["chunks"],
            next_id=d["next_id"],
            sources=tuple(d["sources"]),
            query_encoder=d.get("query_encoder"),
        )


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / f"gen-{generation:06d}"


def read_manifest(index_dir: Path) -> Manifest:
    path = Path(index_dir) / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise IndexNotFoundError(f"no index at {index_dir}; run `searcher index DIR` first") from None
    except orjson.JSONDecodeError:
        raise IndexFormatError(f"{path} is not valid JSON; rebuild the index with `searcher index DIR --rebuild`") from None
    if data.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{index_dir} is not a searcher index (no '{FORMAT_NAME}' manifest)")
    if data.get("version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"index at {index_dir} has format version {data.get('version')}, this searcher reads version "
            f"{FORMAT_VERSION}; rebuild it with `searcher index DIR --rebuild`"
        )
    try:
        return Manifest.from_dict(data)
    except (KeyError, TypeError) as e:
        raise IndexFormatError(f"manifest of {index_dir} is missing {e}; rebuild the index") from None


class StoredIndex:
    """A read-only view of the published generation. Files are opened eagerly, so a writer that publishes a
    newer generation (and deletes this one) while we hold it does not disturb us."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        for attempt in range(2):
            self.manifest = read_manifest(self.index_dir)
            self.path = generation_dir(self.index_dir, self.manifest.generation)
            try:
                self._open()
                return
            except FileNotFoundError:
                # subtle: a writer may have replaced the manifest and deleted our generation between the two
                # reads; the retry sees the new manifest.
                if attempt == 1:
                    raise IndexFormatError(
                        f"index at {self.index_dir} is missing files of generation {self.manifest.generation}; "
                        "rebuild it with `searcher index DIR --rebuild`"
                    ) from None

    def _open(self) -> None:
        self.ids = np.load(self.path / "ids.npy", mmap_mode="r", allow_pickle=False)
        self.full = map_rows(self.path / "full.npy")
        self.offsets = np.load(self.path / "chunks.offsets.npy", mmap_mode="r", allow_pickle=False)
        self._chunks = open(self.path / "chunks.jsonl", "rb")  # noqa: SIM115 - closed in close()
        rotation = self.path / "rotation.npy"
        self.rotation = np.load(rotation, allow_pickle=False) if rotation.exists() else None
        self._coarse_path = self.path / "coarse.faiss"
        if not self._coarse_path.exists():
            raise FileNotFoundError(self._coarse_path)
        n, d = len(self.ids), self.manifest.model.dim
        if self.full.shape != (n, d) or len(self.offsets) != n + 1:
            raise IndexFormatError(f"index at {self.index_dir} has inconsistent files; rebuild it")

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        self._chunks.close()

    def load_coarse(self):
        import faiss

        return faiss.read_index(str(self._coarse_path))

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row numbers of chunk ids (all of which must be in the index)."""
        return np.searchsorted(self.ids, ids)

    def chunk_lines(self, rows: Iterable[int]) -> list[bytes]:
        out = []
        for row in rows:
            start, end = int(self.offsets[row]), int(self.offsets[row + 1])
            self._chunks.seek(start)
            out.append(self._chunks.read(end - start))
        return out

    def chunks(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        """Chunk records (id, doc_id, title, source, text, start, end, hash) of the given rows."""
        return [orjson.loads(line) for line in self.chunk_lines(rows)]

    def iter_chunks(self) -> Iterator[dict[str, Any]]:
        """Every chunk record, in row order."""
        with open(self.path / "chunks.jsonl", "rb") as f:
            for line in f:
                yield orjson.loads(line)

    def files(self) -> list[FileEntry]:
        with open(self.path / "files.jsonl", "rb") as f:
            return [FileEntry(**orjson.loads(line)) for line in f if line.strip()]


def map_rows(path: Path) -> np.ndarray:
    """A read-only memory map of a 2-d .npy file, advised for random row access.

    subtle: a rerank reads a few hundred scattered rows. With the default advice the kernel reads ahead and maps
    64 KB around every touched row, so a cold query reads far more than it needs and the process's resident
    memory soon covers most of the file; MADV_RANDOM maps only the pages that are touched.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        assert not fortran and len(shape) == 2, (path, shape)
        if shape[0] == 0:
            return np.empty(shape, dtype=dtype)
        mapped = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    if hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype=dtype, buffer=mapped, offset=offset)


def open_index(index_dir: Path | str) -> StoredIndex:
    return StoredIndex(Path(index_dir))


class GenerationWriter:
    """Writes the files of a new generation; `publish` makes it the index's current one in a single rename."""

    def __init__(self, index_dir: Path, generation: int, n: int, dim: int) -> None:
        self.index_dir = index_dir
        self.generation = generation
        self.path = generation_dir(index_dir, generation)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.n, self.dim = n, dim
        self.full = np.lib.format.open_memmap(self.path / "full.npy", mode="w+", dtype=np.float32, shape=(n, dim))

    def write_chunks(self, lines: Iterable[bytes]) -> None:
        """One serialized record per row, in row order (each ending with a newline)."""
        offsets = np.empty(self.n + 1, dtype=np.int64)
        pos, row = 0, 0
        with open(self.path / "chunks.jsonl", "wb") as f:
            for line in lines:
                offsets[row] = pos
                f.write(line)
                pos += len(line)
                row += 1
        assert row == self.n, (row, self.n)
        offsets[self.n] = pos
        np.save(self.path / "chunks.offsets.npy", offsets, allow_pickle=False)

    def write_ids(self, ids: np.ndarray) -> None:
        assert len(ids) == self.n and (self.n < 2 or bool(np.all(np.diff(ids) > 0)))
        np.save(self.path / "ids.npy", np.asarray(ids, dtype=np.int64), allow_pickle=False)

    def write_rotation(self, rotation: np.ndarray | None) -> None:
        if rotation is not None:
            np.save(self.path / "rotation.npy", rotation.astype(np.float32), allow_pickle=False)

    def write_coarse(self, index) -> None:
        import faiss

        faiss.write_index(index, str(self.path / "coarse.faiss"))

    def write_files(self, entries: Iterable[FileEntry]) -> None:
        with open(self.path / "files.jsonl", "wb") as f:
            for entry in entries:
                f.write(entry.to_json() + b"\n")

    def publish(self, manifest: Manifest) -> None:
        """fsync every file, then switch the manifest; the previous generation is deleted afterwards."""
        self.full.flush()
        del self.full
        for name in os.listdir(self.path):
            fsync_file(self.path / name)
        fsync_dir(self.path)
        write_atomic(self.index_dir / MANIFEST, orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2))
        remove_garbage(self.index_dir, manifest)


def remove_garbage(index_dir: Path, manifest: Manifest | None) -> None:
    """Delete what the manifest does not name: older generations and encoders, and the leftovers of
    interrupted runs (a generation never published, `*.tmp` files and directories)."""
    keep = {MANIFEST, PENDING, ".lock"}
    if manifest is not None:
        keep |= {generation_dir(index_dir, manifest.generation).name, manifest.query_encoder or ""}
    for entry in index_dir.iterdir():
        if entry.name in keep or not (entry.name.startswith(("gen-", "encoder-")) or entry.name.endswith(".tmp")):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
