from pathlib import Path

import pytest

from searcher.ingest import UnreadableFileError, decode, html_to_text, parse_file


def parse(name: str, content: str | bytes):
    data = content.encode() if isinstance(content, str) else content
    return parse_file(Path("/x") / name, data, doc_id=name)


def test_html_keeps_main_content_and_title_drops_scripts_and_navigation():
    title, text = html_to_text(
        "<html><head><title>My  Page</title><style>p {}</style></head><body>"
        "<nav>Home</nav><div role='main'><h1>Heading<a class='headerlink' href='#h'>¶</a></h1>"
        "<p>First <b>bold</b> paragraph.</p><script>alert(1)</script><p>Second&amp;last.</p></div>"
        "<div class='sidebar'>Related pages</div></body></html>"
    )
    assert title == "My Page"
    assert text == "Heading\n\nFirst bold paragraph.\n\nSecond&last."


def test_html_tags_a_files_end_leaves_open_are_text_and_the_lines_stay():
    from searcher.formats.html import _unclosed_tail_as_text

    page = "<p>one</p>\n<p>two <b>bold</b></p>\n<a <a href=x\nlast words <i"
    assert _unclosed_tail_as_text(page) == "<p>one</p>\n<p>two <b>bold</b></p>\n a  a href=x\nlast words  i"
    assert len(_unclosed_tail_as_text(page)) == len(page) and _unclosed_tail_as_text("<p>ok</p>") == "<p>ok</p>"
    (doc,), _ = parse("p.html", page)
    assert doc.text.split("\n\n")[:2] == ["one", "two bold"] and "last words" in doc.text


def test_html_without_main_region_uses_the_body_and_keeps_pre_whitespace():
    _, text = html_to_text("<body><p>Intro</p><pre>def f():\n    return 1</pre><ul><li>a</li><li>b</li></ul></body>")
    assert "def f():\n    return 1" in text
    assert text.startswith("Intro")
    assert "a\nb" in text


def test_markdown_title_from_front_matter_then_heading_then_file_name():
    docs, _ = parse("a.md", "---\ntitle: From Front Matter\n---\n# Heading\nbody")
    assert docs[0].title == "From Front Matter"
    assert "title:" not in docs[0].text
    docs, _ = parse("b.md", "intro\n\n## Second level\n\ntext")
    assert docs[0].title == "Second level"
    docs, _ = parse("notes.md", "no heading at all")
    assert docs[0].title == "notes"
    docs, _ = parse("c.md", "# Setup ##\n\n## C#\n\n### a # b #\n")  # closing #s go, a name's # stays
    assert [h[2] for h in docs[0].headings] == ["Setup", "C#", "a # b"]


def test_rst_title_is_the_first_underlined_line():
    docs, _ = parse("x.rst", ".. comment\n\n========\nOverview\n========\n\nText.\n")
    assert docs[0].title == "Overview"


def _outline(doc):
    """[(line, level, title)] of a document's headings (its text is the file's: lines count from 1)."""
    return [(doc.text.count("\n", 0, offset) + 1, level, title) for offset, level, title in doc.headings]


def test_org_asciidoc_and_latex_sections_are_the_heading_path_and_literal_blocks_are_not():
    (org,), _ = parse(
        "garden.org",
        "#+TITLE: Garden log\n\n* Spring\n** TODO Tomatoes :veg:urgent:\nPlant them.\n"
        "#+BEGIN_SRC python\n* not a headline\n#+END_SRC\n* Autumn\nCompost.\n",
    )
    assert org.title == "Garden log" and _outline(org) == [(3, 1, "Spring"), (4, 2, "Tomatoes"), (9, 1, "Autumn")]
    (adoc,), _ = parse(
        "guide.adoc", "= Release guide\n\n== Install\n\n----\n= not a title\n----\n\n=== Linux\nRun it.\n"
    )
    assert adoc.title == "Release guide" and _outline(adoc) == [(3, 1, "Install"), (9, 2, "Linux")]
    (tex,), _ = parse(
        "thesis.tex",
        "\\title{A  Thesis}\n% \\section{commented out}\n\\chapter{Start}\n\\section*[Short]{Introduction}\n"
        "\\begin{verbatim}\n\\section{in a listing}\n\\end{verbatim}\n\\subsection{Method}\nWe tag 50\\% of them.\n",
    )
    assert tex.title == "A Thesis"
    assert _outline(tex) == [(3, 2, "Start"), (4, 3, "Introduction"), (8, 4, "Method")]
    (untitled,), _ = parse("notes.org", "* Only a headline\ntext\n")
    assert untitled.title == "notes" and untitled.text == "* Only a headline\ntext\n", "the text stays as written"


def test_a_notebooks_cells_are_its_text_and_markdown_headings_its_path_not_its_outputs():
    import json

    v4 = {
        "nbformat": 4,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "source": ["# Sales\n", "\n", "Load the [data](http://x/y.csv).\n"]},
            {
                "cell_type": "code",
                "source": ["df = load()\n", "df.revenue.sum()"],
                "outputs": [{"output_type": "stream", "text": ["OUTPUT ONLY\n"]}],
            },
            {"cell_type": "code", "source": []},
            {"cell_type": "markdown", "source": "## Seasonality\r\n\r\nPeaks in December."},
        ],
    }
    (doc,), _ = parse("sales.ipynb", json.dumps(v4))
    assert doc.text == (
        "# Sales\n\nLoad the [data](http://x/y.csv).\n\n"
        "df = load()\ndf.revenue.sum()\n\n"
        "## Seasonality\n\nPeaks in December."
    )
    assert doc.title == "Sales" and _outline(doc) == [(1, 1, "Sales"), (8, 2, "Seasonality")]
    v3 = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 2, "source": ["Old style"]},
        {"cell_type": "code", "input": ["x = 1"], "outputs": []},
    ]}]}  # fmt: skip
    (old,), _ = parse("old.ipynb", json.dumps(v3))
    assert old.text == "## Old style\n\nx = 1" and old.title == "old" and _outline(old) == [(1, 2, "Old style")]
    for bad, why in (("{not json", "not JSON"), ("[1, 2]", "no cells"), ('{"cells": 3}', "no cells")):
        with pytest.raises(UnreadableFileError, match=why):
            parse("bad.ipynb", bad)


def test_jsonl_reads_beir_records_and_reports_bad_lines():
    content = "\n".join(
        [
            '{"_id": "d1", "title": "T1", "text": "one"}',
            "not json",
            '{"_id": "d2", "text": "two"}',
            '{"_id": "d1", "text": "duplicate id"}',
            '{"_id": "d3", "title": "no text field"}',
            "",
        ]
    )
    docs, warnings = parse("c.jsonl", content)
    assert [(d.doc_id, d.title, d.text) for d in docs] == [("d1", "T1", "one"), ("d2", "", "two")]
    assert len(warnings) == 1 and "3 line(s) skipped" in warnings[0] and "2, 4, 5" in warnings[0]


def test_jsonl_that_is_no_corpus_is_one_document_of_named_records_on_their_own_lines():
    content = "\r\n".join(
        [
            '{"ts": "2026-01-01", "level": "error", "msg": "disk full on /var"}',
            "",
            '{"user": {"name": "ada", "roles": ["admin", "ops"]}, "msg": "quota at\\n90%", "n": null, "ok": false}',
            "not json at all",
            '[1, 2, {"a": 1}]',
        ]
    )
    (doc,), warnings = parse("events.jsonl", content)
    assert warnings == [] and doc.doc_id == "events.jsonl" and doc.title == "events"
    assert doc.text.split("\n") == [
        "ts: 2026-01-01 | level: error | msg: disk full on /var",
        "",
        "user.name: ada | user.roles: admin, ops | msg: quota at 90% | n: null | ok: false",
        "not json at all",
        '[1,2,{"a":1}]',
    ], "each record on the line of the file it stands on"
    (chat,), _ = parse("chat.ndjson", '{"role": "user", "content": "How do I reset my router?"}\n')
    assert chat.text == "role: user | content: How do I reset my router?\n"
    (only,), warnings = parse("mixed.jsonl", '{"_id": "d1", "text": "a corpus"}\n{"ts": "2026"}\n')
    assert only.doc_id == "d1" and "1 line(s) skipped" in warnings[0], "one record with text: a corpus"


def test_decode_accepts_utf8_with_bom_utf16_and_windows_1252_and_rejects_binary():
    assert decode("\ufeffhé".encode("utf-8")) == "hé"
    assert decode("hé".encode("utf-16")) == "hé"
    with pytest.raises(UnreadableFileError, match="binary"):
        decode(b"\x89PNG\x00\x00data")
    assert decode("café".encode("latin-1")) == "café", "read as editors guess it"
    assert decode("“smart” – 5 €".encode("cp1252")) == "“smart” – 5 €"
    assert decode(b"caf\xe9 \x81") == "caf\xe9 \x81", "a byte Windows-1252 leaves unassigned: Latin-1"
    with pytest.raises(UnreadableFileError, match="control characters"):
        decode(bytes(range(1, 32)) * 10 + b"\xff")


def test_html_and_xml_in_a_declared_legacy_encoding_are_decoded_by_it():
    """Pages in Japanese, Chinese, Cyrillic written before UTF-8 declare their encoding; Windows-1252 guessed for
    them (decode's fallback for undeclared text) made every word mojibake."""
    page = '<html><head><meta charset="Shift_JIS"><title>天気</title></head><body><p>東京は晴れ。①</p></body></html>'
    (doc,), _ = parse("tenki.html", page.encode("cp932"))  # ① is Windows-31J's, as browsers read Shift_JIS
    assert doc.title == "天気" and "東京は晴れ。①" in doc.text
    old = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><p>Москва</p>'
    assert "Москва" in parse("moskva.htm", old.encode("cp1251"))[0][0].text
    assert decode('<?xml version="1.0" encoding="KOI8-R"?><a>Привет</a>'.encode("koi8_r")).endswith("<a>Привет</a>")
    assert decode('<meta charset="gb2312"><p>北京</p>'.encode("gb18030")).endswith("北京</p>")
    latin = '<meta charset="iso-8859-1"><p>café “smart”</p>'  # browsers read Latin-1 as Windows-1252
    assert decode(latin.encode("cp1252")) == latin
    assert decode('<meta charset="no-such">caf\xe9'.encode("latin-1")).endswith("café"), "unknown: the guess"
    assert decode('<meta charset="Shift_JIS"><p>ok ✓</p>'.encode()) == '<meta charset="Shift_JIS"><p>ok ✓</p>', (
        "bytes that read as UTF-8 are UTF-8, whatever the page says"
    )


def test_whitespace_only_file_gives_no_document():
    docs, _ = parse("empty.txt", "  \n\n ")
    assert docs == []


def test_windows_newlines_are_normalised_so_offsets_are_stable():
    docs, _ = parse("w.txt", "line one\r\nline two\r\n")
    assert docs[0].text == "line one\nline two\n"


def test_jsonl_records_end_at_newlines_only_not_at_unicode_line_separators():
    import json

    text = "caf\u0085e au lait \u2028 and \u2029 more \x1c\x1d\x1e\x0b\x0c end"
    data = (
        json.dumps({"_id": "d1", "title": "", "text": text}, ensure_ascii=False)
        + "\r\n"
        + json.dumps({"_id": "d2", "title": "", "text": "two"}, ensure_ascii=False)
        + "\n"
    ).encode()
    docs, warnings = parse("c.jsonl", data)
    assert warnings == []
    assert [(d.doc_id, d.text) for d in docs] == [("d1", text), ("d2", "two")]


def test_gzipped_json_latin1_files_are_read_and_permalinks_and_code_sections_found(tmp_path, fake):
    import gzip

    from searcher import IndexConfig, Searcher, build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "caching.md.gz").write_bytes(gzip.compress(b"# Caching\n\nUse --no-cache-dir to stop pip from caching.\n"))
    (docs / "changelog.gz").write_bytes(gzip.compress(b"Version 2.0: the parser was rewritten.\n"))
    (docs / "settings.json").write_text('{"theme": "solarized", "fontSize": 14}\n')
    (docs / "latin.txt").write_bytes("Café crème brûlée, naïve façade – 20 €.\n".encode("cp1252"))
    (docs / "binary.txt").write_bytes(bytes(range(1, 32)) * 40 + b"\xff\xfe\xfd")
    (docs / "events.html").write_text(
        '<html><body><main><h2>Class: EventEmitter<a class="mark" href="#ee">#</a></h2>'
        "<p>Emits named events to listeners.</p></main></body></html>"
    )
    (docs / "server.py").write_text(
        "import os\n\n\nclass HTTPServer:\n    def serve(self):\n        return os.path.join(root, name)\n"
    )
    report = build_index(docs, tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake)
    assert report.indexed == 6 and "binary.txt" in " ".join(report.skipped_files + report.warnings)
    s = Searcher(tmp_path / "idx", encoder=fake)
    assert s.search("--no-cache-dir", mode="lexical")[0].source.endswith("caching.md.gz")
    assert s.search("parser rewritten", mode="lexical")[0].source.endswith("changelog.gz")
    assert s.search("solarized", mode="lexical")[0].source.endswith("settings.json")
    hit = s.search("brûlée", mode="lexical")[0]
    assert hit.source.endswith("latin.txt") and "crème" in hit.text
    html = s.search("listeners", mode="lexical")[0]
    assert html.heading == "Class: EventEmitter", html.heading
    code = s.search("os.path.join", mode="lexical")[0]
    assert code.heading == "HTTPServer > serve", code.heading


def test_a_code_section_ends_where_the_code_dedents_out_of_it():
    from searcher.chunking import Locator
    from searcher.ingest import Document, code_sections

    code = (
        "class Group:\n    def invoke(self, ctx):\n        def _process(value):\n            return value\n\n"
        "        # the rest of invoke\n        with ctx:\n            return _process(ctx.run(\n"
        "                1,\n            ))\n\n    def help(\n        self,\n    ) -> str:\n"
        '        """Example::\n\n            def cli(input):\n                pass\n\n'
        '        function returns a string, as prose.\n        """\n        return ""\n\n    @property\n    @cached(\n'
        '        size=2,\n    )\n    def name(self):\n        return 1\n\n\nVERSION = "1"\n'
    )
    sections = code_sections(code, python=True)
    locate = Locator(Document(doc_id="g", title="g", text=code, source="g.py", headings=sections))
    where = {
        marker: locate.heading(code.index(marker))
        for marker in (
            "return value",
            "with ctx",
            "1,",
            "        self,\n",
            "pass",
            "function returns",
            'return ""',
            "@property",
            "size=2",
            "return 1",
            "VERSION",
        )
    }
    assert where == {
        "return value": "Group > invoke > _process",
        "with ctx": "Group > invoke",
        "1,": "Group > invoke",
        "        self,\n": "Group > help",
        "pass": "Group > help",
        "function returns": "Group > help",
        'return ""': "Group > help",
        "@property": "Group > name",  # a definition's decorators are in its section, not the one above
        "size=2": "Group > name",
        "return 1": "Group > name",
        "VERSION": "",
    }, where
    js = "function outer() {\n  function inner() {\n    return 1;\n  }\n  return inner();\n}\nconst x = outer();\n"
    locate = Locator(Document(doc_id="j", title="j", text=js, source="j.js", headings=code_sections(js)))
    assert [locate.heading(js.index(m)) for m in ("return 1", "return inner", "const x")] == [
        "outer > inner",
        "outer",
        "",
    ]


def test_pdfium_soft_hyphen_marks_join_the_word():
    from searcher.formats.pdf import page_text

    assert page_text("Risk man\ufffe\r\nagement  \r\nplans") == "Risk management\nplans"
