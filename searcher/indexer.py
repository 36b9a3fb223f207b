"""Folder -> index: scan the files, diff them against the published index, embed only what is new, and
publish a new generation.

Incremental by content: a file whose size and mtime are unchanged is not read; one whose bytes hash the same
is not re-chunked; a chunk whose exact text was embedded before (in the previous generation, or by an
interrupted run, see cache.py) is not embedded again. Removed files disappear from both indexes and the
metadata. Chunk ids are never reused.

Left out: watching folders, parallel parsing, deleting a whole source root (delete the index instead).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from . import projection as proj
from .atomic import exclusive_lock
from .cache import EmbeddingCache, text_key
from .chunking import Chunk, check_chunking, chunk_document
from .config import DEFAULT_INDEX_DIR, DEFAULT_SHORTLIST, IndexConfig
from .encoder import Encoder, SentenceTransformerEncoder, load_encoder
from .errors import InvalidInputError, ModelError, SearcherError
from .ingest import FORMATS, UnreadableFileError, is_supported, parse_file
from .onnx_encoder import ExportError, export_onnx, exported_with_model
from .store import (
    MANIFEST,
    PENDING,
    FileEntry,
    GenerationWriter,
    Manifest,
    Projection,
    StoredIndex,
    now,
    open_index,
    read_manifest,
    remove_garbage,
)

log = logging.getLogger(__name__)

# progress(phase, done, total): phase is "scan" (files seen, total None), "embed" (chunks) or "write".
Progress = Callable[[str, int, "int | None"], None]
BLOCK = 8192  # rows per block when copying or rotating vectors


@dataclass
class IndexReport:
    """What one `build_index` run did. File counts are for this run; documents and chunks are index totals."""

    index_dir: str
    indexed: int = 0  # new or changed files, (re)chunked in this run
    unchanged: int = 0
    skipped: int = 0  # unsupported, binary, undecodable or empty
    failed: int = 0  # could not be read (the previously indexed version, if any, is kept)
    removed: int = 0  # indexed before, gone now
    documents: int = 0
    chunks: int = 0
    embedded: int = 0  # chunks the model embedded in this run
    embedded_with: str = ""  # "onnx" (the exported encoder, when faster) or "torch"
    reused: int = 0  # new chunks whose vectors were found already embedded
    projection: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read", "chunk", "export", "embed", "write"), 0.0)
    )


@dataclass
class _NewFile:
    entry: FileEntry  # id range filled in at assembly
    chunks: list[Chunk]


def existing_config(index_dir: Path | str) -> IndexConfig:
    """The config an index was built with, or the defaults when there is no index yet."""
    try:
        return read_manifest(Path(index_dir)).config
    except SearcherError:  # no index, or an unreadable one that build_index will report
        return IndexConfig()


def build_index(
    source: Path | str,
    index_dir: Path | str = DEFAULT_INDEX_DIR,
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    cache_dir: Path | str | None = None,
    export_encoder: bool = True,
) -> IndexReport:
    """Index (or update the index of) a folder or a single file.

    `config=None` keeps the settings the index was built with (the defaults for a new index). `rebuild=True`
    ignores the existing index and embeds everything again (required to change the model). New embeddings go
    to `<index>/pending` and are deleted once published; a `cache_dir` is used instead and kept, so another
    index of the same texts with the same model embeds nothing (`searcher eval` keeps one per model).
    `export_encoder` exports the model for torch-free queries (onnx_encoder.py) when the index has none.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise InvalidInputError(f"no such file or folder: {source}")
    if source.is_file() and not is_supported(source):
        raise InvalidInputError(
            f"{source} is not a supported file type; searcher reads {', '.join(sorted(FORMATS))}"
        )
    index_dir = Path(index_dir)
    progress = progress or (lambda phase, done, total: None)
    with exclusive_lock(index_dir):
        published = (index_dir / MANIFEST).exists()
        current = read_manifest(index_dir) if published else None
        remove_garbage(index_dir, current)
        prev = open_index(index_dir) if current and not rebuild else None
        try:
            return _build(source.resolve(), index_dir, config, current, prev, encoder, progress, cache_dir, export_encoder)
        finally:
            if prev is not None:
                prev.close()


def _build(
    root: Path,
    index_dir: Path,
    config: IndexConfig | None,
    current: Manifest | None,
    prev: StoredIndex | None,
    encoder: Encoder | None,
    progress: Progress,
    cache_dir: Path | str | None,
    export_encoder: bool,
) -> IndexReport:
    config = config or (current.config if current else IndexConfig())
    encoder = encoder or load_encoder(config.model)
    info = encoder.info
    config = config.replace(model=info.name)
    if prev is not None and not (prev.manifest.model.name == info.name and prev.manifest.model.same_weights(info)):
        raise ModelError(
            f"the index at {index_dir} was built with model {prev.manifest.model.name!r}, not {info.name!r}; "
            "index with that model, use another --index, or pass --rebuild to re-embed everything"
        )
    chunk_tokens, overlap_tokens = config.chunking(info.max_seq_length)
    check_chunking(chunk_tokens, overlap_tokens, info.max_seq_length)
    rechunk_all = prev is not None and prev.manifest.config.chunking(info.max_seq_length) != (chunk_tokens, overlap_tokens)
    report = IndexReport(index_dir=str(index_dir))
    old_files = {e.path: e for e in prev.files()} if prev is not None else {}

    def chunker(doc):
        return chunk_document(doc, encoder, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)

    kept, new_files = _scan(root, old_files, rechunk_all, chunker, report, progress)
    under_root = {p for p in old_files if _is_under(Path(p), root)}
    kept_paths = {e.path for e in kept}
    report.removed = len(under_root - kept_paths - {f.entry.path for f in new_files})
    if not new_files and not any(_is_under(Path(e.path), root) for e in kept):
        raise InvalidInputError(
            f"no documents to index in {root} (searcher reads {', '.join(sorted(FORMATS))}); nothing was changed"
        )
    kept += [e for p, e in old_files.items() if p not in under_root]
    kept.sort(key=lambda e: e.id_start)

    new_chunks = [c for f in new_files for c in f.chunks]
    keys = [text_key(c.embedding_input) for c in new_chunks]
    pending = EmbeddingCache(Path(cache_dir) if cache_dir else index_dir / PENDING, info)
    reusable = _reusable_rows(prev, kept, keys)
    started = time.perf_counter()
    query_encoder = _query_encoder(index_dir, encoder, current if prev is not None else None, export_encoder, report)
    report.seconds["export"] = time.perf_counter() - started
    _embed_missing(encoder, index_dir, query_encoder, config, new_chunks, keys, reusable, pending, report, progress)

    generation = (current.generation if current else 0) + 1
    started = time.perf_counter()
    manifest = _write_generation(
        index_dir, generation, config, info, current, prev, kept, new_files, keys, reusable, pending, root, progress,
        query_encoder,
    )
    if cache_dir is None:
        pending.clear()
    report.seconds["write"] = time.perf_counter() - started
    report.documents, report.chunks = manifest.documents, manifest.chunks
    report.projection = manifest.projection.kind
    return report


def _query_encoder(
    index_dir: Path, encoder: Encoder, current: Manifest | None, export: bool, report: IndexReport
) -> str | None:
    """The directory name of the index's torch-free query encoder: the current one, or a new export."""
    if current is not None and current.query_encoder and (index_dir / current.query_encoder).is_dir():
        return current.query_encoder
    if not export or not isinstance(encoder, SentenceTransformerEncoder):
        return None
    name = "encoder-" + hashlib.sha256(repr(encoder.info.fingerprint).encode()).hexdigest()[:12]
    if (index_dir / name / "encoder.json").is_file():  # exported by an earlier run of the same model
        return name
    carried = exported_with_model(encoder.info)
    if carried is not None:  # a fine-tuned model brings its own export: copy it, then switch it in
        shutil.copytree(carried, index_dir / (name + ".tmp"), dirs_exist_ok=True)
        os.replace(index_dir / (name + ".tmp"), index_dir / name)
        return name
    try:
        export_onnx(encoder, index_dir / name)
    except ExportError as e:
        report.warnings.append(f"could not export the model for torch-free queries ({e}); queries will load torch")
        return None
    return name


def _is_under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk(root: Path, report: IndexReport) -> Iterator[Path]:
    """Files under root in sorted order, hidden files and folders left out; unreadable folders are reported."""
    if root.is_file():
        yield root
        return

    def on_error(err: OSError) -> None:
        if Path(err.filename) == root:
            raise InvalidInputError(f"cannot read folder {root}: {err.strerror}") from None
        report.failed += 1
        report.warnings.append(f"{err.filename}: cannot read folder ({err.strerror})")

    for folder, dirs, files in os.walk(root, onerror=on_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def _scan(
    root: Path,
    old_files: dict[str, FileEntry],
    rechunk_all: bool,
    chunker: Callable,
    report: IndexReport,
    progress: Progress,
) -> tuple[list[FileEntry], list[_NewFile]]:
    kept: list[FileEntry] = []
    new_files: list[_NewFile] = []
    base = root.parent  # document ids start with the name of the folder (or file) being indexed
    for seen, path in enumerate(_walk(root, report), start=1):
        progress("scan", seen, None)
        if not is_supported(path):
            report.skipped += 1
            continue
        old = old_files.get(str(path))
        started = time.perf_counter()
        try:
            st = path.stat()
            if old and not rechunk_all and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns):
                kept.append(old)
                report.unchanged += 1
                continue
            data = path.read_bytes()
        except OSError as e:
            report.failed += 1
            report.warnings.append(f"{path}: cannot read ({e.strerror})" + ("; kept the indexed version" if old else ""))
            if old:
                kept.append(old)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if old and not rechunk_all and old.sha256 == digest:
            kept.append(FileEntry(**{**old.__dict__, "mtime_ns": st.st_mtime_ns}))
            report.unchanged += 1
            continue
        try:
            docs, warnings = parse_file(path, data, doc_id=path.relative_to(base).as_posix())
        except UnreadableFileError as e:
            report.skipped += 1
            report.warnings.append(f"{path}: skipped, {e}")
            continue
        report.warnings.extend(f"{path}: {w}" for w in warnings)
        parsed = time.perf_counter()
        report.seconds["read"] += parsed - started
        chunks = [c for doc in docs for c in chunker(doc)]
        report.seconds["chunk"] += time.perf_counter() - parsed
        if not chunks:
            report.skipped += 1
            continue
        entry = FileEntry(str(path), digest, st.st_size, st.st_mtime_ns, len(docs), 0, 0)
        new_files.append(_NewFile(entry, chunks))
        report.indexed += 1
    return kept, new_files


def _reusable_rows(prev: StoredIndex | None, kept: list[FileEntry], keys: list[str]) -> dict[str, int]:
    """key -> row in the previous generation, for chunks of files that changed or went away (edits and moves
    keep most of their text, so most of their chunks need no new embedding)."""
    if prev is None or not keys:
        return {}
    live = np.zeros(len(prev), dtype=bool)
    for e in kept:
        a, b = prev.rows_of(np.array([e.id_start, e.id_end]))
        live[a:b] = True
    wanted = set(keys)
    dead_rows = np.flatnonzero(~live)
    found = {}
    for row, record in zip(dead_rows, prev.chunks(dead_rows)):
        if record["hash"] in wanted:
            found[record["hash"]] = int(row)
    return found


def _embed_missing(
    encoder: Encoder,
    index_dir: Path,
    query_encoder: str | None,
    config: IndexConfig,
    chunks: list[Chunk],
    keys: list[str],
    reusable: dict[str, int],
    pending: EmbeddingCache,
    report: IndexReport,
    progress: Progress,
) -> None:
    """Embed every chunk not found in the previous generation or the pending cache, saving as we go."""
    todo: dict[str, str] = {}
    for chunk, key in zip(chunks, keys):
        if key not in reusable and key not in pending and key not in todo:
            todo[key] = chunk.embedding_input
    report.embedded = len(todo)
    report.reused = sum(1 for k in keys if k not in todo)
    # Longest first, as sentence-transformers itself sorts, so batches hold texts of similar length (less
    # padding); a group of several batches is saved to the pending cache before the next one starts.
    order = sorted(todo, key=lambda k: len(todo[k]), reverse=True)
    group = config.batch_size * 8
    progress("embed", 0, len(order))
    started = time.perf_counter()
    encoder = _document_encoder(encoder, index_dir, query_encoder, [todo[k] for k in order], config.batch_size, report)
    for start in range(0, len(order), group):
        batch = order[start : start + group]
        vectors = encoder.encode_documents([todo[k] for k in batch], batch_size=config.batch_size)
        pending.add(batch, vectors)
        progress("embed", min(start + group, len(order)), len(order))
    report.seconds["embed"] = time.perf_counter() - started


def _document_encoder(
    encoder: Encoder, index_dir: Path, query_encoder: str | None, texts: list[str], batch_size: int, report: IndexReport
) -> Encoder:
    """The exported ONNX encoder if it embeds these texts faster than the model itself, else the model.

    The export gives the same vectors (checked when it was made), so only speed decides; it is measured on one
    batch of the longest texts, which dominate the time, and only when there is enough work to pay for that.
    """
    report.embedded_with = "torch"
    if query_encoder is None or len(texts) < 4 * batch_size:
        return encoder
    from .onnx_encoder import OnnxEncoder

    onnx = OnnxEncoder(index_dir / query_encoder)
    sample = texts[:batch_size]
    seconds = {}
    for name, candidate in (("torch", encoder), ("onnx", onnx)):
        candidate.encode_documents(sample[:2], batch_size=batch_size)  # warm-up
        t = time.perf_counter()
        candidate.encode_documents(sample, batch_size=batch_size)
        seconds[name] = time.perf_counter() - t
    log.info("embedding speed on %d texts: %s", len(sample), seconds)
    if seconds["onnx"] < seconds["torch"]:
        report.embedded_with = "onnx"
        return onnx
    return encoder


def _write_generation(
    index_dir: Path,
    generation: int,
    config: IndexConfig,
    info,
    current: Manifest | None,
    prev: StoredIndex | None,
    kept: list[FileEntry],
    new_files: list[_NewFile],
    keys: list[str],
    reusable: dict[str, int],
    pending: EmbeddingCache,
    root: Path,
    progress: Progress,
    query_encoder: str | None,
) -> Manifest:
    keep_rows = _kept_rows(prev, kept)
    next_id = current.next_id if current and prev is not None else 0
    first_new_id = next_id
    entries = list(kept)
    for f in new_files:
        n = len(f.chunks)
        entries.append(FileEntry(**{**f.entry.__dict__, "id_start": next_id, "id_end": next_id + n}))
        next_id += n
    new_chunks = [c for f in new_files for c in f.chunks]
    new_ids = np.arange(first_new_id, next_id, dtype=np.int64)
    n_keep, n = len(keep_rows), len(keep_rows) + len(new_chunks)
    coarse_dim = min(config.coarse_dim, info.dim)
    old = prev.manifest.projection if prev is not None else None
    keep_projection = (
        old is not None
        and (old.requested, old.coarse_dim) == (config.projection, coarse_dim)
        and not (n >= 2 * old.fitted_chunks and old.fitted_chunks < proj.FIT_SAMPLE)
    )
    old_rotation = prev.rotation if prev is not None else None
    frame = old_rotation if keep_projection else None  # the frame vectors are written in

    progress("write", 0, 1)
    writer = GenerationWriter(index_dir, generation, n, info.dim)
    full = writer.full

    def to_frame(x: np.ndarray, rotation_of_x: np.ndarray | None) -> np.ndarray:
        if rotation_of_x is not None:
            x = x @ rotation_of_x.T  # back to the model's own frame
        return x @ frame if frame is not None else x

    for a in range(0, n_keep, BLOCK):
        rows = keep_rows[a : a + BLOCK]
        full[a : a + len(rows)] = prev.full[rows] if keep_projection else to_frame(prev.full[rows], old_rotation)
    for a in range(0, len(new_chunks), BLOCK):
        block = keys[a : a + BLOCK]
        x = np.empty((len(block), info.dim), dtype=np.float32)
        from_prev = [i for i, k in enumerate(block) if k in reusable]
        from_cache = [i for i, k in enumerate(block) if k not in reusable]
        if from_prev:
            x[from_prev] = to_frame(prev.full[[reusable[block[i]] for i in from_prev]], old_rotation)
        if from_cache:
            x[from_cache] = to_frame(pending.get([block[i] for i in from_cache]), None)
        full[n_keep + a : n_keep + a + len(block)] = x

    if keep_projection:
        projection, rotation = old, old_rotation
    else:
        projection, rotation = _fit_projection(full, config, coarse_dim, info)
        if rotation is not None:
            for a in range(0, n, BLOCK):
                full[a : a + BLOCK] = full[a : a + BLOCK] @ rotation

    ids = np.concatenate([prev.ids[keep_rows] if prev is not None else np.empty(0, np.int64), new_ids])
    writer.write_ids(ids)
    writer.write_rotation(rotation)
    writer.write_coarse(_coarse_index(prev if keep_projection else None, ids, keep_rows, full, n_keep, coarse_dim))
    writer.write_chunks(_chunk_lines(prev, keep_rows, new_chunks, new_ids, keys))
    writer.write_files(entries)
    manifest = Manifest(
        generation=generation,
        created=current.created if current else now(),
        updated=now(),
        config=config,
        model=info,
        projection=projection,
        files=len(entries),
        documents=sum(e.documents for e in entries),
        chunks=n,
        next_id=next_id,
        sources=tuple(sorted({*(current.sources if current and prev is not None else ()), str(root)})),
        query_encoder=query_encoder,
    )
    progress("write", 1, 1)
    writer.publish(manifest)
    return manifest


def _kept_rows(prev: StoredIndex | None, kept: list[FileEntry]) -> np.ndarray:
    if prev is None:
        return np.empty(0, dtype=np.int64)
    parts = []
    for e in kept:
        a, b = prev.rows_of(np.array([e.id_start, e.id_end]))
        parts.append(np.arange(a, b, dtype=np.int64))
    return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _fit_projection(full: np.ndarray, config: IndexConfig, coarse_dim: int, info) -> tuple[Projection, np.ndarray | None]:
    n = len(full)
    rng = np.random.default_rng(0)
    sample_rows = np.sort(rng.choice(n, min(n, proj.FIT_SAMPLE), replace=False))
    kind, rotation, measurement = proj.choose(
        np.asarray(full[sample_rows]),
        requested=config.projection,
        coarse_dim=coarse_dim,
        matryoshka_dims=info.matryoshka_dims,
        shortlist=DEFAULT_SHORTLIST,
        total=n,
    )
    log.info("coarse projection: %s %s", kind, measurement)
    return Projection(kind, config.projection, coarse_dim, n, measurement), rotation


def _coarse_index(prev: StoredIndex | None, ids, keep_rows, full, n_keep: int, coarse_dim: int):
    """The coarse index: the previous one with dead ids removed and new ones added, or a fresh build.

    IndexIDMap, not IndexIDMap2: ids stay stable either way, and IndexIDMap2's reverse hash map (id -> row, for
    reconstruct) would add ~40 bytes per chunk of RAM that searcher never uses (full vectors are in full.npy).
    """
    import faiss

    if prev is not None:
        index = prev.load_coarse()
        dead = np.setdiff1d(np.asarray(prev.ids), ids[:n_keep], assume_unique=True)
        if len(dead):
            index.remove_ids(dead.astype(np.int64))
        start = n_keep
    else:
        index = faiss.IndexIDMap(faiss.IndexFlatIP(coarse_dim))
        start = 0
    for a in range(start, len(ids), BLOCK):
        b = min(a + BLOCK, len(ids))
        index.add_with_ids(proj.coarse_vectors(full[a:b], coarse_dim), ids[a:b])
    return index


def _chunk_lines(prev, keep_rows, new_chunks, new_ids, keys) -> Iterator[bytes]:
    if prev is not None and len(keep_rows):
        keep = np.zeros(len(prev), dtype=bool)
        keep[keep_rows] = True
        with open(prev.path / "chunks.jsonl", "rb") as f:
            for row, line in enumerate(f):
                if keep[row]:
                    yield line
    for chunk, chunk_id, key in zip(new_chunks, new_ids, keys):
        record = {
            "id": int(chunk_id),
            "doc_id": chunk.doc_id,
            "title": chunk.title,
            "source": chunk.source,
            "start": chunk.start,
            "end": chunk.end,
            "hash": key,
            "text": chunk.text,
        }
        yield orjson.dumps(record) + b"\n"
