"""What a search returns: `Hit` (one chunk, or one document's best chunk), `Hits` (one query's), folding
chunks into documents with near-duplicate files as one, where in its file a passage is, and a hit as a plain
record (the JSON the CLI, the server and MCP print)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    id: int  # chunk id, stable across incremental updates
    score: float  # the estimated probability that the hit is relevant (calibration.py), on one scale for all queries
    doc_id: str
    title: str
    source: str  # the file the chunk came from
    text: str  # the chunk's text
    start: int  # character offsets of the chunk in its document's extracted text
    end: int
    line: int = 0  # 1-based lines of the source file where the chunk starts and ends (0: unknown, older index)
    end_line: int = 0
    heading: str = ""  # section heading path: "Errors > ERR_REQUIRE_ESM"
    anchor: str = ""  # HTML: id of the nearest element with one (open source#anchor)
    page: int = 0  # PDF: the page the chunk starts on
    snippet: str = ""  # the passage of the chunk that holds most of the query's words (snippets.py)
    highlights: tuple[tuple[int, int], ...] = ()  # (start, end) of the query's words in the snippet
    places: tuple = ()  # where line/heading/anchor/page change inside the chunk (chunking.Chunk.places)
    count_newlines: bool = True  # lines inside the chunk follow its newlines
    rank_score: float = 0.0  # the mode's own score, which ordered the hits: fused, BM25, or cosine
    # the evidence behind `score` (calibration.py): the full-vector cosine with the query, as the index's model gives
    # it (an index of another model than the calibration's weighs it through Searcher.cosine_map)
    cosine: float | None = None
    coverage: float | None = None  # and the IDF-weighted share of the query's words the chunk holds (None: unused)
    rerank_score: float | None = None  # the cross-encoder's score, when a reranker ordered the hits (rerank.py)
    more: tuple[Hit, ...] = ()  # per_doc: the document's next-best chunks that match on their own, best first
    duplicates: tuple[str, ...] = ()  # per_doc: files whose best chunk says the same (the page as .md and .html)

    def replace(self, **changes) -> Hit:
        """A copy with `changes`: dataclasses.replace without its per-field work (a query copies dozens of hits,
        each step of scoring and locating them; the fields are plain values, with no __post_init__ to run)."""
        if not changes.keys() <= _FIELDS:
            raise TypeError(f"Hit has no field {sorted(changes.keys() - _FIELDS)[0]!r}")
        new = object.__new__(Hit)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


_FIELDS = frozenset(f.name for f in dataclasses.fields(Hit))


NOTHING_RELEVANT = "nothing in the index is likely to be relevant"


class Hits(list):
    """The hits of one query, best first; `no_match` is True when nothing in the index is close to the query
    (the hits are still there, with their scores), and `reason` says why in a line: NOTHING_RELEVANT, or that no
    passage holds the query's quoted phrases (syntax.unmet)."""

    no_match: bool = False
    reason: str = ""
    origins: tuple[int, ...] = ()  # search_many: the index (position in its list of searchers) of each hit


def _located(hit: Hit, a: int, b: int) -> dict:
    """line, end_line, heading, anchor and page of the passage text[a:b] of a hit's chunk (chunking.Chunk.places);
    the chunk's own when its record predates places and lines do not follow its newlines."""
    if hit.line == 0 or (not hit.places and not hit.count_newlines):
        return {}

    def at(offset: int) -> tuple[int, str, str, int]:
        base = (0, hit.line, hit.heading, hit.anchor, hit.page)
        for place in hit.places:
            if place[0] > offset:
                break
            base = place
        line = base[1] + (hit.text.count("\n", base[0], offset) if hit.count_newlines else 0)
        return line, base[2], base[3], base[4]

    start, end = at(a), at(max(a, b - 1) if b > a else a)
    return {
        "line": start[0],
        "end_line": max(end[0], start[0]),
        "heading": start[1],
        "anchor": start[2],
        "page": start[3],
    }


def hit_record(query: str, rank: int, hit: Hit) -> dict:
    """One hit as a JSON record (`searcher query --format json`, the server, MCP): the query, where it matched,
    the score to 4 places, then the chunk."""
    fields = (
        "source",
        "line",
        "end_line",
        "page",
        "title",
        "heading",
        "anchor",
        "snippet",
        "doc_id",
        "id",
        "start",
        "end",
        "text",
    )
    record = {"query": query, "rank": rank, "score": round(hit.score, 4), **{k: getattr(hit, k) for k in fields}}
    if hit.rerank_score is not None:
        record["rerank_score"] = round(hit.rerank_score, 4)
    record["highlights"] = [list(span) for span in hit.highlights]
    if hit.duplicates:
        record["duplicates"] = list(hit.duplicates)
    if hit.more:
        record["more"] = [
            {
                "score": round(m.score, 4),
                "line": m.line,
                "end_line": m.end_line,
                "heading": m.heading,
                "snippet": m.snippet,
                "id": m.id,
            }
            for m in hit.more
        ]
    return record


# Two documents whose matching chunks share this share of their word pairs (Jaccard over adjacent words, shingles of
# two) are shown as one hit. Pairs, not words: notes written from one template (`Meeting 3 ... ship version 1.3`)
# share most of their words but few of their pairs, while the same page as .md and .html shares nearly all of both
# (RESULTS.md, near-duplicates section).
# The pairs of all of a document's matching chunks, not its best one alone: such copies are chunked at different
# places.
NEAR_DUPLICATE = 0.8
# A document's next-best chunks kept in its hit's `more`: the places a result lists besides its own (render.py shows
# 8 and "..."). Every one kept is calibrated and given its matching passage's line, work that would otherwise grow
# with the dozens of chunks a long document can have among a query's fetched ones.
MORE_KEPT = 10
_WORD = re.compile(r"\w+")


def _shingles(text: str) -> set[int]:
    """The pairs of adjacent words of `text`, lowercased (its one word alone for a text of one word), as their
    hashes: sets of ints intersect faster than sets of tuples, whose hashes are not kept."""
    words = _WORD.findall(text.lower())
    return set(map(hash, zip(words, words[1:]) if len(words) > 1 else words))


def _near_duplicate(a: set, b: set, threshold: float = NEAR_DUPLICATE) -> bool:
    """Jaccard(a, b) >= threshold; sets of too different sizes are told apart without intersecting them (the
    intersection is at most the smaller set, the union at least the larger)."""
    small, large = sorted((len(a), len(b)))
    if small < threshold * large:
        return False
    if not (a or b):
        return True
    shared = len(a & b)
    return shared >= threshold * (len(a) + len(b) - shared)


def _per_document(hits: list[Hit], k: int, *, features=_shingles, threshold: float = NEAR_DUPLICATE) -> list[Hit]:
    """The first k documents, one hit each, in order of its best chunk; its other chunks folded into `more`. A
    document whose matching chunks say what a better document's say (the same page as .md and .html, a copied
    file) is folded into that hit's `duplicates`. `features` (a document's text -> a set) and `threshold`: how
    documents are compared (_shingles and NEAR_DUPLICATE; others for benchmarks/near_duplicates.py)."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.doc_id, []).append(hit)
    out: list[Hit] = []
    texts: list[str] = []
    # each kept document's word pairs, worked out when first compared: the records of one JSONL file (a BEIR
    # corpus) are never compared, as they stay apart
    pairs: list[set[int] | None] = []
    for best, *rest in groups.values():
        if len(out) == k:
            break
        text = " ".join(h.text for h in (best, *rest))
        mine = None
        same = None
        for i, kept in enumerate(out):
            if kept.source == best.source:
                continue
            mine = features(text) if mine is None else mine
            theirs = pairs[i]
            if theirs is None:
                theirs = pairs[i] = features(texts[i])
            if _near_duplicate(mine, theirs, threshold):
                same = i
                break
        if same is None:
            out.append(best.replace(more=tuple(rest[:MORE_KEPT])))
            texts.append(text)
            pairs.append(mine)
        elif best.source not in out[same].duplicates:
            out[same] = out[same].replace(duplicates=(*out[same].duplicates, best.source))
    return out
