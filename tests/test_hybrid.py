"""Hybrid retrieval: the fusion math by hand, the lexical index's incremental updates against a rebuild, phrases,
tokenizers, the no-match signal, and eval's lexical and hybrid figures against an independent computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_corpus
from fakes import FakeEncoder

from searcher import IndexConfig, Searcher, build_index, open_index
from searcher.cli import cli
from searcher.evaluate import evaluate
from searcher.fusion import fuse, fuse_sides
from searcher.lexical import analyzer
from searcher.metrics import ir_metrics

CONFIG = dict(chunk_tokens=32, overlap_tokens=4)


def build(source, index_dir, fake=None, **config):
    fake = fake or FakeEncoder()
    return build_index(source, index_dir, IndexConfig(model=fake.info.name, **{**CONFIG, **config}), encoder=fake)


# --- fusion on fixed scores ---------------------------------------------------------------------------------------


def test_fuse_orders_the_candidates_and_breaks_ties_by_id():
    # ids 7, 3, 5 with cosines 0.8, 0.6, 0.4 and coverages 0, 0.5, 1.0; w = 0.5:
    # 7: 0.4 + 0 = 0.4; 3: 0.3 + 0.25 = 0.55; 5: 0.2 + 0.5 = 0.7 -> 5, 3, 7.
    ids, cosines, coverages = np.array([7, 3, 5]), np.array([0.8, 0.6, 0.4]), np.array([0.0, 0.5, 1.0])
    scores, top = fuse(ids, cosines, coverages, 0.5, 3)
    assert top.tolist() == [5, 3, 7]
    np.testing.assert_allclose(scores, [0.7, 0.55, 0.4])
    # ties by the smaller id: 3 and 7 both 0.4 with w = 1 and equal cosines
    assert fuse(np.array([7, 3]), np.array([0.4, 0.4]), np.zeros(2), 1.0, 2)[1].tolist() == [3, 7]
    # w = 1 is dense alone, w = 0 coverage alone
    assert fuse(ids, cosines, coverages, 1.0, 3)[1].tolist() == [7, 3, 5]
    assert fuse(ids, cosines, coverages, 0.0, 2)[1].tolist() == [5, 3]
    with pytest.raises(ValueError, match="weight"):
        fuse(np.array([1]), np.array([1.0]), np.zeros(1), 1.5, 1)


def test_fuse_sides_scores_lexical_only_candidates_and_every_candidates_coverage():
    seen = {}

    def full_scores(extra):
        seen["full"] = extra.tolist()
        return np.full(len(extra), 0.5, np.float32)

    def coverages(ids):
        seen["coverage"] = ids.tolist()
        return np.array([{7: 0.0, 3: 0.2, 9: 1.0}[int(i)] for i in ids])

    scores, top = fuse_sides(np.array([7, 3]), np.array([0.8, 0.6]), np.array([9, 3]), 0.5, 3, full_scores, coverages)
    assert seen == {"full": [9], "coverage": [7, 3, 9]}  # only 9 needed its cosine; all three their coverage
    # 7: 0.4; 3: 0.3 + 0.1 = 0.4; 9: 0.25 + 0.5 = 0.75 -> 9, then the tie 3, 7 by id
    assert top.tolist() == [9, 3, 7]
    np.testing.assert_allclose(scores, [0.75, 0.4, 0.4], rtol=1e-6)


# --- the lexical index: phrases, tokenizers, incremental updates ---------------------------------------------------


def test_a_quoted_phrase_must_match_as_a_phrase(tmp_path):
    docs = write_corpus(
        tmp_path / "docs",
        {
            "a.txt": "She ate a red apple today.",
            "b.txt": "A red car and an apple pie.",
            "c.txt": "Nothing about fruit here.",
        },
    )
    build(docs, tmp_path / "idx")
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    assert [h.source.rsplit("/", 1)[1] for h in s.search('"red apple"', mode="lexical")] == ["a.txt"]
    assert {h.source.rsplit("/", 1)[1] for h in s.search("red apple", mode="lexical")} == {"a.txt", "b.txt"}
    assert [h.source.rsplit("/", 1)[1] for h in s.search('"red apples"', mode="lexical")] == ["a.txt"], "stemmed"


def test_coverage_remembered_between_calls_equals_a_fresh_answer(tmp_path):
    docs = write_corpus(
        tmp_path / "docs",
        {"a.txt": "Owls hunt mice at night.", "b.txt": "Mice eat grain.", "c.txt": "Night trains run late."},
    )
    build(docs, tmp_path / "idx")
    lexical = Searcher(tmp_path / "idx", encoder=FakeEncoder()).lexical
    ids = np.arange(len(lexical), dtype=np.int64)
    fresh = {q: lexical.coverage(q, ids) for q in ("owls mice night", "night trains")}
    assert fresh["owls mice night"].max() == pytest.approx(1.0, abs=1e-6)
    assert sorted((fresh["night trains"] > 0).tolist()) == [False, True, True]
    # the second query replaces the first one's answers; asking again, in parts and out of order, answers alike
    for q in ("owls mice night", "night trains", "owls mice night"):
        np.testing.assert_allclose(lexical.coverage(q, ids[::-1][:2]), fresh[q][::-1][:2])
        np.testing.assert_allclose(lexical.coverage(q, ids), fresh[q])


def test_the_ngram_tokenizer_finds_words_in_text_without_spaces(tmp_path):
    docs = write_corpus(tmp_path / "docs", {"zh.txt": "我们今天去北京大学看展览。", "ja.txt": "東京の天気は晴れです。"})
    build(docs, tmp_path / "idx", lexical_tokenizer="ngram")
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    assert s.search("北京", mode="lexical")[0].source.endswith("zh.txt")
    assert s.search("天気", mode="lexical")[0].source.endswith("ja.txt")
    with pytest.raises(Exception, match="lexical_tokenizer must be one of"):
        IndexConfig(lexical_tokenizer="klingon")


def test_accents_are_folded_and_an_index_of_the_version_before_is_read_as_made_then_upgraded(tmp_path, monkeypatch):
    from searcher import lexical

    docs = write_corpus(tmp_path / "docs", {"fr.md": "# Café\n\nLe café crème.", "en.md": "The naïve résumé."})
    monkeypatch.setattr(lexical, "VERSION", "2")  # an index made by the release before folding
    build(docs, tmp_path / "idx")
    old = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    assert not old.search("cafe", mode="lexical") and old.search("café", mode="lexical"), "read with its own words"
    monkeypatch.undo()
    build(docs, tmp_path / "idx")  # nothing changed but the analyzer: the re-run makes the lexical side anew
    assert lexical.version_of(open_index(tmp_path / "idx").path / "lexical") == lexical.VERSION
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    for query, source in (("cafe", "fr.md"), ("CAFÉ", "fr.md"), ("naive resume", "en.md"), ('"naive resume"', "en.md")):
        hits = s.search(query, mode="lexical")
        assert hits and hits[0].source.endswith(source), query
    assert analyzer("english").analyze("Straße") == analyzer("english").analyze("strasse")
    assert analyzer("english", version="2").analyze("Straße") == ["straße"], "version 2 kept its words"


def test_text_in_decomposed_form_is_found_by_its_composed_words_and_back(tmp_path):
    import unicodedata

    nfd = unicodedata.normalize("NFD", "A naïve résumé of the café.")  # as macOS and some PDFs write it
    assert nfd != unicodedata.normalize("NFC", nfd)
    docs = write_corpus(tmp_path / "docs", {"mac.md": nfd, "plain.md": "A note on the tea house."})
    build(docs, tmp_path / "idx")
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    for query in ("naive", "naïve", unicodedata.normalize("NFD", "naïve résumé"), '"naive resume"'):
        hits = s.search(query, mode="lexical")
        assert [h.source.endswith("mac.md") for h in hits] == [True], query
        assert [unicodedata.normalize("NFC", hits[0].snippet[a:b]) for a, b in hits[0].highlights][:1] == ["naïve"]


def test_chinese_and_japanese_words_are_found_by_the_default_tokenizer(tmp_path):
    docs = write_corpus(
        tmp_path / "docs",
        {
            "zh.txt": "我们今天去北京大学看展览。",
            "ja.md": "# 天気\n\n東京の天気は晴れです。",
            "en.md": "Notes on the weather in Tokyo and Beijing.",
        },
    )
    build(docs, tmp_path / "idx")  # lexical_tokenizer english, the default
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    hit = s.search("北京", mode="lexical")[0]
    assert hit.source.endswith("zh.txt")
    assert [hit.snippet[a:b] for a, b in hit.highlights] == ["北", "京"], "its characters lit, not the whole run"
    assert s.search("東京の天気", mode="lexical")[0].source.endswith("ja.md")
    assert not s.search('"京北"', mode="lexical"), "a quoted run is a phrase of its characters, in order"
    assert s.search('"北京大学"', mode="lexical")[0].source.endswith("zh.txt")
    assert s.search("weather Tokyo", mode="lexical")[0].source.endswith("en.md")


def _lexical_view(index_dir, queries):
    """Per query: {(source, start, text): BM25 score} of every lexical hit."""
    s = Searcher(index_dir, encoder=FakeEncoder())
    out = []
    for q in queries:
        out.append({(h.source, h.start, h.text): round(h.rank_score, 3) for h in s.search(q, 1000, mode="lexical")})
    return out


def test_incremental_lexical_updates_equal_a_rebuild(tmp_path, corpus):
    build(corpus, tmp_path / "idx")
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice and simmer it for twenty minutes.\n")  # change
    (corpus / "astronomy.txt").unlink()  # delete
    (corpus / "volcano.txt").write_text("Lava and ash rise from the crater. The moon is far away.")  # add
    report = build(corpus, tmp_path / "idx")
    assert report.indexed == 2 and report.removed == 1
    build(corpus, tmp_path / "fresh")
    queries = ["rice", "pasta", "moon", "lava crater", "owls night", "tomatoes sun", '"the moon"']
    incremental, fresh = _lexical_view(tmp_path / "idx", queries), _lexical_view(tmp_path / "fresh", queries)
    for q, a, b in zip(queries, incremental, fresh):
        assert a.keys() == b.keys(), q  # the same chunks match
    assert not incremental[1], "the changed file's old text is gone"
    # Deletes passed LEXICAL_COMPACT_SHARE of this small index, so it was rebuilt: the scores are a rebuild's.
    assert incremental == fresh


def test_an_update_touches_only_what_changed_in_the_lexical_index(tmp_path, corpus):
    write_corpus(corpus, {f"more/{i}.txt": f"Filler document number {i} about nothing much." for i in range(40)})
    build(corpus, tmp_path / "idx")
    old = open_index(tmp_path / "idx").path / "lexical"
    segments_before = {p.name for p in old.iterdir() if not p.name.startswith(".") and p.suffix != ".json"}
    (corpus / "new.txt").write_text("Penguins swim in cold water.")
    build(corpus, tmp_path / "idx")
    new = open_index(tmp_path / "idx").path / "lexical"
    kept = {p.name for p in new.iterdir()} & segments_before
    assert kept == segments_before, "the old segments are reused (hard links), not re-tokenised"
    assert all((new / name).stat().st_nlink == 1 for name in kept), "the old generation is gone, its links with it"


def test_an_index_without_a_lexical_side_answers_dense_only_and_the_next_update_builds_it(tmp_path, corpus):
    import shutil

    build(corpus, tmp_path / "idx")
    shutil.rmtree(open_index(tmp_path / "idx").path / "lexical")
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    assert s.search("moon craters")[0].source.endswith("astronomy.txt")
    assert "no usable lexical side" in s.notices[0]
    build(corpus, tmp_path / "idx")
    assert open_index(tmp_path / "idx").open_lexical() is not None


# --- no match ------------------------------------------------------------------------------------------------------


def test_a_query_with_no_match_is_flagged_and_exits_1(tmp_path, corpus, use_fake_encoder):
    build(corpus, tmp_path / "idx")
    s = Searcher(tmp_path / "idx", encoder=FakeEncoder())
    nothing = s.search("xylophonist zeppelin")
    assert nothing.no_match and len(nothing) > 0, "the hits are still returned, with a flag"
    # (the fake encoder's cosines are not the bundled model's, which the calibration is fitted to: lexical mode)
    assert not s.search("moon craters", mode="lexical").no_match
    result = CliRunner().invoke(cli, ["query", "xylophonist zeppelin", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "no match for 'xylophonist zeppelin'" in result.stderr and not result.stdout
    result = CliRunner().invoke(
        cli, ["query", "-", "--index", str(tmp_path / "idx"), "--mode", "lexical"], input="zeppelin\nmoon\n"
    )
    assert result.exit_code == 0 and "astronomy.txt" in result.stdout, "one match is enough, as with grep"


# --- eval against an independent computation ------------------------------------------------------------------------


def _bm25(query_tokens, docs_tokens, k1=1.2, b=0.75):
    """Okapi BM25 as tantivy scores it (idf = ln(1 + (N - n + 0.5) / (n + 0.5))), written out independently."""
    n_docs = len(docs_tokens)
    avgdl = sum(map(len, docs_tokens)) / n_docs
    scores = []
    for tokens in docs_tokens:
        s = 0.0
        for t in query_tokens:
            tf = tokens.count(t)
            if tf:
                n = sum(1 for d in docs_tokens if t in d)
                idf = math.log(1 + (n_docs - n + 0.5) / (n + 0.5))
                s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(tokens) / avgdl))
        scores.append(s)
    return np.array(scores)


def test_eval_lexical_and_hybrid_equal_an_independent_computation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    topics = [
        "owls hunt mice at night",
        "the moon has craters",
        "boil pasta in salted water",
        "plant tomatoes in sun",
        "jupiter is a gas giant",
        "rinse rice before cooking",
        "eagles nest on cliffs",
        "water the soil weekly",
    ]
    root = tmp_path / "beir"
    write_corpus(
        root,
        {
            "corpus.jsonl": "".join(
                json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(topics)
            ),
            "queries.jsonl": "".join(
                json.dumps({"_id": f"q{i}", "text": t.split()[1] + " " + t.split()[-1]}) + "\n"
                for i, t in enumerate(topics)
            ),
            "qrels/test.tsv": "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(topics))),
        },
    )
    fake = FakeEncoder()
    config = IndexConfig(model=fake.info.name, fusion_weight=0.6, **CONFIG)
    report = evaluate(root, config=config, encoder=fake, latency=False)
    queries = {f"q{i}": t.split()[1] + " " + t.split()[-1] for i, t in enumerate(topics)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(len(topics))}
    tokenize = analyzer("english").analyze
    docs_tokens = [tokenize(t) for t in topics]  # one chunk per document here
    xb = fake.encode_documents(topics)
    lexical, hybrid = {}, {}
    w = report.fusion_weight
    for q, text in queries.items():
        words = analyzer("english", stopwords=True).analyze(text)  # queries lose stopwords
        bm25 = _bm25(words, docs_tokens)
        n = len(docs_tokens)  # coverage: the IDF-weighted share of the query's words each document holds
        idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t in words for df in [sum(t in d for d in docs_tokens)]}
        coverage = np.array([sum(v for t, v in idf.items() if t in d) / sum(idf.values()) for d in docs_tokens])
        dense = xb @ fake.encode_queries([text])[0]
        found = bm25 > 0
        lexical[q] = [(f"d{i}", float(bm25[i])) for i in np.flatnonzero(found)]
        fused = w * dense + (1 - w) * coverage
        hybrid[q] = [(f"d{i}", float(fused[i])) for i in range(len(topics))]
    assert report.modes["lexical"] == pytest.approx(ir_metrics(lexical, qrels))
    assert report.modes["hybrid"] == pytest.approx(ir_metrics(hybrid, qrels))
    s = Searcher(report.index, encoder=fake)
    for q, text in queries.items():  # the BM25 scores themselves, not only the metrics
        got = {h.doc_id: h.rank_score for h in s.search(text, 10, mode="lexical")}
        want = dict(lexical[q])
        assert got.keys() == want.keys() and all(got[d] == pytest.approx(want[d], rel=1e-4) for d in got)


# --- the real model: a token that occurs in exactly one document comes first -----------------------------------------


@pytest.mark.model
def test_a_rare_token_finds_its_one_document_first_with_the_real_model(tmp_path, minilm):
    filler = {
        f"doc{i}.md": f"# Networking notes {i}\n\nServers listen on ports and clients connect to them. "
        f"Errors are reported through callbacks and events, topic {i}."
        for i in range(30)
    }
    unique = {
        "eaddrinuse.md": "# Listen errors\n\nWhen the port is taken the server emits EADDRINUSE and stops.",
        "emitter.md": "# Events\n\nToo many listeners trigger MaxListenersExceededWarning in the emitter.",
        "people.md": "# Committee\n\nThe committee members are Wojciechowski, Abernathy and Lindqvist.",
        "codes.md": "# Windows\n\nThe installer failed with error 0x80070643 on the second run.",
    }
    docs = write_corpus(tmp_path / "docs", {**filler, **unique})
    build_index(docs, tmp_path / "idx", IndexConfig(), encoder=minilm)
    s = Searcher(tmp_path / "idx", encoder=minilm)
    for token, name in [
        ("EADDRINUSE", "eaddrinuse.md"),
        ("MaxListenersExceededWarning", "emitter.md"),
        ("Wojciechowski", "people.md"),
        ("0x80070643", "codes.md"),
    ]:
        hits = s.search(token, 5)
        assert hits[0].source.endswith(name), (token, [h.source for h in hits])
        assert not hits.no_match
    assert s.search("zqxjv wvkbrt").no_match


def test_a_small_change_keeps_the_segments_and_scores_stay_close_to_a_rebuild(tmp_path, corpus):
    write_corpus(corpus, {f"more/{i}.txt": f"Filler document number {i} about moons and rice." for i in range(40)})
    build(corpus, tmp_path / "idx")
    (corpus / "more" / "3.txt").write_text("A changed filler document about the rice harvest.")
    build(corpus, tmp_path / "idx")
    assert open_index(tmp_path / "idx").manifest.lexical_deleted == 1, "one chunk deleted, no rebuild"
    build(corpus, tmp_path / "fresh")
    queries = ["rice", "moon", "harvest"]
    for a, b in zip(_lexical_view(tmp_path / "idx", queries), _lexical_view(tmp_path / "fresh", queries)):
        assert a.keys() == b.keys()
        assert all(a[key] == pytest.approx(b[key], rel=0.05) for key in a)
