"""Query syntax in every mode, identifier tokens, stopwords, and scores on one scale (issue: search quality on
collections it was never tuned on)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_corpus

from searcher import IndexConfig, Searcher, build_index, calibration
from searcher.cli import cli
from searcher.config import SEARCH_MODES
from searcher.lexical import identifiers
from searcher.syntax import PASSAGE_WORDS, parse

FRUIT = {
    "a.txt": "She ate a red apple today.",
    "b.txt": "A red car and an apple pie.",
    "c.txt": "A green apple and a red pepper.",
    "d.txt": "Nothing about fruit here.",
}


def _indexed(tmp_path, fake, docs: dict[str, str]) -> Searcher:
    """A Searcher over a fresh index of `docs` (name -> text) built with the fake encoder."""
    build_index(
        write_corpus(tmp_path / "docs", docs), tmp_path / "idx", IndexConfig(model=fake.info.name), encoder=fake
    )
    return Searcher(tmp_path / "idx", encoder=fake)


def _names(hits) -> list[str]:
    return [h.source.rsplit("/", 1)[1] for h in hits]


@pytest.fixture
def fruit(tmp_path, fake):
    return _indexed(tmp_path, fake, FRUIT)


# --- syntax ---------------------------------------------------------------------------------------------------------


def test_parse_finds_phrases_exclusions_and_plain_words():
    q = parse('git "subtree split" -svn -"old branch"')
    assert (q.text, q.phrases, q.excluded, q.words) == (
        "git subtree split",
        ("subtree split",),
        ("svn", "old branch"),
        "git",
    )
    assert parse("--no-cache-dir").excluded == (), "a --flag is a word"
    assert parse("e-mail -").text == "e-mail -", "a dash inside a word or alone is not an exclusion"
    assert parse("E2F-1, -2, -3 at -40 degrees").excluded == (), "a number is not an exclusion"
    flags = parse("python -m venv, git commit -m, ls -l")
    assert flags.excluded == () and flags.text == "python -m venv, git commit -m, ls -l", "a one-letter flag is a word"
    assert parse("owls -at night").excluded == ("at",) and parse("x -v2").excluded == ("v2",)
    assert parse("-40 degrees").text == "-40 degrees" and parse("x -_private").excluded == ("_private",)
    passage = 'As the report put it, "the plan was never tested" - and -nobody asked why. ' + "word " * 24
    assert len(passage.split()) > PASSAGE_WORDS and not parse(passage).filters, "a pasted passage is prose"
    assert parse(passage).text.startswith("As the report put it, the plan was never tested - and -nobody")
    assert parse('an "unpaired quote').text == "an unpaired quote" and not parse('an "unpaired quote').phrases


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_a_phrase_and_an_exclusion_filter_every_mode(fruit, mode):
    assert _names(fruit.search('"red apple"', mode=mode)) == ["a.txt"]
    found = _names(fruit.search("apple -pie", mode=mode))
    assert "b.txt" not in found and "a.txt" in found and "c.txt" in found
    assert "a.txt" not in _names(fruit.search('apple -"red apple"', mode=mode))


def test_a_phrase_no_passage_holds_says_so(fruit):
    from searcher.filters import Where

    hits = fruit.search('"green banana" -pie')
    assert hits == [] and hits.no_match
    assert (
        hits.reason
        == 'no passage holds "green banana" without -pie; without the quotes, its words are searched by meaning'
    )
    scoped = fruit.search('"red apple"', where=Where(paths=("d.txt",)))
    assert scoped.no_match and scoped.reason.startswith('no passage of the files searched holds "red apple"')
    assert not fruit.search('"red apple"').reason, "a query with hits has no reason"


def test_a_pasted_passage_is_searched_as_text_its_quotes_no_filter(fruit):
    passage = 'She wrote that "a green banana" is all she ate, an apple -pie aside. ' + "and then " * 12
    assert len(passage.split()) > PASSAGE_WORDS
    assert fruit.search(passage, mode="lexical"), "its quoted words are words, not a phrase no passage holds"
    assert fruit.search('"a green banana" apple', mode="lexical") == [], "in a short query they are a phrase"


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_a_flag_the_collection_holds_is_a_word_and_any_other_dash_word_an_exclusion(tmp_path, fake, mode):
    docs = {
        "shell.md": "# Listing\n\nList every file, hidden ones too, with ls -la in a terminal.\n",
        "pie.txt": "An apple pie with a crisp crust.",
        "apple.txt": "An apple a day, and la la la.",
    }
    s = _indexed(tmp_path, fake, docs)
    listed = _names(s.search("ls -la", mode=mode))
    assert "shell.md" in listed and "apple.txt" in listed, "the flag as written, not an exclusion of 'la'"
    assert mode not in ("hybrid", "lexical") or listed[0] == "shell.md", "a look-up of the flag: its file first"
    assert "apple.txt" in _names(s.search("apple -la", mode=mode)), "-la is this index's flag: a word"
    found = _names(s.search("apple -pie", mode=mode))
    assert "pie.txt" not in found and "apple.txt" in found, "no passage holds -pie as written: an exclusion"
    assert s.lexical.parse("apple -pie").excluded == ("pie",) and s.lexical.parse("ls -la,").excluded == ()
    assert s.lexical.names("ls -la") == [], "a -flag is no look-up: -v is in every tool's documentation"


def test_a_query_that_only_excludes_is_refused(fruit):
    with pytest.raises(Exception, match="only excludes"):
        fruit.search("-apple")
    for quotes in ('""', '"', '" "'):  # nothing to search for, and nothing excluded either
        with pytest.raises(Exception, match="has no word in it; add a word"):
            fruit.search(quotes)


# --- identifiers -----------------------------------------------------------------------------------------------------


def test_identifiers_are_taken_whole_and_by_their_parts():
    got = identifiers(
        "Call Py_Initialize() and os.path.join; pass --no-cache-dir. ERR_REQUIRE_ESM, E0277, v3.11.2, "
        "HTTPServer, readFileSync, an e-mail, and/or 3.5"
    )
    for name in [
        "Py_Initialize",
        "os.path.join",
        "path.join",
        "--no-cache-dir",
        "ERR_REQUIRE_ESM",
        "E0277",
        "v3.11.2",
        "HTTPServer",
        "readFileSync",
    ]:
        assert name in got, name
    for word in ["e-mail", "and/or", "3.5", "Call", "and"]:
        assert word not in got, word
    flags = identifiers("run ls -la, tar -xzf and gcc -O2 -Wall; an e-mail at -40")
    assert {"-la", "-xzf", "-O2", "-Wall"} <= set(flags) and "-mail" not in flags and "-40" not in flags


CODE = {
    "embed.rst": "Embedding\n=========\n\nCall Py_Initialize before any other function of the C API.\n",
    "classes.html": "<html><body><main><p>The initial state of an instance is set by its initializer.</p>"
    "<p>Initialize it with arguments.</p></main></body></html>",
    "server.py": "class HTTPServer:\n    def serve(self):\n        return os.path.join(root, name)\n",
    "errors.md": "# Errors\n\n## ERR_REQUIRE_ESM\n\nRaised when require() loads an ES module.\n\n"
    "## E0277\n\nA trait bound is not satisfied.\n",
    "pip.md": "# Caching\n\nUse --no-cache-dir to turn the cache off. Fixed in v3.11.2.\n",
}


@pytest.mark.parametrize(
    "query, name",
    [
        ("Py_Initialize", "embed.rst"),
        ("py initialize", "embed.rst"),
        ("HTTPServer", "server.py"),
        ("os.path.join", "server.py"),
        ("path.join", "server.py"),
        ("ERR_REQUIRE_ESM", "errors.md"),
        ("E0277", "errors.md"),
        ("--no-cache-dir", "pip.md"),
        ("v3.11.2", "pip.md"),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_a_named_identifier_ranks_its_file_first(tmp_path, fake, query, name, mode):
    hits = _indexed(tmp_path, fake, CODE).search(query, mode=mode, per_doc=True)
    assert _names(hits)[0] == name, _names(hits)


def test_initialize_alone_finds_the_identifier_by_its_part_and_prose_is_no_look_up(tmp_path, fake):
    s = _indexed(tmp_path, fake, CODE)
    assert "embed.rst" in _names(s.search("initialize", mode="lexical"))
    assert s.lexical.names("Py_Initialize") == ["py_initialize"]
    assert s.lexical.names("what does os.path.join return") == [], "more prose than names: not a look-up"
    assert s.lexical.names("CD4 T cells regulate the immune response") == []


# --- stopwords -------------------------------------------------------------------------------------------------------


def test_stopwords_leave_a_query_unless_it_has_nothing_else(tmp_path, fake):
    docs = {
        "hamlet.txt": "To be, or not to be, that is the question.",
        "moon.txt": "The moon is bright tonight.",
        "sun.txt": "Sunlight warms the sea.",
    }
    s = _indexed(tmp_path, fake, docs)
    assert s.lexical.words("is the moon") == ["moon"]
    assert _names(s.search("is the moon", mode="lexical")) == ["moon.txt"], "'is' and 'the' match nothing"
    assert _names(s.search("to be or not to be", mode="lexical"))[0] == "hamlet.txt", "a query of stopwords only"
    assert _names(s.search('"to be or not"', mode="lexical")) == ["hamlet.txt"], "phrases keep their stopwords"


# --- scores on one scale -------------------------------------------------------------------------------------------


def test_probability_rises_with_each_piece_of_evidence():
    for mode in ("hybrid", "dense", "lexical"):
        low, high = calibration.probability(mode, [0.1, 0.9], [0.0, 1.0])
        assert 0 < low < high < 1, mode
    assert calibration.monotone([0.9, 0.95, 0.3, 0.4]) == [0.9, 0.9, 0.3, 0.3]
    # idf = ln(1 + (N - n + 0.5) / (n + 0.5)); N = 10, n = 1: ln(1 + 9.5 / 1.5) = ln(7.333) = 1.9924
    assert calibration.idf(1, 10) == pytest.approx(1.9924, abs=1e-4)
    assert calibration.coverage({"moon": 3.0, "crater": 1.0}, ["moon", "orbit"]) == pytest.approx(0.75)


def test_hybrid_ranks_in_the_order_of_the_calibrated_score(fruit):
    from searcher.config import DEFAULT_FUSION_WEIGHT

    b0, bc, bv = calibration.COEFFICIENTS["hybrid"]
    assert pytest.approx(bc / (bc + bv), abs=5e-4) == DEFAULT_FUSION_WEIGHT, "the default weight is the score's ratio"
    for query in ("red apple", "green pepper today", "fruit pie car", '"an apple" pepper'):
        hits = fruit.search(query, k=4, mode="hybrid")
        assert hits
        for h in hits:  # the coverage the fusion ranked with (the lexical postings) is the one the score shows
            assert h.score == pytest.approx(float(calibration.probability("hybrid", h.cosine, h.coverage)), rel=1e-4)
        fused = [DEFAULT_FUSION_WEIGHT * h.cosine + (1 - DEFAULT_FUSION_WEIGHT) * h.coverage for h in hits]
        assert [h.rank_score for h in hits] == pytest.approx(fused, abs=1e-5)
        assert fused == sorted(fused, reverse=True)


@pytest.mark.model
def test_a_perfect_match_scores_high_and_gibberish_low_in_every_mode(tmp_path, minilm):
    docs = {
        "port.md": "# Listen errors\n\nWhen the port is already taken, the server emits EADDRINUSE and stops.",
        "bread.md": "# Baking\n\nKnead the dough, let it rise for an hour, then bake the bread at 220 degrees.",
        "moon.md": "# The moon\n\nThe moon orbits the earth once a month; its craters come from impacts.",
    }
    build_index(write_corpus(tmp_path / "docs", docs), tmp_path / "idx", IndexConfig(), encoder=minilm)
    s = Searcher(tmp_path / "idx", encoder=minilm)
    for mode in ("hybrid", "dense", "lexical"):
        good = s.search("the server emits EADDRINUSE when the port is already taken", mode=mode)
        bad = s.search("zzqx flibbertigibbet", mode=mode) if mode != "lexical" else None
        assert good[0].source.endswith("port.md") and good[0].score > 0.5 and not good.no_match, mode
        assert all(a.score >= b.score for a, b in zip(good, good[1:])), "scores never rise down the list"
        if bad is not None:
            assert bad.no_match and bad[0].score < calibration.NO_MATCH[calibration.kind(mode)], mode
    assert s.search("quantum chromodynamics of gluon plasma").no_match
    assert not s.search("how long should dough rise before baking").no_match
    everything = s.search("how long should dough rise before baking")
    cut = (everything[0].score + everything[-1].score) / 2
    kept = s.search("how long should dough rise before baking", min_score=cut)
    assert [h.id for h in kept] == [h.id for h in everything if h.score >= cut] and 0 < len(kept) < len(everything)


@pytest.mark.model
def test_no_match_and_min_score_in_the_cli(tmp_path, minilm, monkeypatch):
    import searcher.search

    monkeypatch.setattr(searcher.search, "load_encoder", lambda name: minilm)
    docs = {"bread.md": "# Baking\n\nKnead the dough, let it rise for an hour, then bake the bread at 220 degrees."}
    build_index(write_corpus(tmp_path / "docs", docs), tmp_path / "idx", IndexConfig(), encoder=minilm)
    index = str(tmp_path / "idx")
    gibberish = CliRunner().invoke(cli, ["query", "zzqx flibbertigibbet", "--index", index])
    assert gibberish.exit_code == 1 and not gibberish.stdout
    assert (
        gibberish.stderr.strip() == "no match for 'zzqx flibbertigibbet': nothing in the index is likely to be relevant"
    )
    phrase = CliRunner().invoke(cli, ["query", '"rye sourdough" bread', "--index", index])
    assert phrase.exit_code == 1 and 'no passage holds "rye sourdough"; without the quotes' in phrase.stderr
    found = CliRunner().invoke(cli, ["query", "how long does dough rise", "--index", index, "--json"])
    assert found.exit_code == 0 and "bread.md" in found.stdout
    strict = CliRunner().invoke(cli, ["query", "how long does dough rise", "--index", index, "--min-score", "0.999"])
    assert strict.exit_code == 1 and not strict.stdout, "every hit below --min-score: nothing to show"
    # "oven": the page is near, but below the no-match floor. No match says how near, and a lower --min-score is
    # the user's own bar for what matches (the library's no_match follows it).
    near = CliRunner().invoke(cli, ["query", "oven", "--index", index])
    assert near.exit_code == 1 and not near.stdout
    assert "(the nearest scored 0.00" in near.stderr and "--min-score 0 lists it)" in near.stderr, near.stderr
    listed = CliRunner().invoke(cli, ["query", "oven", "--index", index, "--min-score", "0"])
    assert listed.exit_code == 0 and "bread.md" in listed.stdout and not listed.stderr
    s = Searcher(index, encoder=minilm)
    assert s.search("oven", 1).no_match and not s.search("oven", 1, min_score=0.0).no_match
    assert s.search("oven", 1, min_score=0.5).no_match, "a stricter bar does not make a match"
    assert np.isfinite(float(found.stdout.split('"score":')[1].split(",")[0]))


# --- another model's cosines: the calibration's scale -----------------------------------------------------------


def test_a_cosine_map_is_fitted_from_two_anchors_and_ranks_as_its_weight_says():
    rng = np.random.default_rng(0)
    wanted = rng.uniform(-0.1, 0.9, size=(20, 50))
    model = 0.8 + 0.2 * wanted  # a model that squeezes every cosine into [0.78, 0.98]
    m = calibration.fit_cosine_map(model, wanted)
    # anchors: each model's mean best cosine and mean median cosine; model = 0.8 + 0.2 x wanted, so the map
    # is its inverse: slope 1 / 0.2 = 5, offset -0.8 / 0.2 = -4
    assert (m.slope, m.offset, m.fitted_on) == (pytest.approx(5.0), pytest.approx(-4.0), 20)
    assert m(model) == pytest.approx(wanted)
    assert calibration.fit_cosine_map(model[:5], wanted[:5]) is None, "too few pseudo-queries"
    assert calibration.fit_cosine_map(np.full((20, 50), 0.9), wanted) is None, "a model that tells nothing apart"
    # a randomly initialised model: every cosine within 0.001 of 0.999 (a stretch of 1,000x would weigh noise)
    assert calibration.fit_cosine_map(0.999 + 0.001 * wanted, wanted) is None
    cos, cov = rng.uniform(0.78, 0.98, 200), rng.uniform(0, 1, 200)
    for w in (0.0, 0.3, 0.546, 1.0):
        wp = m.weight(w)
        mapped = w * m(cos) + (1 - w) * cov
        assert (
            np.argsort(-(wp * cos + (1 - wp) * cov), kind="stable").tolist()
            == np.argsort(-mapped, kind="stable").tolist()
        )
    assert calibration.CosineMap.from_dict(m.to_dict()) == m
    assert calibration.CosineMap.from_dict(None) is None and calibration.CosineMap.from_dict({"slope": -1}) is None


TOPICS_12 = {
    f"{name}.md": f"# {name}\n\n{text}"
    for name, text in {
        "bread": "Knead the dough for ten minutes on a floured table. Let it rise for an hour before you bake it.",
        "port": "The server stops when the port is already taken by another program. Pick a free port and restart.",
        "moon": "The moon orbits the earth about once every month. Its craters come from old meteorite impacts.",
        "tides": "Tides rise and fall twice a day along the coast. The pull of the moon and the sun drives them.",
        "roses": "Prune the roses in late winter before new growth starts. Feed them with compost in the spring.",
        "chess": "Control the centre of the board early in the game. Develop the knights before the bishops.",
        "tax": "File the tax return before the end of April each year. Keep the receipts for seven years.",
        "piano": "Practise the scales slowly with both hands every morning. Use a metronome to keep the tempo even.",
        "bikes": "Check the tyre pressure before every long ride on the bike. Oil the chain after riding in the rain.",
        "coffee": "Grind the coffee beans just before you brew them at home. Water just off the boil extracts best.",
        "sleep": "Adults need about seven to nine hours of sleep each night. A dark, cool room helps you fall asleep.",
        "python": "Use a with statement to open a file in the Python language. It closes the file when the block ends.",
    }.items()
}


@pytest.mark.model
def test_a_model_whose_cosines_sit_elsewhere_is_put_on_the_calibrated_scale(tmp_path, minilm):
    import dataclasses

    from models import anisotropic_minilm

    from searcher.encoder import load_encoder
    from searcher.store import read_manifest

    other = load_encoder(str(anisotropic_minilm(tmp_path / "model")))
    docs = write_corpus(tmp_path / "docs", TOPICS_12)
    models = {calibration.REFERENCE_MODEL: minilm, other.info.name: other}
    build_index(docs, tmp_path / "idx", IndexConfig(model=other.info.name), encoder=other, load_model=models.get)
    fitted = read_manifest(tmp_path / "idx").cosine_map
    # every cosine of this model is squeezed towards 1 (0.8-0.96 between any two of these texts): the map
    # stretches it back, by several times
    assert fitted is not None and fitted.slope > 3 and fitted.fitted_on >= calibration.MIN_FIT_QUERIES
    shown = CliRunner().invoke(cli, ["info", "--index", str(tmp_path / "idx")]).output
    assert f"+ {fitted.slope:.3f} x cosine" in shown, shown
    s = Searcher(tmp_path / "idx", encoder=other)
    build_index(docs, tmp_path / "mini", IndexConfig(), encoder=minilm)
    mini = Searcher(tmp_path / "mini", encoder=minilm)
    for mode in ("hybrid", "dense"):
        assert s.search("zzqx flibbertigibbet", mode=mode).no_match, mode
        for query in ("how long should the dough rise before baking", "what pulls the tides", "oil a bike chain"):
            got, ref = s.search(query, mode=mode, k=1), mini.search(query, mode=mode, k=1)
            # the reference model's own index of the same files scores the same hit alike (0.12-0.79 here)
            assert got[0].source == ref[0].source and got[0].score == pytest.approx(ref[0].score, abs=0.06), query
    raw = Searcher(tmp_path / "idx", encoder=other)
    raw.manifest = dataclasses.replace(raw.manifest, cosine_map=None)
    assert not raw.search("zzqx flibbertigibbet", mode="dense").no_match, "unmapped, gibberish looks close"
    # an update keeps the map; the reference model's own index has none
    (docs / "more.md").write_text("# Kites\n\nFly the kite on an open field with a steady wind.", encoding="utf-8")
    build_index(docs, tmp_path / "idx", encoder=other, load_model=models.get)
    assert read_manifest(tmp_path / "idx").cosine_map == fitted
    assert read_manifest(tmp_path / "mini").cosine_map is None


# --- k documents --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_k_documents_come_back_whenever_k_documents_match(tmp_path, fake, mode):
    # two long files that mention "listener" in every paragraph, then eleven short ones that mention it once
    long = "\n\n".join(f"Paragraph {i}: the listener listener listener is called again." for i in range(60))
    docs = {
        "long1.md": long,
        "long2.md": long.replace("called", "invoked"),
        **{f"short{i}.md": f"Note {i}: attach a listener here." for i in range(11)},
    }
    build_index(
        write_corpus(tmp_path / "docs", docs),
        tmp_path / "idx",
        IndexConfig(model=fake.info.name, chunk_tokens=24, overlap_tokens=0),
        encoder=fake,
    )
    s = Searcher(tmp_path / "idx", encoder=fake)
    hits = s.search("listener", 10, mode=mode, per_doc=True)
    assert len(hits) == 10 and len({h.source for h in hits}) == 10
    everything = s.search("listener", 13, mode="lexical", per_doc=True)
    files = {p for h in everything for p in (h.source, *h.duplicates)}  # long2 folds under long1: the same text
    assert len(files) == 13, "every file holding the word"
