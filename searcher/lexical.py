"""The lexical index beside the vectors: BM25 over the same chunks (title and text), built with tantivy.

Why tantivy (tantivy-py, MIT): it adds and deletes documents incrementally, and its top-k stays fast as the index
grows (0.8 ms p50 at 104k documents in ../shared/research; 0.24 ms on SciFact's 10k chunks on an Intel Xeon with
AMX, benchmarks/RESULTS.md, hybrid section). SQLite FTS5 is transactional and in the standard library, but ranks every matching row (137 ms at
104k documents in ../shared/research); bm25s cannot update, so a changed file would mean a full rebuild.

Each generation holds its own lexical index in `gen-N/lexical/`. A new generation starts as hard links to the
previous generation's files - tantivy never changes a file once written (deletes and merges write new files; its
meta file is replaced by rename) - then deletes the ids of removed chunks, adds the new chunks and commits. The
cost follows the change, not the index, and the lexical side is published with the vectors in one rename, so
after a crash the two cannot disagree. An index made before this existed, or whose lexical side is damaged, gets
it rebuilt from the chunk store by the next `searcher index`.

Tokenizers: `english` (lowercase, Porter-style English stemming: the default), `plain` (lowercase words, no
stemming: other languages written with spaces), `ngram` (lowercase character 2- and 3-grams: Chinese, Japanese,
Korean, and substring matches). Queries: words are OR-ed and scored with BM25; a "quoted phrase" must match as a
phrase.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

LEXICAL_DIR = "lexical"
WRITER_HEAP = 50_000_000  # bytes tantivy buffers before writing a segment
_ANALYZER = "searcher"


def _tantivy():
    try:
        import tantivy
    except ImportError:  # pragma: no cover - a core dependency, but say so if it is missing
        raise InvalidInputError("the lexical index needs the tantivy package: pip install tantivy") from None
    return tantivy


def analyzer(name: str):
    """The tantivy text analyzer for a tokenizer setting (config.LEXICAL_TOKENIZERS; the same for indexing and
    queries)."""
    tantivy = _tantivy()
    if name == "ngram":
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.ngram(2, 3)).filter(tantivy.Filter.lowercase())
    else:
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(60))
        builder = builder.filter(tantivy.Filter.lowercase())
        if name == "english":
            builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


def _schema():
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=False, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name=_ANALYZER, index_option="position")
    return builder.build()


def _open(path: Path, tokenizer: str):
    tantivy = _tantivy()
    schema = _schema()
    index = tantivy.Index(schema, path=str(path), reuse=True)
    index.register_tokenizer(_ANALYZER, analyzer(tokenizer))
    return index, schema


class LexicalWriter:
    """Builds the lexical index of a new generation at `path`, starting from the previous one's (`base`)."""

    def __init__(self, path: Path, tokenizer: str, base: Path | None = None) -> None:
        path.mkdir(parents=True)
        if base is not None:
            for name in os.listdir(base):
                if not name.startswith(".tantivy-"):  # lock files belong to the old directory
                    os.link(base / name, path / name)
        self.path = path
        self.index, self.schema = _open(path, tokenizer)
        self.writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)

    def delete(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        tantivy = _tantivy()
        for a in range(0, len(ids), 10_000):
            self.writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, "id", ids[a : a + 10_000]))

    def add(self, ids: Iterable[int], texts: Iterable[str]) -> None:
        tantivy = _tantivy()
        for chunk_id, text in zip(ids, texts):
            doc = tantivy.Document()
            doc.add_unsigned("id", int(chunk_id))
            doc.add_text("text", text)
            self.writer.add_document(doc)

    def commit(self) -> int:
        """Commit and wait for merges; the number of documents now in the index."""
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.index.reload()
        return self.index.searcher().num_docs


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class LexicalIndex:
    """Read-only BM25 search over one generation's lexical index."""

    def __init__(self, path: Path, tokenizer: str) -> None:
        self.index, self.schema = _open(path, tokenizer)
        self.searcher = self.index.searcher()
        self.analyzer = analyzer(tokenizer)

    def __len__(self) -> int:
        return self.searcher.num_docs

    def search(self, query: str, k: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids) of the top k chunks by BM25, best first; empty when no word of the query occurs.
        `ids`: only these chunks (a filter), required inside the search."""
        q = self.query(query)
        if q is None or k < 1 or (ids is not None and not len(ids)):
            return np.empty(0, np.float32), np.empty(0, np.int64)
        if ids is not None:
            tantivy = _tantivy()
            allowed = tantivy.Query.term_set_query(self.schema, "id", [int(i) for i in ids])
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, tantivy.Query.const_score_query(allowed, 0.0))])
        hits = self.searcher.search(q, k).hits
        if not hits:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        ids = self.searcher.fast_field_values("id", [address for _, address in hits])
        return np.array([s for s, _ in hits], dtype=np.float32), np.array(ids, dtype=np.int64)

    def query(self, text: str):
        """The tantivy query for `text`: words OR-ed (BM25), each "quoted phrase" required as a phrase."""
        tantivy = _tantivy()
        clauses = []
        for phrase, part in split_phrases(text):
            tokens = [t for t in self.analyzer.analyze(part)]
            if not tokens:
                continue
            if phrase and len(tokens) > 1:
                clauses.append((tantivy.Occur.Must, tantivy.Query.phrase_query(self.schema, "text", tokens)))
            elif phrase:
                clauses.append((tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "text", tokens[0])))
            else:
                clauses += [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", t)) for t in tokens]
        return tantivy.Query.boolean_query(clauses) if clauses else None


_QUOTED = re.compile(r'"([^"]*)"')


def split_phrases(text: str) -> list[tuple[bool, str]]:
    """[(is_phrase, text), ...]: the parts of a query between double quotes are phrases; an unpaired quote is
    an ordinary character."""
    out, pos = [], 0
    for m in _QUOTED.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos : m.start()]))
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:].replace('"', " ")))
    return out
