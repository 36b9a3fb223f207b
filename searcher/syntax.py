"""What a query says beyond its words: "quoted phrases" that must occur, and -word / -"phrase" exclusions.

    parse('git "subtree split" -svn')  ->  Query(text='git subtree split', phrases=('subtree split',),
                                                 excluded=('svn',), words='git')

`text` is what the model embeds and the snippets light: the query without its exclusions, phrases unquoted.
Phrases and exclusions are filters, not scores: the Searcher turns them into the set of chunks a search may return
(filters.selected_ids), in every mode, so a dense search never lists a chunk without the phrase.

Rules (as in most search boxes): a `-` starts an exclusion only at the start of a word and before a quote or a word
of two characters or more that begins with a letter, so `--no-cache-dir`, `e-mail` and `-` alone are plain words,
and so are numbers (`-40 degrees`, `E2F-1, -2, -3`: text pasted as a query holds them) and a single letter
(`python -m venv`, `git commit -m`, `pip install -r`: a command's flag; leaving out every passage that holds the
word "m" is never what a query means). A `-word` that the collection holds as written (`ls -la`, `tar -xzf`: the
index's identifiers keep such flags) is a word of the query too: `is_flag`. An unpaired quote is an ordinary
character. A query of more than PASSAGE_WORDS words is a passage pasted to find others like it (an argument, a
claim, a paragraph), not a search box's query: its quotes and dashes are punctuation, as quoted speech and dashes
are in prose, and nothing in it is a filter (Google reads no more than 32 words of a query at all).
Pure functions; tests/test_relevance.py works them out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PASSAGE_WORDS = 32
_TRAILING = ",.;:!?)]}'"  # punctuation after a word, not part of it
_SYNTAX = re.compile(r"[\"“”]|(?<!\S)-(?=\w)")  # what `literal` takes out: quotes (curly ones too), word-leading minus
_TOKEN = re.compile(r'(?<!\S)-"([^"]*)"|"([^"]*)"|(?<!\S)-(?=[^\W\d]\w)(\S+)')


@dataclass(frozen=True)
class Query:
    text: str  # the query as meaning: exclusions removed, phrases unquoted, whitespace folded
    phrases: tuple[str, ...] = ()  # each must occur in a chunk, as a phrase
    excluded: tuple[str, ...] = ()  # words or phrases a chunk must not hold
    words: str = ""  # the free words: the query without its phrases and exclusions

    @property
    def filters(self) -> bool:
        return bool(self.phrases or self.excluded)


def parse(query: str, is_flag: Callable[[str], bool] | None = None) -> Query:
    """The phrases, exclusions and remaining text of a query (see the module docstring). `is_flag(token)`: whether
    a `-word` as written (`-la`, lower-cased) is a command-line flag the collection holds (`ls -la`), to be searched
    for as a word rather than left out (LexicalIndex.parse asks its index)."""
    if len(query.split(None, PASSAGE_WORDS)) > PASSAGE_WORDS:  # a passage: read as text
        text = " ".join(query.replace('"', " ").split())
        return Query(text, words=text)
    phrases: list[str] = []
    excluded: list[str] = []
    kept: list[str] = []
    free: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(query):
        kept.append(query[pos : m.start()])
        free.append(query[pos : m.start()])
        pos = m.end()
        excluded_phrase, phrase, excluded_word = m.groups()
        if excluded_word is not None and is_flag is not None and is_flag("-" + excluded_word.rstrip(_TRAILING).lower()):
            kept.append(m.group())  # a flag: a word of the query
            free.append(m.group())
            continue
        if phrase is not None:
            if phrase.strip():
                phrases.append(" ".join(phrase.split()))
            kept.append(f" {phrase} ")
        elif (excluded_phrase or excluded_word or "").strip():
            excluded.append(" ".join((excluded_phrase if excluded_phrase is not None else excluded_word).split()))
    kept.append(query[pos:])
    free.append(query[pos:])
    text, words = (" ".join(" ".join(parts).replace('"', " ").split()) for parts in (kept, free))
    return Query(text, tuple(dict.fromkeys(phrases)), tuple(dict.fromkeys(excluded)), words)


def literal(query: str) -> str:
    """The query with nothing in it read as syntax: its quotes and any minus at the start of a word become spaces,
    so that `parse` finds neither phrases nor exclusions in it. For text that was not typed into a search box: a
    data set's queries (`searcher eval`), pseudo-queries cut from documents (labelfree.py)."""
    return " ".join(_SYNTAX.sub(" ", query).split())


def unmet(query: Query, *, scoped: bool = False) -> str:
    """Why a query whose phrases and exclusions left no passage at all found nothing: a line for the user, naming
    them and the way out ("" when the query has none). `scoped`: the search was kept to some files."""
    excluded = " ".join(f'-"{e}"' if " " in e else f"-{e}" for e in query.excluded)
    if query.phrases:
        quoted = " and ".join(f'"{p}"' for p in query.phrases)
        return (
            f"no passage{' of the files searched' if scoped else ''} holds {quoted}"
            + (f" without {excluded}" if excluded else "")
            + "; without the quotes, its words are searched by meaning"
        )
    return f"every passage the query finds holds {excluded}" if excluded else ""
