"""A run's plan -> a new generation on disk: vectors in the projection's frame, the coarse index, chunk
metadata and the file table, then the manifest (writer.GenerationWriter does the atomic part).

Unchanged files keep their rows and ids; new chunks get new ids and their vectors from the previous generation
(same text, e.g. an edited or moved file) or from the embedding cache. The projection is kept, or fitted again
when the config asks for another one or the index has doubled since it was fitted; a new rotation re-rotates
every stored vector (inner products do not change).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from . import coarse, vectors
from . import projection as proj
from .cache import EmbeddingCache
from .chunking import Chunk, lexical_text
from .config import DEFAULT_SHORTLIST, IndexConfig
from .lexical import LEXICAL_DIR, LexicalWriter, is_current
from .model_info import CosineMap, ModelInfo
from .store import FileEntry, Manifest, Projection, StoredIndex
from .writer import GenerationWriter, now

log = logging.getLogger(__name__)
BLOCK = 8192  # rows per block when copying or rotating vectors


@dataclass
class NewFile:
    entry: FileEntry  # id range filled in when the generation is written
    chunks: list[Chunk]


@dataclass
class Plan:
    """What one run changes, decided before anything is written."""

    root: Path  # the folder or file this run indexed
    config: IndexConfig
    model: ModelInfo
    kept: list[FileEntry]  # files whose chunks stay as they are (rows and ids unchanged)
    new_files: list[NewFile]  # files (re)chunked in this run: their chunks get new ids
    keys: list[str]  # the embedding-cache key of each new chunk, in order
    reusable: dict[str, int]  # key -> row of the previous generation that already holds its vector
    query_encoder: str | None  # directory of the exported query encoder
    # how documents were embedded on this CPU (encoder_choice.choose_document_encoder)
    document_encoder: dict | None = None
    sources: tuple[str, ...] | None = None  # the index's sources after this run; None: the current ones and root
    cosine_map: CosineMap | None = None  # the model's cosines on the calibration's scale (embedding.fit_cosine_scale)

    @property
    def new_chunks(self) -> list[Chunk]:
        return [c for f in self.new_files for c in f.chunks]

    def size(self, prev: StoredIndex | None) -> int:
        """Rows of the generation this plan writes."""
        return len(kept_rows(prev, self.kept)) + sum(len(f.chunks) for f in self.new_files)


def write_generation(
    index_dir: Path,
    plan: Plan,
    current: Manifest | None,
    prev: StoredIndex | None,
    vectors: EmbeddingCache | None,
    progress,
    generation: int,
) -> Manifest:
    """Write and publish `generation`; `prev` is None for a fresh build (no rows or ids carried over).

    If anything fails before the publish, the half-written generation is deleted at once (a full disk wants its
    space back); the published index is untouched either way."""
    writer = GenerationWriter(index_dir, generation, plan.size(prev), plan.model.dim)
    try:
        return _write(writer, plan, current, prev, vectors, progress)
    except BaseException:
        if not writer.published:
            writer.discard()
        raise


def _write(writer: GenerationWriter, plan: Plan, current, prev, cache: EmbeddingCache | None, progress) -> Manifest:
    generation = writer.generation
    config, info, keys, reusable = plan.config, plan.model, plan.keys, plan.reusable
    keep_rows = kept_rows(prev, plan.kept)
    next_id = current.next_id if current else 0  # never reused, not even by --rebuild (backends/qdrant.py)
    first_new_id = next_id
    entries = list(plan.kept)
    for f in plan.new_files:
        n = len(f.chunks)
        entries.append(FileEntry(**{**f.entry.__dict__, "id_start": next_id, "id_end": next_id + n}))
        next_id += n
    new_chunks = plan.new_chunks
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
    full = writer.full
    assert full is not None  # mapped until _encode_full converts it

    def to_frame(x: np.ndarray, rotation_of_x: np.ndarray | None) -> np.ndarray:
        if rotation_of_x is not None:
            x = x @ rotation_of_x.T  # back to the model's own frame
        return x @ frame if frame is not None else x

    # The kept rows' stored codes are copied as they are when nothing would change them (same frame, type and
    # quantizer), and their float32 rows are then only needed by a coarse index made afresh.
    copied = _codes_to_copy(prev, config.full_storage, keep_projection, n) if prev is not None else None
    if copied is None or not coarse_reusable(prev, config.coarse_index, n):
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
            assert cache is not None  # only a conversion without new chunks writes with no cache
            x[from_cache] = to_frame(cache.get([block[i] for i in from_cache]), None)
        full[n_keep + a : n_keep + a + len(block)] = x

    if keep_projection:
        assert old is not None
        projection, rotation = old, old_rotation
    else:
        projection, rotation = _fit_projection(full, config, coarse_dim, info)
        if rotation is not None:
            for a in range(0, n, BLOCK):
                full[a : a + BLOCK] = full[a : a + BLOCK] @ rotation

    ids = np.concatenate([prev.ids[keep_rows] if prev is not None else np.empty(0, np.int64), new_ids])
    coarse, coarse_record = coarse_index(
        full, ids, coarse_dim, config.coarse_index, prev=prev if keep_projection else None, n_keep=n_keep
    )
    del full
    # after the coarse index, which is made from the float32 vectors
    full_fitted = _encode_full(
        writer,
        config.full_storage,
        prev,
        keep_projection,
        n,
        vectors.head_dims(config.full_storage, info.dim, coarse_dim),
        (copied, keep_rows) if copied is not None else None,
    )
    writer.write_ids(ids)
    writer.write_rotation(rotation)
    writer.write_coarse(coarse)
    writer.write_chunks(_chunk_lines(new_chunks, new_ids, keys), (prev, keep_rows) if prev is not None else None)
    writer.write_files(entries)
    lexical_deleted = _write_lexical(writer, config.lexical_tokenizer, prev, ids[:n_keep], new_chunks, new_ids)
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
        sources=plan.sources
        if plan.sources is not None
        else tuple(sorted({*(current.sources if current and prev is not None else ()), str(plan.root)})),
        query_encoder=plan.query_encoder,
        document_encoder=plan.document_encoder,
        lexical_deleted=lexical_deleted,
        full_fitted=full_fitted,
        coarse=coarse_record,
        cosine_map=plan.cosine_map,
    )
    progress("write", 1, 1)
    writer.publish(manifest)
    return manifest


def _keeps_quantizer(prev: StoredIndex | None, storage: str, same_frame: bool, n: int) -> bool:
    """Whether a generation of `n` rows stored as `storage` keeps the previous generation's 8-bit quantizer: the
    frame and the type are the same and the index has less than doubled since it was trained."""
    return (
        storage in vectors.QUANTIZERS
        and prev is not None
        and same_frame
        and prev.manifest.config.full_storage == storage
        and n < 2 * max(prev.manifest.full_fitted, 1)
    )


def _codes_to_copy(prev: StoredIndex, storage: str, same_frame: bool, n: int) -> np.ndarray | None:
    """The previous generation's stored codes, when the rows it keeps can be copied into the new one byte for byte
    (same frame and type, and for the 8-bit types the same quantizer); None when they must be encoded again."""
    if not isinstance(prev.full, vectors.FullVectors):  # float32: a plain memory map, copied as it is anyway
        return None
    if storage == "float16":
        same = same_frame and prev.manifest.config.full_storage == storage
    else:  # the 8-bit types: the codes mean the same only under the same quantizer
        same = _keeps_quantizer(prev, storage, same_frame, n)
    return prev.full.codes if same else None


def _encode_full(
    writer: GenerationWriter,
    storage: str,
    prev: StoredIndex | None,
    same_frame: bool,
    n: int,
    head: int,
    copy: tuple[np.ndarray, np.ndarray] | None = None,
) -> int:
    """Store the generation's full vectors (written as float32) as `storage`; for the 8-bit types (int8, mixed), the
    previous generation's quantizer is kept while the frame and the type are the same and the index has less than
    doubled since it was trained. `copy`: (the previous generation's codes, the rows of them kept), copied into
    the first rows as they are (_codes_to_copy). Returns the chunk count the quantizer was trained at (0 for the
    other types)."""
    if storage == "float32":
        return 0
    keep = _keeps_quantizer(prev, storage, same_frame, n)
    # subtle: no flush (msync) first: full.npy is read back through the same page cache and deleted once converted,
    # so forcing its float32 pages to disk was pure I/O (the largest write of a one-file update)
    writer.full = None  # unmapped before full.npy is converted and deleted
    if not keep or prev is None:
        vectors.encode_full(writer.path, storage, None, head, copy)
        return n if storage in vectors.QUANTIZERS else 0
    vectors.encode_full(writer.path, storage, prev.full.quantizer, head, copy)
    return prev.manifest.full_fitted if storage in vectors.QUANTIZERS else 0


# Deleted chunks stay in a tantivy segment's BM25 statistics until it is merged away, so scores drift from a
# rebuild's as deletes pile up; past this share of the index, the lexical side is rebuilt from the chunk store.
LEXICAL_COMPACT_SHARE = 0.1


def _write_lexical(
    writer: GenerationWriter,
    tokenizer: str,
    prev: StoredIndex | None,
    kept_ids: np.ndarray,
    new_chunks: list[Chunk],
    new_ids: np.ndarray,
) -> int:
    """The generation's lexical index: the previous one's, hard-linked, with removed chunks deleted and new ones
    added; or, when there is none to start from (a new index, an older format, a damaged one, another tokenizer)
    or deletes have piled up, built from every chunk (and from an older version's analyzer: it is made anew once).
    Returns the deletes it now carries."""
    base = prev.lexical_path() if prev is not None and prev.manifest.config.lexical_tokenizer == tokenizer else None
    if base is not None and not is_current(base):  # an older analyzer: made anew, once
        base = None
    dead = np.setdiff1d(np.asarray(prev.ids), kept_ids, assume_unique=True) if prev is not None else np.empty(0)
    deleted = (prev.manifest.lexical_deleted if base is not None and prev is not None else 0) + len(dead)
    if deleted > LEXICAL_COMPACT_SHARE * (len(kept_ids) + len(new_ids)):
        base, deleted = None, 0
    lexical = LexicalWriter(writer.path / LEXICAL_DIR, tokenizer, base)
    if base is not None:
        lexical.delete(dead)
    elif len(kept_ids):
        assert prev is not None  # rows are kept only from a previous generation
        keep = set(kept_ids.tolist())
        records = [r for r in prev.iter_chunks() if r["id"] in keep]
        lexical.add(
            [r["id"] for r in records], [lexical_text(r["title"], r.get("heading", ""), r["text"]) for r in records]
        )
    lexical.add(new_ids, (lexical_text(c.title, c.heading, c.text) for c in new_chunks))
    count = lexical.commit()
    expected = len(kept_ids) + len(new_ids)
    if count != expected:
        raise RuntimeError(f"lexical index holds {count} chunks, expected {expected}")
    return deleted


def kept_rows(prev: StoredIndex | None, kept: list[FileEntry]) -> np.ndarray:
    """Rows of the previous generation that hold the chunks of the `kept` files, ascending."""
    if prev is None or not kept:
        return np.empty(0, dtype=np.int64)
    firsts = np.fromiter((e.id_start for e in kept), np.int64, len(kept))
    lasts = np.fromiter((e.id_end for e in kept), np.int64, len(kept))
    starts, ends = np.searchsorted(prev.ids, firsts), np.searchsorted(prev.ids, lasts)
    lengths = ends - starts
    # every file's run of rows at once (a per-file arange was most of a one-file update of 5,000 files)
    rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return np.sort(rows)


def _fit_projection(
    full: np.ndarray, config: IndexConfig, coarse_dim: int, info: ModelInfo
) -> tuple[Projection, np.ndarray | None]:
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


def coarse_reusable(prev: StoredIndex | None, requested: str, n: int) -> bool:
    """Whether a generation of `n` rows adds to `prev`'s coarse index (coarse_index) rather than making one: the
    same kind, and an IVF not grown RETRAIN_GROWTH times since it was trained. Only the new rows are read then."""
    if prev is None:
        return False
    kind, record = coarse.kind_for(requested, n), prev.manifest.coarse
    grown = kind == "ivf" and n >= coarse.RETRAIN_GROWTH * record.get("trained_at", n)
    return record.get("kind") == kind and not grown


def coarse_index(
    full: np.ndarray,
    ids: np.ndarray,
    coarse_dim: int,
    requested: str = "auto",
    *,
    prev: StoredIndex | None = None,
    n_keep: int = 0,
) -> tuple[object, dict]:
    """The coarse index over the rows of `full` (coarse.py), and its manifest record: `prev`'s, with the ids it
    no longer has removed and rows n_keep.. added, or a fresh build over every row (prev=None, another kind
    asked for or due by size, or an IVF grown RETRAIN_GROWTH times since it was trained).

    IndexIDMap, not IndexIDMap2, for flat: ids stay stable either way, and IndexIDMap2's reverse hash map (id ->
    row, for reconstruct) would cost RAM per chunk for lookups searcher never makes.
    """
    n = len(ids)
    kind = coarse.kind_for(requested, n)
    record = dict(prev.manifest.coarse) if prev is not None else {}
    if prev is not None and coarse_reusable(prev, requested, n):
        index = prev.load_coarse()
        dead = np.setdiff1d(np.asarray(prev.ids), ids[:n_keep], assume_unique=True)
        if len(dead):
            index.remove_ids(dead.astype(np.int64))
        start = n_keep
    else:
        start = 0
        if kind == "ivf":
            nlist = coarse.nlist_for(n)
            rows = np.sort(np.random.default_rng(0).choice(n, min(n, coarse.TRAIN_PER_CELL * nlist), replace=False))
            index = coarse.new_ivf(proj.coarse_vectors(np.asarray(full[rows]), coarse_dim), nlist)
            record = {
                "kind": "ivf",
                "nlist": int(index.nlist),
                "nprobe": coarse.default_nprobe(int(index.nlist)),
                "trained_at": n,
            }
        else:
            index, record = coarse.new_flat(coarse_dim), {"kind": "flat"}
    for a in range(start, n, BLOCK):
        b = min(a + BLOCK, n)
        index.add_with_ids(proj.coarse_vectors(full[a:b], coarse_dim), ids[a:b])
    return index, record


def _chunk_lines(new_chunks, new_ids, keys) -> Iterator[bytes]:
    """The new chunks' records (the kept ones are copied from the previous generation as they are)."""
    for chunk, chunk_id, key in zip(new_chunks, new_ids, keys):
        record = {
            "id": int(chunk_id),
            "doc_id": chunk.doc_id,
            "title": chunk.title,
            "source": chunk.source,
            "start": chunk.start,
            "end": chunk.end,
            "line": chunk.line,
            "end_line": chunk.end_line,
            "heading": chunk.heading,
            "anchor": chunk.anchor,
            "page": chunk.page,
            **({"places": chunk.places} if chunk.places else {}),
            **({} if chunk.count_newlines else {"count_newlines": False}),
            "hash": key,
            "text": chunk.text,
        }
        yield orjson.dumps(record) + b"\n"
