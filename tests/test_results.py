"""Results a person can act on: file lines checked against the raw files, heading paths, markup noise kept out of
the text, the best passage as the snippet, JSON records, and a closed pipe."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_corpus
from fakes import FakeEncoder

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.errors import InvalidInputError
from searcher.snippets import passage, query_terms, snippet

MD = """---
title: Node errors
---

# Errors

Intro text about errors in general.

<!-- an editor's note that is not text -->
<a id="err-require-esm"></a>
## ERR_REQUIRE_ESM

An attempt was made to require() an ES module. See [the docs](https://nodejs.org/api/esm.html "ESM").

```
# not a heading inside a fence
```

### Details

Use import() instead of require() for ES modules.
"""

RST = """Reading files
=============

Use open() to read a file.

Line by line
------------

Iterate over the file object to read it line by line.
"""

HTML = """<html><head><title>Server errors</title></head>
<body>
<nav>Home</nav>
<main>
<h1>Errors</h1>
<p>General words about errors that servers report, how to read them, and where the details of each error live
in this page, so that the next section starts a chunk of its own.</p>
<h2 id="eaddrinuse">EADDRINUSE</h2>
<p>The port is already in use
by another process.</p>
</main>
</body></html>
"""


@pytest.fixture
def located(tmp_path):
    docs = write_corpus(
        tmp_path / "docs",
        {
            "errors.md": MD,
            "files.rst": RST,
            "server.html": HTML,
            "notes.txt": "first line\n\nsecond paragraph\nthird line here\n",
        },
    )
    fake = FakeEncoder()
    build_index(
        docs, tmp_path / "idx", IndexConfig(model=fake.info.name, chunk_tokens=20, overlap_tokens=0), encoder=fake
    )
    return docs, {r["text"]: r for r in open_index(tmp_path / "idx").iter_chunks()}, tmp_path / "idx"


def raw_lines(path: Path) -> list[str]:
    return path.read_text().split("\n")


def test_lines_point_at_the_raw_file_for_every_text_format(located):
    docs, records, _ = located
    for r in records.values():
        path = Path(r["source"])
        lines = raw_lines(path)
        assert 1 <= r["line"] <= r["end_line"] <= len(lines), r
        if path.suffix in (".md", ".rst", ".txt", ".html"):
            # the chunk's first and last words are on the lines it names
            words = r["text"].split()
            assert words[0] in lines[r["line"] - 1], (r["line"], words[0], lines[r["line"] - 1])
            assert words[-1] in lines[r["end_line"] - 1], (r["end_line"], words[-1])
    by_file = {}
    for r in records.values():
        by_file.setdefault(Path(r["source"]).name, []).append(r)
    esm = next(r for r in by_file["errors.md"] if "require() an ES module" in r["text"])
    assert raw_lines(docs / "errors.md")[esm["line"] - 1].startswith(("## ERR_REQUIRE_ESM", "An attempt"))
    port = next(r for r in by_file["server.html"] if "already in use" in r["text"])
    assert raw_lines(docs / "server.html")[port["line"] - 1] in (
        '<h2 id="eaddrinuse">EADDRINUSE</h2>',
        "<p>The port is already in use",
    )
    assert raw_lines(docs / "server.html")[port["end_line"] - 1] == "by another process.</p>"
    assert port["anchor"] == "eaddrinuse"


def test_chunks_carry_their_heading_path(located):
    _, records, _ = located
    details = next(r for r in records.values() if "Use import() instead" in r["text"])
    assert details["heading"] == "Errors > ERR_REQUIRE_ESM > Details"
    line_by_line = next(r for r in records.values() if "Iterate over the file" in r["text"])
    assert line_by_line["heading"] == "Reading files > Line by line"
    port = next(r for r in records.values() if "already in use" in r["text"])
    assert port["heading"] == "Errors > EADDRINUSE"
    assert not any("not a heading" in r["heading"] for r in records.values()), "fenced code is not a heading"


def test_markup_noise_never_reaches_chunk_text(located):
    _, records, _ = located
    text = " ".join(records)
    assert "<!--" not in text and "editor's note" not in text and "<a id" not in text
    assert "https://nodejs.org" not in text and "the docs" in text, "a link keeps its words, not its target"


def test_the_snippet_is_the_passage_that_matches(tmp_path):
    text = (
        "--add-file=FILE add the file. --backup make a backup. " * 8
        + "--exclude=PATTERN exclude files matching PATTERN, a directory too. "
        + "--verbose lists files. " * 8
    )
    from searcher.lexical import analyzer

    analyze = analyzer("english").analyze
    shown, marks = snippet(text, query_terms("exclude a directory", analyze), analyze)
    assert "--exclude=PATTERN" in shown and len(shown) <= 240
    assert {shown[a:b].lower() for a, b in marks} >= {"exclude", "directory"}
    a, b = passage("No query word here. Nothing at all.", {"zebra"}, analyze)
    assert a == 0, "no match: the chunk's head"


def test_hits_show_lines_headings_and_the_matching_passage(located, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    _, _, idx = located
    hits = Searcher(idx, encoder=FakeEncoder()).search("import instead of require", 3)
    top = hits[0]
    assert top.line > 0 and top.heading.endswith("Details") and "import()" in top.snippet
    out = CliRunner().invoke(cli, ["query", "import instead of require", "--index", str(idx), "-k", "1"]).stdout
    assert f"errors.md:{top.line}" in out and "ERR_REQUIRE_ESM > Details" in out


def test_a_closed_pipe_ends_quietly(located, tmp_path):
    _, _, idx = located
    script = tmp_path / "run.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from fakes import FakeEncoder\nimport searcher.search\n"
        "searcher.search.load_encoder = lambda name: FakeEncoder()\n"
        "from searcher.cli import cli\ncli()\n"
    )
    # 400 queries: far more output than a pipe buffers, so the writer meets the closed pipe
    done = subprocess.run(
        f"set -o pipefail; {sys.executable} {script} query - --index {idx} --json -k 50 | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
        input="errors in the server\n" * 400,
    )
    assert done.stdout.startswith('{"query"')
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    """1,000 files of 3+ chunks each; one file in a thousand is 'needle.md'."""
    root = tmp_path_factory.mktemp("many")
    files = {
        f"hay/{i:04d}.txt": "\n\n".join(
            f"Paragraph {j} of file {i} talks about moons, rivers and maps." for j in range(4)
        )
        for i in range(999)
    }
    files["deep/needle.md"] = "\n\n".join(
        f"# Part {j}\n\nThe needle talks about moons and rivers too, part {j}." for j in range(4)
    )
    docs = write_corpus(root / "docs", files)
    fake = FakeEncoder()
    build_index(docs, root / "idx", IndexConfig(model=fake.info.name, chunk_tokens=20, overlap_tokens=0), encoder=fake)
    return root / "idx"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical", "full", "coarse"])
def test_a_filter_keeping_a_thousandth_still_returns_k_hits(many_files, mode):
    from searcher import Where

    s = Searcher(many_files, encoder=FakeEncoder())
    for where in (Where(paths=("deep/*",)), Where(types=("md",)), Where(paths=("*needle*",))):
        hits = s.search("moons and rivers", 3, mode=mode, where=where, per_doc=False)
        assert len(hits) == 3 and all(h.source.endswith("needle.md") for h in hits), (mode, where)
    assert len(s.search("moons", 3, mode=mode, where=Where(types=("pdf",)))) == 0


def test_files_are_kept_by_when_they_last_changed_in_the_library_and_the_cli(tmp_path, use_fake_encoder):
    import os
    import time

    from click.testing import CliRunner

    from searcher import Where
    from searcher.cli import cli
    from searcher.filters import moment

    docs = write_corpus(tmp_path / "docs", {"old.md": "Otters hold hands.", "new.md": "Otters crack shells."})
    long_ago = time.time() - 40 * 86400
    os.utime(docs / "old.md", (long_ago, long_ago))
    idx = tmp_path / "idx"
    fake = FakeEncoder()
    build_index(docs, idx, IndexConfig(model=fake.info.name), encoder=fake)
    s = Searcher(idx, encoder=fake)

    def names(where):
        return sorted(Path(h.source).name for h in s.search("otters", 5, mode="lexical", where=where))

    assert names(Where.of(changed_within="7d")) == names(Where(changed_after=moment("1 week"))) == ["new.md"]
    assert names(Where.of(changed_before="2 weeks")) == ["old.md"]
    assert names(Where.of(changed_within="2000-01-01")) == ["new.md", "old.md"]
    assert names(Where.of(changed_within="60d", changed_before="30d")) == ["old.md"]
    run = CliRunner().invoke
    listed = run(cli, ["query", "otters", "--index", str(idx), "-l", "--min-score", "0", "--changed-within", "7d"])
    assert listed.exit_code == 0 and listed.stdout.split() == [str(docs / "new.md")]
    none = run(cli, ["query", "otters", "--index", str(idx), "--changed-before", "2000-01-01"])
    assert none.exit_code == 1 and "no file of the index matches --changed-before 2000-01-01" in none.stderr
    bad = run(cli, ["query", "otters", "--index", str(idx), "--changed-within", "lately"])
    assert bad.exit_code == 2 and "cannot read 'lately' as a time" in bad.output


def test_a_time_filter_over_arrays_keeps_what_the_file_table_keeps():
    import random

    from searcher import Where
    from searcher.filters import FileTimes, among
    from searcher.manifest import FileEntry

    rng = random.Random(0)
    files, start = [], 0
    for i in range(500):
        n = rng.randint(0, 4)  # a file with no chunk too
        files.append(FileEntry(f"/d/{i}.md", "x", 1, rng.randint(0, 10**6) * 10**9, 1, start, start + n))
        start += n + rng.randint(0, 2)  # ids of removed chunks between files
    times = FileTimes.of(files[::-1])  # (the table's order is not the ids')
    live = np.array(sorted(rng.sample(range(start), start // 2)), np.int64)
    for after, before in ((None, 5e5), (2.5e5, None), (1e5, 9e5), (7e5, 2e5), (None, None)):
        where = Where(changed_after=after, changed_before=before)
        expected = sorted(i for e in files if where.keeps(e) for i in range(e.id_start, e.id_end))
        assert times.ids(where).tolist() == expected, (after, before)
        assert among(times.ids(where), live).tolist() == [i for i in expected if i in set(live.tolist())]


def test_a_time_is_a_span_back_from_now_or_a_date():
    from datetime import datetime

    from searcher.errors import InvalidInputError
    from searcher.filters import moment

    now = 1_800_000_000.0
    for text, back in (("2d", 2 * 86400), ("3 weeks", 21 * 86400), ("1d12h", 36 * 3600), ("90min", 5400),
                       ("5m", 300), ("1.5h", 5400), ("2mo", 60 * 86400), ("1 year", 365 * 86400)):  # fmt: skip
        assert moment(text, now=now) == now - back, text
    assert moment("2026-11-01") == datetime(2026, 11, 1).timestamp()
    assert moment("2026-11-01T14:30:00+00:00") == 1793543400.0
    for text in ("yesterday", "10", "2 fortnights", "3d ago"):
        with pytest.raises(InvalidInputError, match="cannot read .* as a time"):
            moment(text, now=now)


def test_the_filtered_dense_ranking_equals_exact_search_over_the_kept_files(many_files):
    from searcher import Where

    s = Searcher(many_files, encoder=FakeEncoder())
    where = Where(paths=("hay/000*",))  # 10 files
    index = s.index
    kept = [r for r in index.iter_chunks() if "/hay/000" in r["source"]]
    x = FakeEncoder().encode_queries(["paragraph 2 rivers"])[0]
    rows = index.rows_of(np.array([r["id"] for r in kept]))
    full = np.asarray(index.full[rows]) @ (x @ index.rotation if index.rotation is not None else x)
    expected = [kept[i]["id"] for i in np.lexsort(([r["id"] for r in kept], -full))[:5]]
    got = [h.id for h in s.search("paragraph 2 rivers", 5, mode="full", where=where, per_doc=False)]
    assert got == expected


def test_per_document_folds_a_documents_chunks_and_min_score_drops_weak_hits(many_files, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    s = Searcher(many_files, encoder=FakeEncoder())
    chunks = s.search("needle part", 10, per_doc=False)
    docs = s.search("needle part", 10, per_doc=True)
    assert len({h.doc_id for h in docs}) == len(docs), "one hit per document"
    needle = next(h for h in docs if h.source.endswith("needle.md"))
    assert len(needle.more) >= 1 and all(m.doc_id == needle.doc_id for m in needle.more)
    assert needle.score >= max(m.score for m in needle.more)
    assert sum(1 for h in chunks if h.source.endswith("needle.md")) > 1
    weak = min(h.score for h in chunks)
    assert all(h.score >= weak + 1e-6 for h in s.search("needle part", 10, per_doc=False, min_score=weak + 1e-6))
    above = f"{max(h.score for h in chunks) + 1e-3:.4f}"
    result = CliRunner().invoke(cli, ["query", "needle part", "--index", str(many_files), "--min-score", above])
    assert result.exit_code == 1 and f"nothing scored {float(above)} or more" in result.stderr
    for bad in ("2", "-0.5", "nan"):  # a score is a probability: a bar off its scale is a mistake, said as one
        result = CliRunner().invoke(cli, ["query", "needle part", "--index", str(many_files), "--min-score", bad])
        assert result.exit_code == 2 and "min_score must be between 0 and 1" in result.stderr, bad
    with pytest.raises(InvalidInputError, match="fusion_weight must be between 0 and 1"):
        s.search("needle part", fusion_weight=1.5)
    out = CliRunner().invoke(cli, ["query", "needle part", "--index", str(many_files), "--json", "--type", "md"])
    records = [__import__("json").loads(line) for line in out.stdout.splitlines()]
    assert len(records) == 1 and records[0]["more"] and records[0]["source"].endswith("needle.md")


def _read_folder(docs: Path, tmp_path: Path, *, indexed: int, skipped=(), chunk_tokens: int | None = None) -> Searcher:
    """A Searcher over `docs` indexed with the fake encoder, once `indexed` files were read and each of `skipped`
    ((file name, words of its reason), ...) was left out, saying why."""
    fake = FakeEncoder()
    chunking = {} if chunk_tokens is None else {"chunk_tokens": chunk_tokens, "overlap_tokens": 0}
    report = build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name, **chunking), encoder=fake)
    assert report.indexed == indexed and report.skipped == len(skipped), report
    for name, reason in skipped:
        assert any(name in w and reason in w for w in report.warnings), (name, report.warnings)
    return Searcher(tmp_path / "idx", encoder=FakeEncoder())


def test_pdf_pages_and_docx_headings_are_indexed_and_located(tmp_path):
    from formats_fixtures import write_docx, write_pdf

    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(
        docs / "manual.pdf",
        [
            ["Installing the widget", "Unpack the box first."],
            ["Calibrating the flux capacitor", "Turn the dial to 88."],
        ],
        title="Widget manual",
    )
    write_docx(
        docs / "report.docx",
        [
            ("Heading 1", "Quarterly report"),
            ("", "Sales grew in the north."),
            ("Heading 2", "Risks"),
            ("", "Penguins may migrate south."),
            ("table", "cell"),
        ],
    )
    write_pdf(docs / "scan.pdf", [[]])  # a page with no text layer
    cells = [
        {"cell_type": "markdown", "source": "# Lab notebook\n\nSetup of the rig."},
        {"cell_type": "code", "source": "rig = Rig()\nrig.start()", "outputs": []},
        {"cell_type": "markdown", "source": "## Results\n\nThe otters returned at dusk."},
    ]
    (docs / "lab.ipynb").write_text(__import__("json").dumps({"nbformat": 4, "metadata": {}, "cells": cells}))
    s = _read_folder(docs, tmp_path, indexed=3, skipped=[("scan.pdf", "no text layer")], chunk_tokens=16)
    flux = s.search("flux capacitor dial", 1, mode="lexical")[0]
    assert flux.source.endswith("manual.pdf") and flux.page == 2 and flux.title == "Widget manual"
    penguins = s.search("penguins migrate", 1, mode="lexical")[0]
    assert penguins.source.endswith("report.docx") and penguins.heading == "Quarterly report > Risks"
    otters = s.search("otters returned at dusk", 1, mode="lexical")[0]
    assert otters.source.endswith("lab.ipynb") and otters.heading == "Lab notebook > Results" and otters.line == 10
    from searcher.documents import read_lines

    for hit in (flux, penguins, otters):  # a location /document and get_document can use: the extracted text's lines
        assert hit.line > 0
        shown = read_lines(s.index, hit.source, hit.line, hit.end_line).text
        assert " ".join(shown.split("\n")[0].split()) in " ".join(hit.snippet.split()), (hit.line, shown)
    assert s.search("cell 3", 1, mode="lexical")[0].source.endswith("report.docx"), "table cells are text too"


def test_slides_opendocument_and_epub_files_are_indexed_and_located(tmp_path, monkeypatch):
    from formats_fixtures import write_epub, write_odp, write_odt, write_pptx

    from searcher.documents import read_lines

    docs = tmp_path / "docs"
    docs.mkdir()
    write_pptx(
        docs / "deck.pptx",
        [
            ("Roadmap", ["Ship the beta in spring", "group:grouped caption about narwhals"], ""),
            ("Budget", ["Hire two engineers", "table:travel,hardware,licences"], "Ask about the gerbil fund."),
            ("", ["A slide with no title about walruses"], ""),
        ],
        title="Planning deck",
    )
    write_odt(
        docs / "minutes.odt",
        [
            ("h1", "Board minutes"),
            ("p", "The meeting opened at noon."),
            ("h2", "Decisions"),
            ("li", "Buy a larger kettle for the lab."),
            ("table", "owner,date,status"),
        ],
        title="Minutes",
    )
    write_odp(
        docs / "talk.odp",
        [
            ("Why otters", ["They use tools", "They hold hands asleep"], "Pause for the photo."),
            ("", ["An untitled slide about kelp forests"], ""),
        ],
    )
    write_epub(
        docs / "novel.epub",
        [
            ("one.xhtml", "<h1>The Harbour</h1><p>The lighthouse keeper fed the gulls at dawn.</p>"),
            ("two.xhtml", "<h1>The Storm</h1><h2>Night</h2><p>Waves broke over the seawall.</p>"),
        ],
        title="A Coastal Year",
    )
    write_epub(docs / "locked.epub", [("one.xhtml", "<p>secret</p>")], encrypted=True)
    (docs / "broken.pptx").write_bytes(b"PK\x03\x04 not really a zip")
    (docs / "broken.odt").write_text("plain text, not a package")
    unreadable = [
        ("locked.epub", "encrypted (DRM)"),
        ("broken.pptx", "not a readable .pptx file"),
        ("broken.odt", "not a readable .odt file"),
    ]
    s = _read_folder(docs, tmp_path, indexed=4, skipped=unreadable, chunk_tokens=16)
    engineers = s.search("hire engineers", 1, mode="lexical")[0]
    assert engineers.source.endswith("deck.pptx") and engineers.page == 2 and engineers.heading == "Budget"
    assert engineers.title == "Planning deck"
    from click.testing import CliRunner

    from searcher.cli import cli

    printed = CliRunner().invoke(
        cli, ["query", "hire engineers", "--index", str(tmp_path / "idx"), "--mode", "lexical"]
    )
    assert printed.exit_code == 0 and "deck.pptx:" in printed.stdout and "(slide 2)" in printed.stdout, printed.output
    notes = s.search("gerbil fund", 1, mode="lexical")[0]
    assert notes.source.endswith("deck.pptx") and notes.page == 2, "speaker notes are the slide's text"
    assert s.search("hardware licences", 1, mode="lexical")[0].page == 2, "a table's cells are text"
    assert s.search("narwhals caption", 1, mode="lexical")[0].page == 1, "a grouped shape's text is the slide's"
    walrus = s.search("walruses", 1, mode="lexical")[0]
    assert walrus.page == 3 and walrus.heading == "", "a slide without a title: its page, no heading"
    kettle = s.search("larger kettle", 1, mode="lexical")[0]
    assert kettle.source.endswith("minutes.odt") and kettle.heading == "Board minutes > Decisions"
    assert kettle.title == "Minutes"
    assert s.search("owner status", 1, mode="lexical")[0].source.endswith("minutes.odt"), "table cells are text too"
    tools = s.search("otters use tools", 1, mode="lexical")[0]
    assert tools.source.endswith("talk.odp") and tools.page == 1 and tools.heading == "Why otters"
    assert tools.title == "Why otters", "no metadata title: the first slide's"
    assert s.search("photo pause", 1, mode="lexical")[0].page == 1, "speaker notes are the slide's text"
    kelp = s.search("kelp forests", 1, mode="lexical")[0]
    assert kelp.page == 2 and kelp.heading == ""
    waves = s.search("waves seawall", 1, mode="lexical")[0]
    assert waves.source.endswith("novel.epub") and waves.heading == "The Storm > Night", "chapters in spine order"
    assert waves.title == "A Coastal Year"
    gulls = s.search("lighthouse keeper gulls", 1, mode="lexical")[0]
    assert gulls.heading == "The Harbour" and gulls.line < waves.line
    import searcher.formats.document
    import searcher.formats.opendocument as odt
    import searcher.formats.pptx
    from searcher.ingest import UnreadableFileError, parse_file

    def broken_library(data):  # a reader library's own bug on some malformed file
        raise KeyError("rId7")

    monkeypatch.setattr(searcher.formats.pptx, "read_pptx", broken_library)
    with pytest.raises(UnreadableFileError, match=r"not a readable \.pptx file \(KeyError in its reader\)"):
        parse_file(docs / "deck.pptx", (docs / "deck.pptx").read_bytes(), doc_id="deck.pptx")
    monkeypatch.undo()
    monkeypatch.setattr(
        searcher.formats.document, "MAX_PART_BYTES", 100
    )  # a content.xml unpacking past it (a zip bomb) is refused
    with pytest.raises(UnreadableFileError, match="its content.xml unpacks past"):
        odt.read_odt((docs / "minutes.odt").read_bytes())
    monkeypatch.undo()
    for hit in (engineers, notes, kettle, tools, waves):  # lines of the extracted text, as show and /document read them
        shown = read_lines(s.index, hit.source, hit.line, hit.end_line).text
        assert " ".join(shown.split("\n")[0].split()) in " ".join(hit.snippet.split()), (hit.line, shown)


def test_spreadsheets_rows_carry_their_column_names_and_row_numbers(tmp_path):
    import datetime as dt

    from formats_fixtures import write_ods, write_xlsx

    from searcher.documents import read_lines

    docs = tmp_path / "docs"
    docs.mkdir()
    staff = [
        ["Name", "Team", "Started", "Desk"],
        ["Ada", "Compilers", dt.datetime(2021, 3, 1), 12.0],
        [None, None, None, None],
        ["Grace", "Navy liaison", dt.datetime(2019, 7, 15), 7.5],
    ]
    write_xlsx(docs / "staff.xlsx", {"People": staff, "Notes": [["Parking is behind the observatory"]]}, title="HR")
    write_ods(docs / "stock.ods", {"Pantry": [["Item", "Count"], ["oat milk", 4], ["saffron", 2]]})
    (docs / "broken.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    s = _read_folder(docs, tmp_path, indexed=2, skipped=[("broken.xlsx", "not a readable .xlsx file")], chunk_tokens=64)
    grace = s.search("navy liaison", 1, mode="lexical", per_doc=False)[0]
    assert grace.source.endswith("staff.xlsx") and grace.heading == "People" and grace.title == "HR"
    shown = read_lines(s.index, grace.source, grace.line, grace.line).text
    assert shown == "Row 4: Name: Grace | Team: Navy liaison | Started: 2019-07-15 | Desk: 7.5", shown
    ada = read_lines(s.index, grace.source, grace.line - 1, grace.line - 1).text
    assert ada == "Row 2: Name: Ada | Team: Compilers | Started: 2021-03-01 | Desk: 12", "empty row 3 left out"
    parking = s.search("parking observatory", 1, mode="lexical")[0]
    assert parking.heading == "Notes", "a sheet without a header row: its cells as they are"
    saffron = s.search("saffron", 1, mode="lexical")[0]
    assert saffron.source.endswith("stock.ods") and saffron.heading == "Pantry"
    assert "Row 3: Item: saffron | Count: 2" in read_lines(s.index, saffron.source, 1, 10).text
    assert len(read_lines(s.index, saffron.source, 1, 100).text.splitlines()) == 4, "padding rows not read"


def test_delimited_text_names_each_value_by_its_column_on_the_files_own_line(tmp_path):
    from searcher.documents import read_lines

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "staff.csv").write_text(
        'Name,Team,Started\nAda,Compilers,2021-03-01\n\n"Grace","Navy\nliaison",2019-07-15\nLin,Ops,2020-01-01\n'
    )
    (docs / "ships.csv").write_text(
        "Ship,Note,Port\n"
        + "".join(f"Vessel {i},Refitted in spring. Crew of {i}. Sails north,Bergen\n" for i in range(8))
        + "Kon-Tiki,Balsa raft. Crossed the Pacific in 1947. Now a museum piece,Oslo\n"
    )
    (docs / "prices.csv").write_text("item;price;unit\noat milk;1,20;EUR\nsaffron;9,90;EUR\n")  # a European CSV
    (docs / "moons.tsv").write_text("planet\tmoon\nSaturn\tTitan\nJupiter\tEuropa\n")
    (docs / "fruit.csv").write_text("apple,red,fruit\nbanana,yellow,fruit\n")  # no header row: its text as it is
    (docs / "links.csv").write_text("https://a.example,Alpha page\nhttps://b.example,Beta page\n")  # nor here
    s = _read_folder(docs, tmp_path, indexed=6, chunk_tokens=64)

    def line(source: str, n: int) -> str:
        return read_lines(s.index, str(docs / source), n, n).text

    assert line("staff.csv", 1) == "Name | Team | Started"
    assert line("staff.csv", 2) == "Name: Ada | Team: Compilers | Started: 2021-03-01"
    # Grace's record starts on line 4 of the file and its quoted team runs onto line 5, left empty: Lin stays on 6
    assert line("staff.csv", 4) == "Name: Grace | Team: Navy liaison | Started: 2019-07-15"
    assert line("staff.csv", 5) == "" and line("staff.csv", 6).startswith("Name: Lin")
    grace = s.search("navy liaison", 1, mode="lexical", per_doc=False)[0]
    assert grace.line == 4
    records = [line for line in grace.snippet.split("\n") if line]  # a snippet of whole records, never half of one
    assert "Name: Grace | Team: Navy liaison | Started: 2019-07-15" in records, grace.snippet
    assert all(r.startswith("Name: ") or r == "Name | Team | Started" for r in records), grace.snippet
    raft = s.search("pacific balsa", 1, mode="lexical", per_doc=False)[0]
    assert "Ship: Kon-Tiki | Note: Balsa raft. Crossed the Pacific in 1947. Now a museum piece | Port: Oslo" in (
        raft.snippet.split("\n")
    ), raft.snippet
    assert line("prices.csv", 3) == "item: saffron | price: 9,90 | unit: EUR"
    assert line("moons.tsv", 2) == "planet: Saturn | moon: Titan"
    assert line("fruit.csv", 2) == "banana,yellow,fruit"
    assert line("links.csv", 2) == "https://b.example,Beta page", "a web address is no column's name"


def test_email_messages_are_read_by_subject_headers_and_body(tmp_path):
    from email.message import EmailMessage

    from searcher.documents import read_lines

    docs = tmp_path / "mail"
    docs.mkdir()
    plain = EmailMessage()
    plain["From"], plain["To"], plain["Subject"] = "Ada <ada@example.org>", "team@example.org", "Quarterly numbers"
    plain["Date"] = "Mon, 07 Dec 2026 09:30:00 +0000"
    plain.set_content("The warehouse in Tromsø doubled its output.\nSee the attached report.")
    plain.add_alternative("<p>The warehouse in <b>Tromsø</b> doubled its output.</p>", subtype="html")
    plain.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="q3-report.pdf")
    (docs / "numbers.eml").write_bytes(bytes(plain))
    html = EmailMessage()
    html["From"], html["Subject"] = "Grace <grace@example.org>", "Réunion: café à 10h"  # encoded on the wire
    html.set_content(
        "<html><body><h1>Agenda</h1><p>Discuss the compiler's nanosecond wire.</p></body></html>",
        subtype="html",
        cte="quoted-printable",
    )
    (docs / "agenda.eml").write_bytes(bytes(html))
    (docs / "notes.eml").write_text("just some text, no headers\n")
    s = _read_folder(docs, tmp_path, indexed=2, skipped=[("notes.eml", "not an e-mail message")])
    tromso = s.search("warehouse doubled output", 1, mode="lexical")[0]
    assert tromso.source.endswith("numbers.eml") and tromso.title == "Quarterly numbers"
    text = read_lines(s.index, tromso.source, 1, 20).text
    assert text.startswith("The warehouse in Tromsø doubled its output."), "what it says first"
    assert "\n\nFrom: Ada <ada@example.org>\nTo: team@example.org\nDate: Mon, 07 Dec 2026" in text
    assert "Tromsø doubled" in text and "<b>" not in text, "the plain part, not the HTML one"
    assert text.endswith("Attachments: q3-report.pdf"), "attachments by name"
    wire = s.search("nanosecond wire", 1, mode="lexical")[0]
    assert wire.source.endswith("agenda.eml") and wire.title == "Réunion: café à 10h", "subject decoded"
    assert "Discuss the compiler's nanosecond wire." in read_lines(s.index, wire.source, 1, 20).text
    assert s.search("ada@example.org", 1, mode="lexical")[0].source.endswith("numbers.eml"), "senders are searchable"


def test_mailboxes_are_read_a_message_a_document_each_hit_at_its_line_in_the_file(tmp_path):
    import mailbox
    from email.message import EmailMessage

    docs = tmp_path / "mail"
    (docs / "Export.mbox").mkdir(parents=True)  # Apple Mail exports a folder holding a file named mbox

    def message(sender: str, subject: str, body: str, html: bool = False) -> EmailMessage:
        m = EmailMessage()
        m["From"], m["Subject"], m["Date"] = sender, subject, "Tue, 08 Dec 2026 09:00:00 +0000"
        m.set_content(body, subtype="html" if html else "plain")
        return m

    box = mailbox.mbox(str(docs / "archive.mbox"))  # the standard library writes the file as mail programs do
    box.add(message("ada@example.org", "Boiler service", "The boiler in hall B needs a new valve."))
    box.add(message("grace@example.org", "Lunch", "From here on, lunch is at noon.\nBring the kettle."))
    box.add(message("lin@example.org", "Rota", "<p>The <b>night rota</b> changes on Monday.</p>", html=True))
    box.close()
    inbox = mailbox.mbox(str(docs / "Export.mbox" / "mbox"))  # no suffix: known by its first line
    inbox.add(message("ken@example.org", "Telescope", "The observatory dome sticks in the cold."))
    inbox.close()
    (docs / "notes.mbox").write_text("not a mailbox\n")
    s = _read_folder(docs, tmp_path, indexed=2, skipped=[("notes.mbox", "not an mbox mailbox")])
    lines = (docs / "archive.mbox").read_text().split("\n")
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith("From ")]  # each message's From line
    for query, subject, shown in (
        ("boiler valve", "Boiler service", "The boiler in hall B needs a new valve."),
        ("kettle noon", "Lunch", ">From here on, lunch is at noon."),  # as the file holds it
        ("night rota", "Rota", None),  # an HTML body's text is in no line as written: the body's first line
    ):
        hit = s.search(query, 1, mode="lexical", per_doc=False)[0]
        assert hit.title == subject and hit.source.endswith("archive.mbox"), (query, hit)
        if shown:
            assert lines[hit.line - 1] == shown, (query, hit.line, lines[hit.line - 1])
        else:
            assert starts[2] < hit.line < len(lines) and lines[hit.line - 2] == "", (hit.line, lines[starts[2] :])
    lunch = s.search("kettle noon", 1, mode="lexical")[0]
    assert "From here on, lunch is at noon." in lunch.text, "the body's escaped >From line read as written"
    assert "<b>" not in s.search("night rota", 1, mode="lexical")[0].text
    dome = s.search("observatory dome", 1, mode="lexical")[0]
    assert dome.title == "Telescope" and dome.source.endswith("mbox")
    assert len({h.doc_id for h in s.search("example.org", 10, mode="lexical")}) == 4, "a message, a document"


def test_code_and_extensionless_text_are_read_and_ignore_files_respected(tmp_path, use_fake_encoder):
    from click.testing import CliRunner

    from searcher.cli import cli

    docs = write_corpus(
        tmp_path / "repo",
        {
            "src/server.py": "def listen(port):\n    raise OSError('EADDRINUSE')\n",
            "README": "This project serves files over HTTP.\n",
            "node_modules/dep/index.js": "module.exports = 'vendored';\n",
            "build/out.txt": "generated output\n",
            "notes/keep.md": "# Keep\n\nThis note stays.\n",
            "notes/draft.md": "# Draft\n\nThis note is excluded by the user.\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
            "old/minutes.doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # an OLE2 file, as Word 97-2003 wrote
            "notes/~$keep.docx": b"\x04ada   ",  # Office's owner file beside an open document: never read
            ".gitignore": "node_modules/\nbuild/\n",
        },
    )
    (docs / "notes" / ".searcherignore").write_text("")  # present but empty: ignores nothing
    result = CliRunner().invoke(
        cli,
        [
            "index",
            str(docs),
            "--index",
            str(tmp_path / "idx"),
            "--exclude",
            "draft.md",
            "--chunk-tokens",
            "32",
            "--overlap-tokens",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 indexed" in result.stdout and "2 skipped" in result.stdout
    assert "logo.png (not a type searcher reads)" in result.stderr, "skipped files are named"
    assert "minutes.doc (Word 97-2003 (.doc): save it as .docx to index it)" in result.stderr, "with the way out"
    alone = CliRunner().invoke(cli, ["index", str(docs / "old" / "minutes.doc"), "--index", str(tmp_path / "other")])
    assert alone.exit_code == 2 and "minutes.doc is Word 97-2003 (.doc): save it as .docx" in alone.stderr
    sources = {Path(r["source"]).name for r in open_index(tmp_path / "idx").iter_chunks()}
    assert sources == {"server.py", "README", "keep.md"}
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    hit = s.search("EADDRINUSE", 1, mode="lexical")[0]
    assert hit.source.endswith("server.py") and hit.line == 2 and hit.end_line == 2, "the passage's line"
    assert hit.heading == "listen", "code hits name their enclosing definition"
    again = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "idx"), "-q"])
    assert "0 indexed, 3 unchanged" in again.stdout, "the --exclude setting is kept by the index"


def test_near_duplicate_files_are_one_hit_per_document(tmp_path, fake, fake_config):
    page = (
        "Errors\n\nERR_REQUIRE_ESM is thrown when require() loads an ES module. Use import() instead, "
        "or set type to commonjs in package.json."
    )
    docs = write_corpus(
        tmp_path / "docs",
        {
            "errors.md": "# " + page,
            "errors.html": f"<html><body><h1>Errors</h1><p>{page.split(chr(10))[-1]}</p></body></html>",
            "other.md": "# Modules\n\nAn ES module is loaded with import; require() loads CommonJS modules.",
            # notes from one template share most words but not their order: two documents, not copies
            **{
                f"meeting-{i}.md": f"# Meeting {i}\n\nAttendees: Ana, Bo. Topic: the ES module require error. "
                f"Decision: ship version 1.{i} on day {i + 1}. Action items: follow up next week."
                for i in (1, 2)
            },
            "data.jsonl": '{"_id": "a", "text": "require loads an ES module"}\n'
            '{"_id": "b", "text": "require loads an ES module"}\n',
        },
    )
    build_index(docs, tmp_path / "idx", fake_config, encoder=fake)
    s = Searcher(tmp_path / "idx", encoder=fake)
    chunks = s.search("require ES module error", 10, per_doc=False)
    assert {Path(h.source).name for h in chunks} >= {"errors.md", "errors.html"}
    hits = s.search("require ES module error", 10, per_doc=True)
    names = [Path(h.source).name for h in hits]
    first = next(h for h in hits if Path(h.source).name in ("errors.md", "errors.html"))
    assert [Path(p).name for p in first.duplicates] == [
        ({"errors.md", "errors.html"} - {Path(first.source).name}).pop()
    ]
    assert sorted(names) == [
        "data.jsonl",
        "data.jsonl",  # records stay apart
        Path(first.source).name,
        "meeting-1.md",
        "meeting-2.md",
        "other.md",
    ]
    assert all(not h.duplicates for h in hits if h is not first)


def test_a_hit_names_the_line_and_section_of_its_passage_not_of_its_chunk(tmp_path):
    from conftest import write_corpus

    from searcher import IndexConfig, build_index

    errors = (
        "# Errors\n\n## ERR_REQUIRE_CYCLE_MODULE\n\nA module cycle was found while loading.\n\n"
        "## ERR_REQUIRE_ESM\n\nAn attempt was made to require() an ES module.\n\n"
        "## ERR_SCRIPT_FAILED\n\nThe script could not run.\n"
    )
    html = (
        '<html><body><main><h1 id="top">Guide</h1><p>Intro words here.</p>\n'
        '<h2 id="install">Install</h2>\n<p>Run the installer twice.</p>\n'
        '<h2 id="usage">Usage</h2>\n<p>Call the frobnicate command.</p></main></body></html>'
    )
    docs = write_corpus(tmp_path / "docs", {"errors.md": errors, "guide.html": html})
    fake = FakeEncoder(max_seq_length=512)  # one chunk per file: the passage is inside it
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
    assert len(list(open_index(tmp_path / "idx").iter_chunks())) == 2
    s = Searcher(tmp_path / "idx", encoder=fake)
    hit = s.search("require an ES module", 1, mode="lexical")[0]
    lines = errors.split("\n")
    assert "require() an ES module" in lines[hit.line - 1] and hit.heading == "Errors > ERR_REQUIRE_ESM", (
        hit.line,
        hit.heading,
    )
    page = s.search("frobnicate", 1, mode="lexical")[0]
    line = next(i for i, text in enumerate(html.split("\n"), start=1) if "frobnicate" in text)
    assert page.heading == "Guide > Usage" and page.anchor == "usage" and page.line == line, (page.heading, page.line)


def test_snippets_do_not_cut_names_at_their_dots_and_are_never_mere_fragments():
    from searcher.lexical import analyzer
    from searcher.snippets import MIN_PASSAGE, passage, snippet

    analyze = analyzer("english").analyze
    text = "The path.join() method joins all given path segments together. Node.js normalizes the result."
    got, _ = snippet(text, {"join"}, analyze)
    assert got.startswith("The path.join() method"), got
    text = (
        "Intro paragraph about the library and what it offers to its users.\n\nee.\n\n"
        "The events module emits named events to listeners attached to it."
    )
    a, b = passage(text, {"ee"}, analyze)
    assert len(text[a:b].strip()) >= MIN_PASSAGE and "ee." in text[a:b]
    assert snippet("ee.", {"ee"}, analyze)[0] == "ee.", "a chunk that is all fragment stays whole"


def test_markup_lines_do_not_win_the_passage_when_prose_holds_the_words():
    from searcher.lexical import analyzer
    from searcher.snippets import snippet

    analyze = analyzer("english").analyze
    text = (
        "[reading files]: #example-reading-files\n<td><code>EADDRINUSE</code></td>\n"
        "The server emits EADDRINUSE when reading files from a port that is taken."
    )
    got, _ = snippet(text, set(analyze("EADDRINUSE reading files")), analyze)
    assert got.startswith("The server emits EADDRINUSE"), got
    assert "EADDRINUSE" in snippet("<td><code>EADDRINUSE</code></td>", {"eaddrinus"}, analyze)[0]


def test_a_code_hit_keeps_its_lines_and_indentation_and_grep_format_one_line(tmp_path):
    from click.testing import CliRunner

    from searcher.cli import cli

    code = (
        "import os\n\n\nclass Cache:\n    def evict(self, key):\n        if key in self.items:\n"
        "            del self.items[key]\n            self.evictions += 1\n        return key\n"
    )
    docs = write_corpus(
        tmp_path / "docs", {"cache.py": code, "notes.md": "Eviction\n  happens\n  when the cache is full.\n"}
    )
    fake = FakeEncoder(max_seq_length=512)
    build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
    s = Searcher(tmp_path / "idx", encoder=fake)
    hit = next(h for h in s.search("del items", 2, mode="lexical") if h.source.endswith(".py"))
    lines = hit.snippet.split("\n")
    assert len(lines) > 1 and "del self.items[key]" in hit.snippet, repr(hit.snippet)
    indent = code.index(lines[0]) - code.rindex("\n", 0, code.index(lines[0])) - 1
    assert "\n".join(" " * indent + line if line else line for line in lines) in code, "whole lines, dedented alike"
    assert code.split("\n")[hit.line - 1].strip() in hit.snippet
    assert {hit.snippet[a:b] for a, b in hit.highlights} == {"del", "items"}
    prose = next(h for h in s.search("eviction cache full", 2, mode="lexical") if h.source.endswith(".md"))
    assert "\n" not in prose.snippet, "prose is folded to one line"
    result = CliRunner().invoke(
        cli, ["query", "del items", "--index", str(tmp_path / "idx"), "--mode", "lexical", "--format", "grep"]
    )
    assert result.exit_code == 0 and all(line.count(":") >= 2 for line in result.output.splitlines()), result.output
    assert result.output.count("\n") == 1 and ":7:del self.items[key]" in result.output, "one line for the hit"


def test_a_documents_other_places_are_those_that_match_on_their_own(tmp_path):
    from searcher import calibration

    topics = ["apples and pears", "tax forms", "mountain weather", "violin strings", "train timetables"]
    docs = write_corpus(
        tmp_path / "docs",
        {
            "long.md": "\n\n".join(
                [f"# Quasar\n\nThe quasar flickers in the quasar survey, quasar {j}." for j in range(2)]
                + [f"# Part {j}\n\nA note on {topics[j % 5]} and nothing else, number {j}." for j in range(10)]
            ),
            "other.md": "# Else\n\nA page about garden tools.",
        },
    )
    fake = FakeEncoder()
    build_index(
        docs, tmp_path / "idx", IndexConfig(model=fake.info.name, chunk_tokens=20, overlap_tokens=0), encoder=fake
    )
    s = Searcher(tmp_path / "idx", encoder=fake)
    floor = calibration.NO_MATCH["hybrid"]
    chunks = [h for h in s.search("quasar survey", 30, per_doc=False) if h.source.endswith("long.md")]
    weak = [h.id for h in chunks if h.score < floor]
    assert len(chunks) >= 10 and len(weak) >= 5, "the fusion fetched the document's unrelated chunks too"
    (hit,) = [h for h in s.search("quasar survey", 5) if h.source.endswith("long.md")]
    assert hit.more and all(m.score >= floor for m in hit.more) and not {m.id for m in hit.more} & set(weak)
    top = hit.more[0].score  # a --min-score also applies to the places listed besides a hit
    (kept,) = [h for h in s.search("quasar survey", 5, min_score=top + 1e-6) if h.source.endswith("long.md")]
    assert kept.more == ()


def test_a_hits_other_places_are_each_named_once_and_never_its_own(tmp_path):
    """Overlapping chunks hold the same sentences: both match, and the fold listed the hit's own line again (and a
    line twice) under "also at", in the HTTP answer and the page."""
    docs = tmp_path / "docs"
    docs.mkdir()
    filler = [f"Line {i} talks about weather and tides in the harbour." for i in range(40)]
    filler[12] = "The lighthouse keeper logs every passing ship."
    filler[30] = "A second lighthouse stands on the northern cape."
    (docs / "coast.md").write_text("\n".join(filler) + "\n")
    fake = FakeEncoder()
    config = IndexConfig(model=fake.info.name, chunk_tokens=48, overlap_tokens=20)
    build_index(docs, tmp_path / "idx", config, encoder=fake)
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    chunks = s.search("lighthouse", 20, mode="lexical", per_doc=False)
    assert len(chunks) > len({h.line for h in chunks}), "the test needs a sentence in two chunks' overlap"
    (hit,) = s.search("lighthouse", 1, mode="lexical")
    places = [(h.line, h.page) for h in (hit, *hit.more)]
    assert len(places) == len(set(places)) and {13, 31} <= {line for line, _ in places}, places


def test_a_documents_fold_keeps_its_best_next_chunks_and_near_duplicates_are_jaccards():
    import random

    from searcher.hits import MORE_KEPT, NEAR_DUPLICATE, Hit, _near_duplicate, _per_document

    chunks = [
        Hit(id=i, score=1 - i / 100, doc_id="long", title="", source="long.md", text=f"part {i}", start=i, end=i + 1)
        for i in range(MORE_KEPT + 15)
    ]
    (hit,) = _per_document(chunks, 5)
    assert hit.id == 0 and [m.id for m in hit.more] == list(range(1, MORE_KEPT + 1))
    rng = random.Random(0)
    near = 0
    for _ in range(2000):
        a = set(rng.sample(range(60), rng.randint(0, 30)))
        # half unrelated sets, half a few words away from `a` (either side of the threshold)
        b = set(rng.sample(range(60), rng.randint(0, 30))) if rng.random() < 0.5 else a ^ set(rng.sample(range(60), 4))
        jaccard = len(a & b) / len(a | b) if a or b else 1.0
        assert _near_duplicate(a, b) == (jaccard >= NEAR_DUPLICATE)
        near += jaccard >= NEAR_DUPLICATE
    assert 100 < near < 1900, "both answers were asked for"


def test_sentences_are_cut_as_the_plain_one_character_at_a_time_pattern_cuts_them():
    import random
    import re

    from searcher.snippets import _SENTENCE

    plain = re.compile(r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+(?:[.!?]+(?=\s|$)|\n|$)")  # the form it was written as
    rng = random.Random(0)
    alphabet = ["a", "bc", " ", "  ", ".", "!", "?", "\n", "...", "x.y", "3.14", "é", "\t"]
    texts = ["Wait... what", ". foo", "e.g. this? yes!! no...", "!!", "a\n.\nb", "", "\n\n"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(3000)]
    for text in texts:
        assert [m.span() for m in _SENTENCE.finditer(text)] == [m.span() for m in plain.finditer(text)], text


def test_a_hit_copy_changes_what_it_is_told_and_refuses_a_field_it_does_not_have():
    from searcher.hits import Hit

    hit = Hit(id=1, score=0.5, doc_id="d", title="t", source="s.md", text="some text", start=0, end=9)
    copy = hit.replace(score=0.9, line=3)
    assert (copy.score, copy.line, copy.text) == (0.9, 3, "some text") and hit.score == 0.5
    assert copy == dataclasses.replace(hit, score=0.9, line=3)
    with pytest.raises(TypeError, match="scroe"):
        hit.replace(scroe=0.9)
