"""The part of a hit worth showing: the passage of its chunk that holds most of the query's words, and where
those words are, for highlighting.

A chunk is cut into sentences (and lines); every run of up to SNIPPET_CHARS of consecutive sentences is scored by
the distinct query words it holds, rare-in-the-chunk words first, and the best run wins (the chunk's head when no
query word occurs, as for a match by meaning alone). Words are compared after the lexical index's own analyzer
(stemming included), so "running" in a query lights "runs" in the text. Pure functions; no model involved.
"""

from __future__ import annotations

import re
import textwrap

from .lexical import IDEOGRAPH

SNIPPET_CHARS = 240
# Function words neither choose the passage nor get highlighted (unless the query has nothing else): lighting
# every "a" and "the" hides the words that matter.
STOPWORDS = (
    "a an and are as at be by do does for from how i if in is it of on or that the this to was what "
    "when where which who why with"
)
# A sentence ends at . ! or ? followed by a space or the end, or at a line end: a dot inside a name (path.join(),
# Node.js, t.Literal) does not cut it. Written as "one character, then runs" rather than (?:[^.!?\n]|...)+, which
# matches the same sentences (checked on every SciFact chunk and corpus/ file) a character at a time, several
# times slower.
_SENTENCE = re.compile(
    r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))[^.!?\n]*(?:[.!?]+(?=[^\s.!?])[^.!?\n]*)*(?:[.!?]+(?=\s|$)|\n|$)"
)
# A passage shorter than this grows into its neighbours (up to the limit), so a hit never shows a fragment such as
# "ee." or "#." when its chunk has more to say.
MIN_PASSAGE = 40
# Lines that are markup, not prose: a Markdown link-reference definition ("[reading files]: #example") or a line of
# raw HTML ("<td><code>EADDRINUSE</code></td>"). They choose the passage only when nothing else holds a query word.
_MARKUP = re.compile(r"\s*(?:\[[^\]\n]+\]:\s*\S+|<[^>\n]+>.*)\s*$")
# A word, with the combining marks of text in decomposed form (`i` and U+0308 for `ï`) inside it, as the analyzer
# composes them (lexical.Analyzer.prepare); ASCII text takes the plain pattern, the cheaper of the two.
_WORD = re.compile(r"(?:\w[\u0300-\u036f]*)+")
_ASCII_WORD = re.compile(r"\w+")


def passage(text: str, terms: set[str], analyze, limit: int = SNIPPET_CHARS) -> tuple[int, int]:
    """(start, end) in `text` of the best passage for the analysed query `terms` (see the module docstring)."""
    return passages(text, terms, analyze, limit)[1]


def passages(
    text: str, terms: set[str], analyze, limit: int = SNIPPET_CHARS
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((start, end) of the sentences that match best, (start, end) of the passage shown): the second is the first
    grown into its neighbours when short (MIN_PASSAGE). A hit's line points at the first."""
    spans = [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]
    if not spans:
        whole = (0, min(len(text), limit))
        return whole, whole
    found = [set(analyze(text[a:b])) & terms if terms else set() for a, b in spans]
    prose = [set() if _MARKUP.match(text[a:b]) else words for (a, b), words in zip(spans, found)]
    if any(prose):
        found = prose
    best, best_score = (spans[0][0], min(spans[0][1], spans[0][0] + limit)), (0, 0)
    for i in range(len(spans)):
        words: set[str] = set()
        for j in range(i, len(spans)):
            if spans[j][1] - spans[i][0] > limit and j > i:
                break
            words |= found[j]
            score = (len(words), -(j - i))
            if score > best_score:
                best, best_score = (spans[i][0], min(spans[j][1], spans[i][0] + limit)), score
    return best, _grown(text, best, spans, limit)


def _grown(text: str, best: tuple[int, int], spans: list[tuple[int, int]], limit: int) -> tuple[int, int]:
    """`best` widened by whole sentences, the following first, until it holds MIN_PASSAGE characters of text (the
    sentence added last cut at a space when it would pass the limit whole). Lengths are counted as shown, whitespace
    folded: a blanked comment between two sentences (Markdown's YAML blocks) does not count."""
    a, b = best
    if _shown(text[a:b]) >= MIN_PASSAGE:
        return best
    i = next(n for n, span in enumerate(spans) if span[0] == a)
    j = i
    while _shown(text[a:b]) < MIN_PASSAGE:
        if j + 1 < len(spans) and _shown(text[a : spans[j + 1][1]]) <= limit:
            j += 1
            b = spans[j][1]
        elif i > 0 and _shown(text[spans[i - 1][0] : b]) <= limit:
            i -= 1
            a = spans[i][0]
        elif j + 1 < len(spans):  # the next sentence is too long to add whole: its words up to the limit
            words = list(re.finditer(r"\S+", text[b : spans[j + 1][1]]))
            budget = limit - _shown(text[a:b])
            for word in words:
                if _shown(text[b : b + word.end()]) + 1 > budget:
                    break
                end = b + word.end()
            else:
                end = spans[j + 1][1]
            b = end if words and end > b else b
            break
        elif i > 0:  # the last sentence of the chunk, the one before too long: its last words up to the limit
            budget = limit - _shown(text[a:b])
            start = a
            for word in reversed(list(re.finditer(r"\S+", text[spans[i - 1][0] : a]))):
                if _shown(text[spans[i - 1][0] + word.start() : a]) + 1 > budget:
                    break
                start = spans[i - 1][0] + word.start()
            a = start
            break
        else:
            break
    return a, b


def _shown(passage: str) -> int:
    """Characters of a passage as a snippet shows it (whitespace folded: indentation does not count)."""
    return len(" ".join(passage.split()))


def query_terms(query: str, analyze) -> set[str]:
    """The analysed words of a query that choose and light a passage: its function words only if it has nothing
    else. Worked out once per query, not per hit."""
    terms = set(analyze(query))
    return (terms - set(analyze(STOPWORDS))) or terms


def snippet(
    text: str,
    terms: set[str],
    analyze,
    limit: int = SNIPPET_CHARS,
    span: tuple[int, int] | None = None,
    keep_lines: bool = False,
) -> tuple[str, list[tuple[int, int]]]:
    """(passage, [(start, end) of each query word in it]) for the query's `terms` (query_terms), with whitespace
    folded to single spaces; `span`: the passage's (start, end) when the caller has worked it out already.
    `keep_lines` (code): the passage's whole lines instead, their breaks and relative indentation kept."""
    a, b = span if span is not None else passage(text, terms, analyze, limit)
    if keep_lines:
        start, end = text.rfind("\n", 0, a) + 1, b
        if text[b - 1 : b] != "\n":  # to the end of the passage's last line
            end = text.find("\n", b)
            end = len(text) if end < 0 else end
        if end - start <= 2 * limit:  # not a minified file's one long line
            a, b = start, end
        flat = textwrap.dedent("\n".join(line.rstrip() for line in text[a:b].split("\n"))).strip("\n")
    else:
        flat = " ".join(text[a:b].split())
    words = (_ASCII_WORD if flat.isascii() else _WORD).finditer(flat) if terms else ()
    marks = [span for m in words for span in _marked(m, terms, analyze)]
    return flat, marks


def _marked(word: re.Match, terms: set[str], analyze) -> list[tuple[int, int]]:
    """The spans of `word` to highlight: the word if it holds a query term; in a run of Chinese or Japanese (one
    regex word, no spaces), each character that is a term where the analyzer makes characters words."""
    if terms.isdisjoint(analyze(word.group())):
        return []
    if IDEOGRAPH.search(word.group()):
        start = word.start()
        chars = [(start + i, start + i + 1) for i, c in enumerate(word.group()) if not terms.isdisjoint(analyze(c))]
        if chars:
            return chars
    return [word.span()]
