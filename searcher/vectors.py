"""The full vectors' storage types: float32, float16, int8 codes of FAISS's 8-bit scalar quantizer, or mixed.

Every type is a C-ordered 2-d .npy file, memory-mapped read-only with random-access advice (store.map_rows), so a
rerank reads only the shortlisted rows, as with float32; rows are decoded to float32 when they are read:

    float32  full.npy       4 B per dimension (4 KB per chunk at 1024 dims)
    float16  full.f16.npy   2 B per dimension
    mixed    full.mx8.npy   the first `head` dims (the coarse dims: the projection's strongest) as float16, the rest
                            as int8 codes like below (quantizer in full.mx8.faiss): d + head bytes per chunk (1,088 B
                            at 1024 dims with the 64 coarse dims), one row of bytes per chunk (one read per row)
    int8     full.sq8.npy   1 B per dimension: FAISS ScalarQuantizer QT_8bit (a min/max range per dimension,
                            trained on the index's vectors) kept beside it in full.sq8.faiss, an
                            IndexScalarQuantizer holding no vectors; FAISS encodes and decodes (sa_encode/sa_decode)

Why mixed is the default: every dimension gets the same 256 levels, but the dimensions are far from equal. In the
projection's frame (a PCA rotation, or a Matryoshka prefix) the first dims carry most of each vector and of each
query, so their rounding errors dominate the score's error (a dim's share grows with its variance squared), and
near-tied neighbours swap places. Keeping just those in float16 removed most of it: top-10 agreement of an
exhaustive search with exact float32 search, 1024 dims, 100k synthetic chunks, 0.978 (int8) -> 0.998 (mixed), for
6% more bytes; and the nDCG@10 of both is within 0.002 of float32 on the real sets (benchmarks/RESULTS.md,
storage and scale-quantized).

Why the codes are a .npy and not inside a FAISS index file: a FAISS file holds its codes in one serialised
vector, which FAISS writes from memory (10 GB at 10M chunks of 1024 dims) and cannot grow by appending; a .npy is
written block by block as a generation is made and maps the same way. The quantizer itself is FAISS's.

Writing goes through float32 (generation.py writes full.npy, then `encode_full` converts it block by block and
deletes it), so the projection's rotation and the carrying over of kept rows work the same for every type. The
quantizer is trained once and kept while the index grows less than 2x (re-encoding a decoded row with the same
quantizer gives the same code, so kept rows do not drift); past that it is trained again on the larger index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STORAGE_TYPES = ("float32", "float16", "mixed", "int8")  # largest first
FILES = {"float32": "full.npy", "float16": "full.f16.npy", "mixed": "full.mx8.npy", "int8": "full.sq8.npy"}
DTYPES = {"float32": np.float32, "float16": np.float16, "mixed": np.uint8, "int8": np.uint8}
QUANTIZERS = {"mixed": "full.mx8.faiss", "int8": "full.sq8.faiss"}  # the types with an 8-bit quantizer
TRAIN_SAMPLE = 100_000  # rows the int8 ranges are trained on
DOT_ROWS = 256  # rows FullVectors.dot widens to float32 at a time (a block stays in the CPU's cache)
RANGE_MARGIN = 0.1  # each trained range widened by this share of its width on both sides
BLOCK = 65_536


def head_dims(storage: str, dim: int, coarse_dim: int) -> int:
    """Leading dims kept as float16 inside the 8-bit codes of `storage` (mixed: the coarse dims; 0 for the other
    types). A storage file row holds dim + head columns: a float16 dim takes two byte columns."""
    return min(coarse_dim, dim) if storage == "mixed" else 0


class FullVectors:
    """Rows of a float16, mixed or int8 full-vector file, decoded to float32 on reading; indexing as a 2-d array by
    row (an int, a slice or an array of rows) with `shape`, like the float32 memory map it stands in for."""

    def __init__(self, codes: np.ndarray, storage: str, dim: int, quantizer=None, head: int = 0) -> None:
        self.codes, self.storage, self.quantizer, self.head = codes, storage, quantizer, head
        self.shape = (len(codes), dim)
        self.dtype = np.dtype(np.float32)
        if quantizer is not None:  # FAISS's QT_8bit decoding: x = vmin + (code + 0.5) / 255 * width, per dim
            import faiss

            vmin, width = faiss.vector_to_array(quantizer.sq.trained).reshape(2, -1)
            self._step, self._zero = width / 255, vmin + 0.5 * width / 255

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        codes = np.asarray(self.codes[rows])
        if codes.ndim == 1:
            return self._decode(codes[None])[0]
        return self._decode(codes)

    def dot(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Scores of `rows` against one float32 query, with the decoding folded into the query instead of done
        per row: a row's 8-bit part scores as codes @ (q * step) + q @ zero (the decoding above, summed), so a
        rerank widens the codes it reads to float32 a block at a time and multiplies (2,000 rows of 1024 dims:
        ~0.8 ms against ~4 ms decoding them, a probe on the 2-core Xeon with AMX; the whole query's gain is in
        RESULTS.md, ten million chunks)."""
        codes = self.codes[rows]
        if self.quantizer is None:  # float16, or mixed storage all float16 (dim <= coarse dims)
            return self._decode(np.asarray(codes)) @ q
        h = self.head
        weights = np.concatenate([q[:h], q[h:] * self._step]).astype(np.float32)
        offset = np.float32(q[h:] @ self._zero)
        out = np.empty(len(codes), np.float32)
        block = np.empty((min(DOT_ROWS, len(codes)), self.shape[1]), np.float32)
        for a in range(0, len(codes), DOT_ROWS):
            part = codes[a : a + DOT_ROWS]
            m = len(part)
            if h:
                block[:m, :h] = part[:, : 2 * h].view(np.float16)
            block[:m, h:] = part[:, 2 * h :]
            out[a : a + m] = block[:m] @ weights
        return out + offset

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        if self.storage == "float16":
            return codes.astype(np.float32)
        if not len(codes):
            return np.empty((0, self.shape[1]), np.float32)
        h = self.head  # int8 is the case h = 0
        out = np.empty((len(codes), self.shape[1]), np.float32)
        out[:, :h] = np.ascontiguousarray(codes[:, : 2 * h]).view(np.float16)
        if self.quantizer is not None:
            out[:, h:] = self.quantizer.sa_decode(np.ascontiguousarray(codes[:, 2 * h :]))
        return out


def scores(full, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Full-vector scores of `rows` of a generation's full vectors (a float32 memory map or FullVectors) for one
    query."""
    return full.dot(rows, q) if isinstance(full, FullVectors) else full[rows] @ q


def encode_rows(x: np.ndarray, storage: str, quantizer=None, head: int = 0) -> np.ndarray:
    """Rows of float32 vectors as `storage` (float16, mixed or int8) stores them: FullVectors decodes them."""
    if storage == "float16":
        return x.astype(np.float16)
    codes = np.empty((len(x), x.shape[1] + head), np.uint8)  # int8 and mixed; int8 is the case head = 0
    codes[:, : 2 * head] = np.ascontiguousarray(x[:, :head], dtype=np.float16).view(np.uint8)
    if quantizer is not None:
        codes[:, 2 * head :] = quantizer.sa_encode(np.ascontiguousarray(x[:, head:]))
    return codes


def train_quantizer(full: np.ndarray, start: int = 0):
    """FAISS's 8-bit scalar quantizer (per-dimension ranges) trained on up to TRAIN_SAMPLE rows of `full`'s
    columns from `start` on (mixed storage quantizes the dims after its float16 head); None when there are none."""
    import faiss

    n, d = full.shape[0], full.shape[1] - start
    if d <= 0:
        return None
    rows = np.sort(np.random.default_rng(0).choice(n, min(n, TRAIN_SAMPLE), replace=False))
    sample = np.ascontiguousarray(np.asarray(full[rows], dtype=np.float32)[:, start:])
    if n < 2:  # nothing to learn ranges from: the whole range of a unit vector's components
        sample = np.concatenate([sample, np.full((1, d), -1, np.float32), np.full((1, d), 1, np.float32)])
    index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(sample))
    # subtle: values outside a dimension's trained range are clipped, and later updates bring vectors the sample
    # never saw (a dimension that was ~constant in a small first index). Each range is widened by RANGE_MARGIN on
    # both sides and made at least as wide as the median dimension's.
    trained = faiss.vector_to_array(index.sq.trained).reshape(2, d)
    vmin, width = trained[0], trained[1]
    width = np.maximum(width, np.median(width))
    trained = np.stack([vmin - RANGE_MARGIN * width, width * (1 + 2 * RANGE_MARGIN)]).astype(np.float32)
    faiss.copy_array_to_vector(trained.ravel(), index.sq.trained)
    return index


def encode_full(
    path: Path, storage: str, quantizer=None, head: int = 0, copy: tuple[np.ndarray, np.ndarray] | None = None
) -> None:
    """Convert the float32 full.npy in generation folder `path` to `storage` (float16, mixed or int8), block by
    block, and delete it; the 8-bit quantizer is `quantizer` when given (the previous generation's), else trained
    here (none when mixed storage's float16 head is the whole vector), and is written beside the codes. `head`:
    mixed storage's float16 dims. `copy`: (codes of this storage, rows of them) that become the first rows as they
    are, with `quantizer` the one they were made with; full.npy's rows from there on are encoded."""
    from .atomic import reserved_npy

    source = path / FILES["float32"]
    full = np.load(source, mmap_mode="r")
    if storage in QUANTIZERS and quantizer is None:
        quantizer = train_quantizer(full, head)
    codes = reserved_npy(path / FILES[storage], (len(full), full.shape[1] + head), DTYPES[storage])
    start = 0
    if copy is not None:
        assert quantizer is not None or storage == "float16", "copied codes need the quantizer that made them"
        old, rows = copy
        for a in range(0, len(rows), BLOCK):
            part = rows[a : a + BLOCK]
            codes[a : a + len(part)] = old[part]
        start = len(rows)
    for a in range(start, len(full), BLOCK):
        b = min(a + BLOCK, len(full))
        codes[a:b] = encode_rows(np.ascontiguousarray(full[a:b], dtype=np.float32), storage, quantizer, head)
    codes.flush()
    del codes, full
    if storage in QUANTIZERS and quantizer is not None:
        write_quantizer(path / QUANTIZERS[storage], quantizer)
    source.unlink()


def write_quantizer(path: Path, quantizer) -> None:
    import faiss

    with open(path, "wb") as f:
        faiss.write_index(quantizer, faiss.PyCallbackIOWriter(f.write))


def read_quantizer(path: Path, dim: int):
    """The int8 quantizer of a generation; ValueError when the file is not one for `dim` dimensions."""
    import faiss

    with open(path, "rb") as f:
        data = f.read()
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as e:
        raise ValueError(f"not a FAISS index ({str(e).splitlines()[0][:80]})") from None
    if (
        not isinstance(index, faiss.IndexScalarQuantizer)
        or index.d != dim
        or not index.is_trained
        or index.sq.qtype != faiss.ScalarQuantizer.QT_8bit
    ):
        raise ValueError(f"not a trained {dim}-dim 8-bit scalar quantizer")
    return index
