"""Near-duplicate folding: which documents one hit per document folds together ("the same text in ..."), and
whether they are copies.

A folder is made from corpus/: each Markdown page of corpus/md/howto twice, as .md and as an HTML page of the same
text (headings, paragraphs and code blocks in their tags, a site's navigation and footer around them), each text
file of corpus/txt copied into a backup folder, and 30 notes written from one template (a meeting's number, topic,
version and day change; the rest is the same). A copy's pair is the same page as .md and .html, or a file and its
backup; two template notes are different documents. Queries: runs of 1 to 6 words from 300 chunks drawn at random
(seeded), searched with the defaults (hybrid, the bundled model), each query's chunks folded into its top 10
documents by each rule below; the counts are pairs of documents folded at least once over all queries.

    python benchmarks/near_duplicates.py
"""

from __future__ import annotations

import html
import random
import re
import shutil
import time
from pathlib import Path

from _common import CACHE, HERE, write_section

from searcher import IndexConfig, Searcher, build_index
from searcher.hits import _WORD, NEAR_DUPLICATE, _per_document, _shingles

QUERIES = 300
TOPICS = ["backup", "deploy", "database", "network", "security", "billing"]


def as_html(markdown: str, title: str) -> str:
    """A plain HTML page of a Markdown text: what a static site generator would publish beside it."""
    body, code, paragraph = [], None, []

    def close() -> None:
        if paragraph:
            body.append(f"<p>{html.escape(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in markdown.splitlines():
        if line.startswith("```"):
            close()
            if code is None:
                code = []
            else:
                body.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
                code = None
        elif code is not None:
            code.append(line)
        elif line.startswith("#"):
            close()
            level = min(len(line) - len(line.lstrip("#")), 6)
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif not line.strip():
            close()
        else:
            paragraph.append(line.strip())
    close()
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body><nav>Home | Docs | Blog</nav>"
        + "\n".join(body)
        + "<footer>Copyright 2026</footer></body></html>"
    )


def make_folder(root: Path) -> dict[str, str]:
    """Write the folder; {path: its copy group} (documents of one group are copies of each other)."""
    shutil.rmtree(root, ignore_errors=True)
    group: dict[str, str] = {}
    corpus = HERE.parent / "corpus"
    for page in sorted((corpus / "md" / "howto").glob("*.md")):
        for sub, text in (("md", page.read_text()), ("html", as_html(page.read_text(), page.stem))):
            path = root / sub / f"{page.stem}.{sub}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            group[str(path)] = f"page:{page.stem}"
    for text_file in sorted((corpus / "txt").rglob("*.txt")):
        for sub in ("txt", "backup"):
            path = root / sub / text_file.name
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(text_file, path)
            group[str(path)] = f"copy:{text_file.name}"
    (root / "notes").mkdir(parents=True)
    for i in range(30):
        path = root / "notes" / f"meeting-{i:02d}.md"
        path.write_text(
            f"# Meeting {i}\n\nAttendees: Ana, Bo, Cy.\n\nTopic: {TOPICS[i % len(TOPICS)]}. Decision: ship version "
            f"1.{i} on day {i + 1}.\n\nAction items: follow up next week.\n"
        )
        group[str(path)] = f"note:{i}"
    return group


def word_set(text: str) -> set:
    return set(_WORD.findall(text.lower()))


def folded_pairs(chunk_hits, features, threshold: float) -> set[tuple[str, str]]:
    """The pairs of files a query's chunks fold into one hit of its top 10 documents, by the Searcher's own fold
    (hits._per_document) with `features` and `threshold`."""
    kept = _per_document(chunk_hits, 10, features=features, threshold=threshold)
    return {tuple(sorted((hit.source, other))) for hit in kept for other in hit.duplicates}


def main() -> None:
    work = CACHE / "near-duplicates"
    group = make_folder(work / "docs")
    build_index(work / "docs", work / "index", IndexConfig(), rebuild=True)
    rng = random.Random(0)
    with Searcher(work / "index") as searcher:
        chunks = [record["text"] for record in searcher.index.iter_chunks()]
        queries = []
        for text in rng.sample(chunks, min(QUERIES, len(chunks))):
            words = re.findall(r"[A-Za-z_][\w.]+", text)
            if len(words) >= 8:
                start = rng.randrange(len(words) - 5)
                queries.append(" ".join(words[start : start + rng.choice([1, 2, 4, 6])]))
        per_chunk = searcher.search_batch(queries, 60, per_doc=False)
        searcher.search(queries[0], 10)  # (warm)
        started = time.perf_counter()
        shipped = [searcher.search(query, 10) for query in queries]  # the defaults: one hit per document
        search_ms = (time.perf_counter() - started) / len(queries) * 1000
    copies = {
        tuple(sorted((a, b))) for a in group for b in group if a < b and group[a] == group[b] and "note" not in group[a]
    }
    rows = []
    variants = [("words", word_set, t) for t in (0.6, 0.7, 0.8)] + [
        ("pairs of words", _shingles, t) for t in (0.6, 0.7, 0.8)
    ]
    lists = [list(hits) for hits in per_chunk]
    for name, feature, threshold in variants:
        pairs: set = set()
        started = time.perf_counter()
        for hits in lists:
            pairs |= folded_pairs(hits, feature, threshold)
        ms = (time.perf_counter() - started) / len(lists) * 1000
        true = pairs & copies
        marker = " (shipped)" if feature is _shingles and threshold == NEAR_DUPLICATE else ""
        rows.append(
            f"| {name}, Jaccard >= {threshold}{marker} | {len(pairs)} | {len(true)} | {len(pairs - copies)} "
            f"| {ms:.2f} |"
        )
    # The Searcher's own fold, as a user sees it (Hit.duplicates): the shipped row's rule.
    seen = {tuple(sorted((hit.source, other))) for hits in shipped for hit in hits for other in hit.duplicates}
    body = (
        f"{len(queries)} queries; the folder: {sum(1 for g in group.values() if g.startswith('page')) // 2} pages, "
        f"each as .md and .html, {sum(1 for g in group.values() if g.startswith('copy')) // 2} text files and their "
        f"backups ({len(copies)} pairs of copies), 30 template notes.\n\n"
        "| rule | pairs folded | copies | different documents | ms per query (its 60 chunks folded) |\n"
        "|:--|--:|--:|--:|--:|\n"
        + "\n".join(rows)
        + f"\n\nThe Searcher's own results (one hit per document, `Hit.duplicates`): {len(seen)} pairs folded, "
        f"{len(seen & copies)} of them copies, {len(seen - copies)} different documents; a whole single query "
        f"(hybrid, its text embedded, fold and snippets included) {search_ms:.1f} ms."
    )
    write_section("near-duplicates", "Near-duplicate documents folded into one hit", body)


if __name__ == "__main__":
    main()
