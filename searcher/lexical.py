"""The lexical index beside the vectors: BM25 over the same chunks (title and text), built with tantivy.

Why tantivy (tantivy-py, MIT): it adds and deletes documents incrementally, and its top-k stays fast as the index
grows (0.8 ms p50 at 104k documents in ../shared/research; 0.24 ms on SciFact's 10k chunks on an Intel Xeon with
AMX, benchmarks/RESULTS.md, hybrid section). SQLite FTS5 is transactional and in the standard library, but ranks
every matching row (137 ms at 104k documents in ../shared/research); bm25s cannot update, so a changed file would
mean a full rebuild.

Each generation holds its own lexical index in `gen-N/lexical/`. A new generation starts as hard links to the
previous generation's files - tantivy never changes a file once written (deletes and merges write new files; its
meta file is replaced by rename) - then deletes the ids of removed chunks, adds the new chunks and commits. The
cost follows the change, not the index, and the lexical side is published with the vectors in one rename, so
after a crash the two cannot disagree. An index made before this existed, or whose lexical side is damaged, gets
it rebuilt from the chunk store by the next `searcher index`.

Tokenizers: `english` (lowercase, Porter-style English stemming: the default), `plain` (lowercase words, no
stemming: other languages written with spaces), `ngram` (lowercase character 2- and 3-grams: Chinese, Japanese,
Korean, and substring matches). Each folds accents and other marks to ASCII (`cafe` finds `café`, `strasse`
`Straße`, `naive` `naïve`), as SQLite FTS5's default tokenizer does: a user types the plain letters, and a
collection spells a word both ways (SciFact writes `naïve T cells` and `naive T cells`). Text in decomposed form
(a letter, then a combining accent: macOS, some PDFs) is composed first (NFC), or the accent would cut the word.
`english` and `plain` make each Han ideograph and hiragana character a word (split_ideographs), so that Chinese and
Japanese passages in a collection of mostly English text are found by their words too (`ngram` remains the better
choice for a collection in those languages). Decided as what a user expects, not tuned; their effect on the shared
sets is in RESULTS.md's search quality section.

Identifiers (`english` and `plain`): the text field cuts `Py_Initialize` into `py` and `initialize`, so that
`initialize` and `py initialize` find it; a second field, `ident`, holds each identifier of the chunk whole
(snake_case, camelCase and PascalCase, dotted names and their tails, `--flags` and `-f` flags as written, error
codes such as `E0277`, versions such as `v3.11.2`), lowercased and never stemmed. It scores only in a look-up query
(`names`), where the names are boosted, so that the chunks holding them are among the candidates, however common
their parts (`ctx`, `command`, `path` in a CLI library); elsewhere BM25 is the text field's alone (adding the field
to every query's score lost on every tuning split). With `holding`, the Searcher lists the chunks holding every
identifier of a look-up query first.

Queries: words are OR-ed and scored with BM25, without English stopwords (`english`: Lucene's list, the one bm25s
uses) unless the query is made of nothing else ("to be or not to be"); the index keeps them, so phrases hold them. A
"quoted phrase" must match as a phrase and a -word or -"phrase" must not occur (syntax.py; a -word the collection
holds as a flag, `ls -la`, is a word: `parse`); `matching` gives the chunks such a query allows, which the Searcher
applies as a filter in every mode. Why stopwords are dropped from queries rather than from the index: the two
measured alike against bm25s on whole documents (within 0.003 nDCG@10 on each tuning split), and keeping them in the
index keeps phrases exact.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .calibration import idf
from .errors import InvalidInputError
from .syntax import Query, parse

LEXICAL_DIR = "lexical"
WRITER_HEAP = 50_000_000  # bytes tantivy buffers before writing a segment
_ANALYZER = "searcher"
_IDENT_ANALYZER = "searcher-ident"
IDENT_MAX_CHARS = 80  # a longer identifier is not indexed whole (tantivy's remove_long), nor its longer tails
NAME_BOOST = 4.0  # a look-up's identifier against one word of the text (see the module docstring)
# Lucene's English stopwords, the list tantivy's stopword filter and bm25s ("en") use.
_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)


def _tantivy():
    try:
        import tantivy
    except ImportError:  # pragma: no cover - a core dependency, but say so if it is missing
        raise InvalidInputError("the lexical index needs the tantivy package: pip install tantivy") from None
    return tantivy


# Han ideographs and hiragana: Chinese and Japanese put no space between words, so `english` and `plain` (version 3
# on) make each of these characters a word, as Lucene's standard tokenizer does; a "quoted" run of them is then a
# phrase of adjacent characters, an exact match. Katakana runs and Hangul words (Korean spaces its words) stay whole.
IDEOGRAPH = re.compile(r"[\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def split_ideographs(text: str) -> str:
    """`text` with a space on each side of every Han ideograph and hiragana character (see IDEOGRAPH)."""
    return IDEOGRAPH.sub(r" \g<0> ", text)


class Analyzer:
    """A tantivy analyzer and what its lexical index's version does to a text first: Unicode's composed form (NFC)
    and split_ideographs."""

    def __init__(self, inner, split: bool, compose: bool) -> None:
        self.inner = inner  # the tantivy TextAnalyzer, as an index registers it
        self.split = split
        self.compose = compose

    def prepare(self, text: str) -> str:
        """`text` as the index is given it (and every query's words are analysed from). Composed first: text in
        decomposed form (macOS, some PDFs: `i` then a combining diaeresis) would be cut at each mark, as the
        tokenizer takes a mark for a separator (`naïve` as `nai` and `ve`)."""
        if text.isascii():  # (English text skips both: snippets and scores analyse the hits' text on every query)
            return text
        if self.compose:
            text = unicodedata.normalize("NFC", text)
        return split_ideographs(text) if self.split else text

    def analyze(self, text: str) -> list[str]:
        return self.inner.analyze(self.prepare(text))


def analyzer(name: str, *, stopwords: bool = False, version: str | None = None) -> Analyzer:
    """The text analyzer for a tokenizer setting (config.LEXICAL_TOKENIZERS) as a lexical index of `version` (by
    default VERSION) made its words (the same for indexing and queries). `stopwords`: without English stopwords
    (`english` only), for the words of a query. From version 3, text is composed (NFC), accents and other marks are
    folded to ASCII (`café` is `cafe`, `Straße` is `strasse`) and, but in `ngram`, each Han ideograph and hiragana
    character is a word (split_ideographs)."""
    current = version != "2"  # (None: this release's, VERSION)
    tantivy = _tantivy()
    if name == "ngram":
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.ngram(2, 3))
    else:
        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(60))
    builder = builder.filter(tantivy.Filter.lowercase())
    if current:
        builder = builder.filter(tantivy.Filter.ascii_fold())
    if name == "english":
        if stopwords:
            builder = builder.filter(tantivy.Filter.stopword("english"))
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return Analyzer(builder.build(), split=current and name != "ngram", compose=current)


def _ident_analyzer():
    """The `ident` field's analyzer: identifiers() already cut the words; lowercase them, never stem them
    (`last_values` is not `last_value`)."""
    tantivy = _tantivy()
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).filter(
        tantivy.Filter.remove_long(IDENT_MAX_CHARS)
    )
    return builder.filter(tantivy.Filter.lowercase()).build()


# A run of word characters with the joints identifiers use (., ::, -, $); leading dashes kept for --flags.
_CANDIDATE = re.compile(r"-{0,2}[\w$]+(?:(?:\.|::|-|/)[\w$]+)*")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
_LETTER, _DIGIT = re.compile(r"[^\W\d_]"), re.compile(r"\d")
_FLAG = re.compile(r"-[^\W\d_]\w*")  # -m, -la, -xzf, -O2


def identifiers(text: str, *, parts: bool = True) -> list[str]:
    """The identifiers in `text`, whole, as written (see the module docstring); with `parts`, also the tails of
    dotted names (`path.join` of `os.path.join`)."""
    out: list[str] = []
    for m in _CANDIDATE.finditer(text):
        token = m.group()
        if token.startswith("-") and not token.startswith("--"):
            if _FLAG.fullmatch(token):  # a command's flag as written (`ls -la`): syntax.parse asks for it
                out.append(token)
            token = token[1:]
        if not _is_identifier(token):
            continue
        out.append(token)
        if not parts:
            continue
        for joint in (".", "::"):
            pieces = token.split(joint)
            if all(p[:1].isalpha() or p[:1] in "_$" for p in pieces):  # names, not version numbers
                # the tails the ident field keeps (no longer than its analyzer's limit), shortest last
                tails = []
                for i in range(len(pieces) - 2, 0, -1):
                    tail = joint.join(pieces[i:])
                    if len(tail) > IDENT_MAX_CHARS:
                        break
                    tails.append(tail)
                out += reversed(tails)
    return out


def _is_identifier(token: str) -> bool:
    if token.startswith("--"):
        return len(token) > 3 and bool(_LETTER.search(token))
    if "-" in token or "/" in token:  # e-mail, and/or: words, not names (--flags are above)
        return False
    if "_" in token.strip("_") or "." in token or "::" in token:
        return bool(_LETTER.search(token)) or token.count(".") >= 2  # os.path.join, 3.11.2; not 3.5
    return bool(_CAMEL.search(token)) or bool(_LETTER.search(token) and _DIGIT.search(token))


def _schema():
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=False, indexed=True, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name=_ANALYZER, index_option="position")
    builder.add_text_field("ident", stored=False, tokenizer_name=_IDENT_ANALYZER, index_option="freq")
    return builder.build()


# What the fields hold. A new lexical index is of VERSION. One of an older version still READABLE is searched with
# the analyzer it was made with, until the next write of its index makes it anew from the chunk store
# (generation._write_lexical; no re-embedding); any other is rebuilt so too, as a damaged one is.
VERSION = "3"  # 2: the `ident` field; stopwords left out of queries. 3: accents folded, ideographs split (analyzer)
READABLE = ("2", "3")
VERSION_FILE = "searcher-lexical-version"


def version_of(path: Path) -> str:
    """The version of the lexical index at `path` ("1": made before versions were written down)."""
    try:
        return (path / VERSION_FILE).read_text().strip()
    except OSError:
        return "1"


def is_current(path: Path) -> bool:
    """Whether the lexical index at `path` was made with this release's analyzer (VERSION): an index's next write
    makes an older one anew, and an unchanged index with an older one is not left as it is."""
    return version_of(path) == VERSION


def _open(path: Path, tokenizer: str):
    """(tantivy index, schema, its version) of the lexical index at `path`."""
    tantivy = _tantivy()
    version = version_of(path)
    if version not in READABLE:
        raise ValueError(f"the lexical index is of version {version}, not one of {', '.join(READABLE)}")
    schema = _schema()
    index = tantivy.Index(schema, path=str(path), reuse=True)
    index.register_tokenizer(_ANALYZER, analyzer(tokenizer, version=version).inner)
    index.register_tokenizer(_IDENT_ANALYZER, _ident_analyzer())
    return index, schema, version


class LexicalWriter:
    """Builds the lexical index of a new generation at `path`, starting from the previous one's (`base`)."""

    def __init__(self, path: Path, tokenizer: str, base: Path | None = None) -> None:
        path.mkdir(parents=True)
        if base is not None:  # (its version file included: a base is an index that opened, so of this version)
            for name in os.listdir(base):
                if not name.startswith(".tantivy-"):  # lock files belong to the old directory
                    os.link(base / name, path / name)
        else:
            (path / VERSION_FILE).write_text(VERSION + "\n")
        self.path = path
        self.tokenizer = tokenizer
        self.index, self.schema, version = _open(path, tokenizer)
        self.prepare = analyzer(tokenizer, version=version).prepare
        self.writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)

    def delete(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        tantivy = _tantivy()
        for a in range(0, len(ids), 10_000):
            self.writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, "id", ids[a : a + 10_000]))

    def add(self, ids: Iterable[int], texts: Iterable[str]) -> None:
        tantivy = _tantivy()
        names = self.tokenizer != "ngram"
        for chunk_id, text in zip(ids, texts):
            doc = tantivy.Document()
            doc.add_unsigned("id", int(chunk_id))
            doc.add_text("text", self.prepare(text))
            if names:
                doc.add_text("ident", " ".join(identifiers(text)))
            self.writer.add_document(doc)

    def commit(self) -> int:
        """Commit and wait for merges; the number of documents now in the index."""
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.index.reload()
        return self.index.searcher().num_docs


def content_words(text: str) -> str:
    """A query's free words without English stopwords (unless it has nothing else), as written: for an engine that
    analyses a query itself (the qdrant backend), so that it scores what LexicalIndex.query scores."""
    words = parse(text).words.split()
    kept = [w for w in words if re.sub(r"\W", "", w.lower()) not in _STOPWORDS]
    return " ".join(kept or words)


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class LexicalIndex:
    """Read-only BM25 search over one generation's lexical index."""

    def __init__(self, path: Path, tokenizer: str) -> None:
        self.index, self.schema, self.version = _open(path, tokenizer)
        self.searcher = self.index.searcher()
        self.tokenizer = tokenizer
        self.analyzer = analyzer(tokenizer, version=self.version)
        self.query_analyzer = analyzer(tokenizer, stopwords=True, version=self.version)
        self.ident_analyzer = _ident_analyzer()
        self._last = threading.local()  # coverage(): the last query's answers, per thread

    def __len__(self) -> int:
        return self.searcher.num_docs

    def search(self, query: str, k: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids) of the top k chunks by BM25, best first; empty when no word of the query occurs.
        `ids`: only these chunks (a filter), required inside the search."""
        q = self.query(query)
        if q is None or k < 1 or (ids is not None and not len(ids)):
            return np.empty(0, np.float32), np.empty(0, np.int64)
        if ids is not None:
            q = self._within(q, ids)
        return self._run(q, k)

    def _within(self, q, ids: np.ndarray):
        tantivy = _tantivy()
        allowed = tantivy.Query.term_set_query(self.schema, "id", [int(i) for i in ids])
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, q), (tantivy.Occur.Must, tantivy.Query.const_score_query(allowed, 0.0))]
        )

    def _run(self, q, k: int) -> tuple[np.ndarray, np.ndarray]:
        hits = self.searcher.search(q, k).hits
        if not hits:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        ids = self.searcher.fast_field_values("id", [address for _, address in hits])
        return np.array([s for s, _ in hits], dtype=np.float32), np.array(ids, dtype=np.int64)

    def parse(self, text: str) -> Query:
        """syntax.parse, with a -word this index holds as a flag (`ls -la`) read as a word, not an exclusion."""
        return parse(text, self._is_flag)

    def _is_flag(self, token: str) -> bool:
        return self.tokenizer != "ngram" and self.searcher.doc_freq("ident", token) > 0

    def query_words(self, text: str) -> list[str]:
        """The analysed words a query's evidence is counted over, each once: its free words and its phrases' words,
        stopwords out unless it has nothing else (as the calibrated score counts them, search.Searcher)."""
        parsed = self.parse(text)
        return list(dict.fromkeys(self.words(" ".join([parsed.words, *parsed.phrases]))))

    def coverage(self, text: str, ids: np.ndarray) -> np.ndarray:
        """calibration.coverage of the query `text` for each chunk of `ids`: the IDF-weighted share of its words
        each holds, from the index's postings (no chunk text is read).

        A query's hybrid search asks twice, for its fusion's candidates and then for the hits it keeps (the
        calibrated score): each thread remembers its last query's answers, and asks the postings for new ids only."""
        words = tuple(self.query_words(text))
        known = getattr(self._last, "coverage", None)
        if known is None or known[0] != words:
            known = (words, {})
            self._last.coverage = known
        seen: dict[int, float] = known[1]
        missing = np.array([i for i in ids.tolist() if i not in seen], np.int64)
        if len(missing):
            seen.update(zip(missing.tolist(), self._coverage(words, missing).tolist()))
        return np.array([seen[i] for i in ids.tolist()], np.float64)

    def _coverage(self, words: tuple[str, ...], ids: np.ndarray) -> np.ndarray:
        tantivy = _tantivy()
        out = np.zeros(len(ids), np.float64)
        weights = {t: idf(self.doc_freq(t), self.searcher.num_docs) for t in words}
        total = sum(weights.values())
        if not len(ids) or total <= 0:
            return out
        # One search: each word scores its IDF where it occurs, so a chunk's score is the sum of its words' IDF.
        held = tantivy.Query.boolean_query(
            [
                (
                    tantivy.Occur.Should,
                    tantivy.Query.const_score_query(tantivy.Query.term_query(self.schema, "text", t), w),
                )
                for t, w in weights.items()
            ]
        )
        scores, found = self._run(self._within(held, ids), len(ids))
        order = np.argsort(ids)
        out[order[np.searchsorted(ids[order], found)]] = scores
        return np.minimum(out / total, 1.0)

    def doc_freq(self, token: str) -> int:
        """Chunks whose text holds the analysed word `token`."""
        return self.searcher.doc_freq("text", token)

    def words(self, text: str) -> list[str]:
        """The analysed words of a query's free text: without stopwords, unless it has nothing else."""
        return self.query_analyzer.analyze(text) or self.analyzer.analyze(text)

    def query(self, text: str):
        """The tantivy query for `text` (see the module docstring): words OR-ed in both fields, identifiers
        whole in `ident`, each "quoted phrase" required, each -word or -"phrase" excluded."""
        tantivy = _tantivy()
        parsed = self.parse(text)
        free = parsed.words
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", t)) for t in self.words(free)]
        clauses += [
            (
                tantivy.Occur.Should,
                tantivy.Query.boost_query(tantivy.Query.term_query(self.schema, "ident", n), NAME_BOOST),
            )
            for n in self.names(free)
        ]
        for phrase in parsed.phrases:
            q = self._phrase(phrase)
            if q is not None:
                clauses.append((tantivy.Occur.Must, q))
                clauses += [
                    (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", t))
                    for t in self.analyzer.analyze(phrase)
                ]
        if not clauses:
            return None
        clauses += [(tantivy.Occur.MustNot, q) for q in map(self._phrase, parsed.excluded) if q is not None]
        return tantivy.Query.boolean_query(clauses)

    def names(self, text: str) -> list[str]:
        """The identifiers of a query that looks a name up, analysed as the `ident` field holds them; none for
        a query in prose. A look-up: at least half of its words (stopwords aside) are identifiers, so that
        `Py_Initialize`, `os.path.join example` and `E0277` qualify and a claim that mentions CD4 or mRNA does not
        (the rule ranked such claims worse on SciFact's tuning split: RESULTS.md, lexical quality section)."""
        if self.tokenizer == "ngram":
            return []
        words = [w for w in text.split() if w.lower() not in _STOPWORDS]
        # (a -flag is no look-up: `-v` is in every tool's documentation)
        names = [n for n in identifiers(text, parts=False) if not _FLAG.fullmatch(n)]
        if not names or 2 * len(names) < len(words):
            return []
        return list(dict.fromkeys(t for name in names for t in self.ident_analyzer.analyze(name)))

    def _phrase(self, phrase: str):
        """A phrase (or a single word) as a query on the text field; None when nothing of it is indexed."""
        tantivy = _tantivy()
        tokens = self.analyzer.analyze(phrase)
        if not tokens:
            return None
        if len(tokens) == 1:
            return tantivy.Query.term_query(self.schema, "text", tokens[0])
        return tantivy.Query.phrase_query(self.schema, "text", tokens)

    def matching(self, phrases: tuple[str, ...], excluded: tuple[str, ...]) -> tuple[np.ndarray | None, np.ndarray]:
        """(sorted ids holding every phrase, or None when there are none; sorted ids holding any excluded word or
        phrase): what a query's syntax allows, for filters.selected_ids."""
        tantivy = _tantivy()
        required = None
        if phrases:
            qs = [self._phrase(p) for p in phrases]
            if any(q is None for q in qs):  # a phrase of nothing indexable (punctuation): nothing holds it
                required = np.empty(0, np.int64)
            else:
                required = self._all(tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in qs]))
        qs = [q for q in map(self._phrase, excluded) if q is not None]
        banned = (
            self._all(tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in qs]))
            if qs
            else np.empty(0, np.int64)
        )
        return required, banned

    def _all(self, q) -> np.ndarray:
        n = self.searcher.num_docs
        return np.sort(self._run(q, n)[1]) if n else np.empty(0, np.int64)

    def holding(self, names: list[str], ids: np.ndarray) -> np.ndarray:
        """A mask over `ids`: the chunks that hold every identifier in `names` (analysed, from `names()`) that the
        index knows; all False when it knows none of them."""
        tantivy = _tantivy()
        known = [n for n in names if self.searcher.doc_freq("ident", n) > 0]
        if not known or not len(ids):
            return np.zeros(len(ids), bool)
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "ident", n)) for n in known]
        )
        found = self._run(self._within(q, ids), len(ids))[1]
        return np.isin(ids, found)
