"""An index's manifest and layout: what manifest.json holds (config, model, projection, files), reading it as
untrusted input, and the generated names an index directory may contain (store.py has the whole layout)."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .atomic import write_atomic
from .config import IndexConfig
from .errors import IndexFormatError, IndexNotFoundError, InvalidInputError
from .model_info import CosineMap, ModelInfo

FORMAT_NAME = "searcher-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PENDING = "pending"
MARKER = ".searcher-index"  # written into an index directory before anything else
FENCE = 512  # StoredIndex.rows_of holds every FENCE-th id in RAM: 512 ids are one 4 KB page of ids.npy
GENERATION_NAME = re.compile(r"gen-(\d{6})")
ENCODER_NAME = re.compile(r"encoder-[0-9a-f]{10}")
# Leftovers searcher itself may leave behind when killed: exact names, nothing else is ever deleted.
_GARBAGE = re.compile(r"(?:gen-\d{6}|encoder-[0-9a-f]{10}(?:\.tmp)?|manifest\.json\.tmp|\.searcher-index\.tmp)")


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
    ctime_ns: int = 0  # users can set mtime back (touch -d); ctime they cannot, so both decide "unchanged"
    warnings: tuple[str, ...] = ()  # what was dropped when the file was read (bad JSONL lines, ...)

    def to_json(self) -> bytes:
        return orjson.dumps(self)  # orjson writes a dataclass's fields in order, as asdict would, several times faster

    @classmethod
    def from_json(cls, line: bytes) -> FileEntry:
        """Inverse of `to_json`; raises ValueError/TypeError/KeyError on a malformed line."""
        d = orjson.loads(line)
        entry = cls(**{**d, "warnings": tuple(d.get("warnings", ()))})
        ints = (entry.size, entry.mtime_ns, entry.documents, entry.id_start, entry.id_end, entry.ctime_ns)
        if not isinstance(entry.path, str) or not all(type(v) is int for v in ints) or entry.id_end < entry.id_start:
            raise ValueError("a field has the wrong type")
        return entry


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
    document_encoder: dict | None = None  # which encoder path embedded documents, on which CPU, and why
    lexical_deleted: int = 0  # deleted chunks the lexical index still counts (generation.LEXICAL_COMPACT_SHARE)
    full_fitted: int = 0  # int8 or mixed full vectors: chunks in the index when the quantizer was trained (vectors.py)
    coarse: dict = field(default_factory=lambda: {"kind": "flat"})  # kind, and for ivf nlist, nprobe, trained_at
    # the model's cosines on the calibration's scale (model_info.CosineMap); None: the reference model's own, or
    # not fitted yet
    cosine_map: CosineMap | None = None

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
            "document_encoder": self.document_encoder,
            "lexical_deleted": self.lexical_deleted,
            "full_fitted": self.full_fitted,
            "coarse": self.coarse,
            "cosine_map": self.cosine_map.to_dict() if self.cosine_map is not None else None,
        }

    def summary(self) -> dict[str, Any]:
        """What a listing shows of an index (`searcher list --json`, the server's /indexes)."""
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "model": self.model.name,
            "dim": self.model.dim,
            "generation": self.generation,
            "updated": self.updated,
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Inverse of `to_dict`."""
        # an index made before storage types existed has float32 full vectors, whatever today's default is
        config = IndexConfig.from_dict({"full_storage": "float32", **d["config"]})
        model = ModelInfo.from_dict(d["model"])
        if Path(model.name).is_absolute() and not Path(config.model).is_absolute() and config.model != model.name:
            # 0.2.0's `searcher adopt` kept a model's path as typed (relative to where it ran); its absolute path
            # is the model's own name
            config = config.replace(model=model.name)
        return cls(
            generation=d["generation"],
            created=d["created"],
            updated=d["updated"],
            config=config,
            model=model,
            projection=Projection(**d["projection"]),
            files=d["counts"]["files"],
            documents=d["counts"]["documents"],
            chunks=d["counts"]["chunks"],
            next_id=d["next_id"],
            sources=tuple(d["sources"]),
            query_encoder=d.get("query_encoder"),
            document_encoder=d.get("document_encoder") if isinstance(d.get("document_encoder"), dict) else None,
            lexical_deleted=d.get("lexical_deleted", 0),
            full_fitted=d.get("full_fitted", 0),
            coarse=dict(d["coarse"]) if isinstance(d.get("coarse"), dict) else {"kind": "flat"},
            cosine_map=CosineMap.from_dict(d.get("cosine_map")),
        )


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / f"gen-{generation:06d}"


def rebuild_hint(index_dir: Path) -> str:
    return f"rebuild it with `searcher index SOURCE --index {index_dir} --rebuild`"


def damaged(index_dir: Path, path: Path, what: str) -> IndexFormatError:
    """The one error for a damaged or hostile index file: which file, what is wrong, how to fix it."""
    return IndexFormatError(f"{path} is damaged ({what}); {rebuild_hint(index_dir)}")


def has_marker(directory: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(directory / MARKER).st_mode)
    except OSError:  # missing, or a folder we may not enter
        return False


def _legacy_manifest(directory: Path) -> bool:
    """An index made before the marker existed: a manifest that says it is ours."""
    try:
        data = orjson.loads((directory / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT_NAME


def is_index_dir(directory: Path, names: set[str] | None = None) -> bool:
    """Whether `directory` is a searcher index (its marker, or a manifest of ours). `names`: its entries, if known."""
    if names is not None and MARKER not in names and MANIFEST not in names:
        return False
    return has_marker(directory) or _legacy_manifest(directory)


def prepare_index_dir(index_dir: Path) -> None:
    """Make `index_dir` an index directory (new or empty folder) or check that it is one; refuse anything else.

    subtle: this runs before the lock file or any garbage collection, so a folder that holds the user's own
    files is never written to, let alone cleaned.
    """
    if index_dir.exists() and not index_dir.is_dir():
        raise InvalidInputError(f"{index_dir} is a file, not an index folder; pass --index with a folder")
    if index_dir.is_dir() and has_marker(index_dir):
        return
    if index_dir.is_dir() and not _legacy_manifest(index_dir) and any(index_dir.iterdir()):
        raise InvalidInputError(
            f"{index_dir} is a folder that is not a searcher index and is not empty; searcher only writes into "
            "its own index folders, so pass --index with a new or empty folder"
        )
    index_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(index_dir / MARKER, f"{FORMAT_NAME} {FORMAT_VERSION}\n".encode())


def _int(value: Any, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise TypeError(f"expected an integer >= {minimum}, got {value!r}")
    return value


def read_manifest(index_dir: Path) -> Manifest:
    index_dir = Path(index_dir)
    path = index_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IndexNotFoundError(f"no index at {index_dir}; run `searcher index DIR` first") from None
    except IsADirectoryError:
        raise damaged(index_dir, path, "a folder, not a file") from None
    except OSError as e:
        raise IndexFormatError(f"cannot read {path} ({e.strerror})") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise damaged(index_dir, path, "not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        if has_marker(index_dir):
            raise damaged(index_dir, path, "not a searcher manifest")
        raise IndexFormatError(f"{index_dir} is not a searcher index (its {MANIFEST} is not searcher's)")
    if data.get("version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"index at {index_dir} has format version {data.get('version')!r}, this searcher reads version "
            f"{FORMAT_VERSION}; {rebuild_hint(index_dir)}"
        )
    try:
        manifest = Manifest.from_dict(data)
        _int(manifest.generation, 1)
        _int(manifest.chunks)
        _int(manifest.next_id)
        _int(manifest.lexical_deleted)
        _int(manifest.model.dim, 1)
        if not 1 <= _int(manifest.projection.coarse_dim, 1) <= manifest.model.dim:
            raise ValueError("coarse_dim exceeds the model's width")
        if manifest.projection.kind not in ("prefix", "pca"):
            raise ValueError(f"unknown projection {manifest.projection.kind!r}")
        if manifest.coarse.get("kind") not in ("flat", "ivf") or not isinstance(manifest.coarse.get("nprobe", 1), int):
            raise ValueError(f"unknown coarse index {str(manifest.coarse)[:80]}")
        if manifest.query_encoder is not None and not (
            isinstance(manifest.query_encoder, str) and ENCODER_NAME.fullmatch(manifest.query_encoder)
        ):
            raise ValueError(f"query_encoder {str(manifest.query_encoder)[:80]!r} is not an encoder of this index")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0][:200]
        raise damaged(index_dir, path, what) from None
    return manifest


def generations_on_disk(index_dir: Path) -> list[int]:
    """Numbers of the generation directories present (published or not)."""
    try:
        names = os.listdir(index_dir)
    except OSError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := GENERATION_NAME.fullmatch(n)))


def inside(index_dir: Path, path: Path) -> Path:
    """`path`, checked to be a real file or folder of the index: not a symlink, not outside it."""
    if path.is_symlink() or path.resolve().parent != index_dir.resolve():
        raise damaged(index_dir, path, "a link or a path outside the index")
    return path
