"""The CLI with the fake encoder: output formats, and every user-facing error's message and exit code."""

import json

import pytest
from click.testing import CliRunner
from conftest import write_corpus

from searcher import calibration
from searcher.cli import cli
from searcher.hits import NOTHING_RELEVANT


def run(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def indexed(tmp_path, corpus, use_fake_encoder):
    idx = tmp_path / "idx"
    result = run("index", corpus, "--index", idx, "--chunk-tokens", 32, "--overlap-tokens", 4, "-q")
    assert result.exit_code == 0, result.output
    return idx


def test_index_prints_counts(tmp_path, corpus, use_fake_encoder):
    (corpus / "notes.pdf").write_bytes(b"%PDF")
    result = run("index", corpus, "--index", tmp_path / "idx", "--chunk-tokens", 32, "--overlap-tokens", 4, "-q")
    assert result.exit_code == 0
    assert "5 indexed, 0 unchanged, 1 skipped, 0 failed, 0 removed files" in result.output
    again = run("index", corpus, "--index", tmp_path / "idx", "-q")
    assert "0 indexed, 5 unchanged" in again.output and "0 chunks embedded" in again.output


def test_index_says_which_lines_of_a_jsonl_it_dropped(tmp_path, use_fake_encoder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.jsonl").write_text('{"_id": "1", "text": "owls hunt at night"}\n{not json\n')
    result = run("index", docs, "--index", tmp_path / "idx")
    assert result.exit_code == 0 and "1 indexed" in result.stdout
    assert "c.jsonl: 1 line(s) skipped (not a JSON object" in result.stderr and ": 2" in result.stderr, result.stderr


def test_query_human_and_json_output(indexed):
    human = run("query", "owls hunt at night", "--index", indexed, "-k", 2)
    assert human.exit_code == 0
    assert human.stdout.splitlines()[0].startswith(" 1. ") and "birds.md:3  Birds" in human.stdout
    as_json = run("query", "owls hunt at night", "--index", indexed, "-k", 2, "--json")
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["rank"] for r in lines] == [1, 2]
    assert list(lines[0]) == [
        "query",
        "rank",
        "score",
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
        "highlights",
    ]
    assert lines[0]["query"] == "owls hunt at night" and lines[0]["score"] == round(lines[0]["score"], 4)
    assert "Owls hunt at night" in lines[0]["snippet"]


def test_queries_from_stdin(indexed):
    result = run("query", "-", "--index", indexed, "-k", 1, "--json", input="owls\n\ntomatoes sun\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in records] == ["owls", "tomatoes sun"]


def test_empty_stdin_is_an_error(indexed):
    result = run("query", "-", "--index", indexed, input="\n  \n")
    assert (
        result.exit_code == 2
        and result.output.strip() == "Error: no queries on standard input; pass one query per line"
    )


def test_index_from_environment_variable(indexed, monkeypatch):
    monkeypatch.setenv("SEARCHER_INDEX", str(indexed))
    assert run("query", "owls").exit_code == 0


def test_info_shows_the_manifest(indexed):
    result = run("info", "--index", indexed)
    assert "fake-hash-encoder (96 dims, max 64 tokens)" in result.output
    assert "5 files, 5 documents" in result.output
    assert "full: mixed; coarse: flat (exact)" in result.output  # the defaults, for a small index
    assert "scores      this model's cosines as they are" in result.output  # a fake model gets no cosine map
    data = json.loads(run("info", "--index", indexed, "--json").output)
    assert data["format"] == "searcher-index" and data["version"] == 1 and data["counts"]["files"] == 5
    # the index as an argument, as `searcher drop INDEX` takes it; --index too, if it names the same one
    assert run("info", indexed).output == result.output == run("info", indexed, "--index", indexed).output
    both = run("info", indexed, "--index", "other")
    assert both.exit_code == 2 and "two indexes given" in both.output
    assert data["disk_shared_bytes"] == 0 and "hard-linked" not in result.output
    linked = max((p for p in indexed.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    (indexed.parent / "elsewhere").hardlink_to(linked)  # as an index's query encoder is linked to the home's
    shared = json.loads(run("info", indexed, "--json").output)
    assert shared["disk_shared_bytes"] == linked.stat().st_size and shared["disk_bytes"] == data["disk_bytes"]
    assert "MB hard-linked: its model's query encoder" in run("info", indexed).output


def test_info_names_a_path_left_unmeasured():
    from searcher.cli import _encoder_choice

    record = {
        "choice": "torch-bf16",
        "cpu": "Some CPU",
        "texts_per_second": {"torch": 40.0, "torch-bf16": 90.0},
        "unmeasured": ["onnx-int8"],
    }
    assert _encoder_choice(record) == (
        "torch-bf16 (measured on Some CPU: torch 40/s, torch-bf16 90/s; onnx-int8 not yet: a larger run measures it)"
    )
    assert "not yet" not in _encoder_choice({**record, "unmeasured": []})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "owls", "--index", "{tmp}/none"], "Error: no index at {tmp}/none; run `searcher index DIR` first"),
        (["info", "--index", "{tmp}/none"], "Error: no index at {tmp}/none; run `searcher index DIR` first"),
        (["query", "  ", "--index", "{idx}"], "Error: query is empty; pass some text to search for"),
        (["query", "owls", "--index", "{idx}", "-k", "0"], "Error: k must be at least 1, got 0"),
        (["query", "owls", "--index", "{idx}", "--shortlist", "0"], "Error: shortlist must be at least 1, got 0"),
        (["index", "{tmp}/missing", "--index", "{idx}"], "Error: no such file or folder: {tmp}/missing"),
        (["index", "{tmp}/empty", "--index", "{idx}"], "Error: no documents to index in {tmp}/empty"),
        (["index", "{tmp}/docs", "--index", "{idx}", "--chunk-tokens", "4"], "Error: chunk_tokens must be at least 16"),
        (
            ["index", "{tmp}/docs", "--index", "{idx}", "--chunk-tokens", "999"],
            "exceeds the model's max_seq_length of 64",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, indexed, args, message):
    (tmp_path / "empty").mkdir()
    fill = {"tmp": tmp_path, "idx": indexed}
    result = run(*[a.format(**fill) for a in args])
    assert result.exit_code == 2
    assert message.format(**fill) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unreadable_folder_is_a_one_line_error(tmp_path):
    from conftest import run_unprivileged, write_corpus

    corpus = write_corpus(tmp_path / "docs")
    corpus.chmod(0)  # a real folder without read permission; the child runs as a user it applies to
    child = run_unprivileged(
        "import sys, searcher.indexer, searcher.search\n"
        "from click.testing import CliRunner\n"
        "from fakes import FakeEncoder\n"
        "from searcher.cli import cli\n"
        "searcher.indexer.load_encoder = lambda name: FakeEncoder()\n"
        "result = CliRunner().invoke(cli, ['index', sys.argv[1], '--index', sys.argv[2]])\n"
        "print(result.exit_code); print(result.output, end='')\n",
        corpus,
        tmp_path / "idx",
    )
    corpus.chmod(0o755)
    assert child.returncode == 0, child.stderr
    code, *output = child.stdout.splitlines()
    assert code == "2"
    assert output == [f"Error: cannot read folder {corpus}: Permission denied"]


def test_bad_choice_is_a_usage_error(indexed):
    result = run("query", "owls", "--index", indexed, "--mode", "fast")
    assert result.exit_code == 2 and "'fast' is not one of" in result.output


@pytest.mark.model
def test_model_that_cannot_be_loaded(tmp_path, corpus):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    for model in (str(not_a_model), "no-such-org/no-such-model"):
        result = run("index", corpus, "--index", tmp_path / "idx", "--model", model, "-q")
        assert result.exit_code == 2
        assert result.output.startswith(f"Error: could not load model '{model}'")
        assert "pass a local sentence-transformers directory or a model name that is available offline" in result.output
        assert len(result.output.strip().splitlines()) == 1
    missing = run("index", corpus, "--index", tmp_path / "idx", "--model", tmp_path / "no-such-folder", "-q")
    assert missing.exit_code == 2 and missing.output.strip().splitlines() == [
        f"Error: no model at {tmp_path / 'no-such-folder'}: no such file or folder; "
        "check the path, or pass a model name"
    ]
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_help_ends_with_an_example():
    for command in ([], ["index"], ["query"], ["info"]):
        result = run(*command, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.output


def test_index_help_names_every_format_it_reads():
    from searcher.ingest import FORMATS

    shown = " ".join(run("index", "--help").output.lower().split())
    for kind in set(FORMATS.values()) - {"text"}:
        suffixes = [s for s, k in FORMATS.items() if k == kind]
        assert any(s in shown or s[1:] in shown for s in suffixes), (kind, suffixes)


def test_indexes_are_named_in_the_home_folder_and_found_from_anywhere(tmp_path, corpus, use_fake_encoder, monkeypatch):
    import os

    home = tmp_path / "home"
    monkeypatch.setenv("SEARCHER_HOME", str(home))
    assert run("index", corpus, "--chunk-tokens", 32, "--overlap-tokens", 4, "-q").exit_code == 0
    assert (home / "default" / "manifest.json").is_file(), "no --index: the default index in the home"
    assert run("index", corpus, "--index", "notes", "-q").exit_code == 0
    monkeypatch.chdir(tmp_path)
    assert run("query", "owls", "--index", "notes").exit_code == 0
    os.chdir("/")
    assert "birds.md" in run("query", "owls").stdout, "found from any folder"
    listing = run("list").stdout
    assert "default" in listing and "notes" in listing
    assert run("query", "owls", "--index", "no such").exit_code == 2
    for command, fix in (
        ("update", "searcher update --index notes"),
        ("index", "searcher update --index notes re-scans its sources"),
        ("remove", "searcher remove PATH --index notes"),
    ):  # an index's name where a path goes (as `searcher info notes` takes it)
        named = run(command, "notes")
        assert named.exit_code == 2 and f"notes is an index, not a path: {fix}" in named.output, command
    assert run("update", "--index", "notes", "-q").exit_code == 0


def test_remove_a_vanished_source_and_update_every_source(tmp_path, corpus, use_fake_encoder):
    import shutil

    other = write_corpus(tmp_path / "other", {"penguins.txt": "Penguins swim in cold water."})
    idx = tmp_path / "idx"
    for source in (corpus, other):
        assert run("index", source, "--index", idx, "--chunk-tokens", 32, "--overlap-tokens", 4, "-q").exit_code == 0
    assert str(other) in run("list", "--index", idx).stdout == run("list", idx).stdout
    shutil.rmtree(other)
    (corpus / "astronomy.txt").write_text("The moon has craters and no air at all.")
    result = run("update", "--index", idx, "-q")  # a missing source is kept and reported: only remove takes it out
    assert result.exit_code == 2 and f"{other} is missing" in result.stderr
    assert f"{corpus}: 1 indexed" in result.stdout
    assert "penguins.txt" in run("list", "--index", idx, "--files").stdout
    assert run("remove", other, "--index", idx).exit_code == 0
    listing = run("list", "--index", idx, "--files").stdout
    assert str(other) not in listing and "astronomy.txt" in listing
    result = run("remove", corpus / "nested", "--index", idx)
    assert result.exit_code == 0 and "1 file removed" in result.stdout
    assert "birds.md" not in run("list", "--index", idx, "--files").stdout
    result = run("remove", tmp_path / "never", "--index", idx)
    assert result.exit_code == 2 and "nothing in the index" in result.output
    assert run("index", corpus / "cooking.md", "--index", idx, "-q").exit_code == 0  # a file by name: a source too
    listing = run("list", idx).stdout
    assert f"  {corpus}: 3 files" in listing and f"  {corpus / 'cooking.md'}: 1 file," in listing, "counted once"


def test_update_named_paths_only(tmp_path, corpus, use_fake_encoder):
    """`searcher update PATH...` looks at the paths named (new, edited, deleted) and nothing else; a path under
    no source is one clear error that changes nothing."""
    idx = tmp_path / "idx"
    assert run("index", corpus, "--index", idx, "--chunk-tokens", 32, "--overlap-tokens", 4, "-q").exit_code == 0
    (corpus / "astronomy.txt").write_text("The moon has craters and no air at all.")
    (corpus / "python.rst").unlink()
    (corpus / "cooking.md").write_text("# Cooking rice\n\nRinse the rice.\n")  # not named: not looked at
    result = run("update", corpus / "astronomy.txt", corpus / "python.rst", "--index", idx, "-q")
    assert result.exit_code == 0, result.output
    assert f"{corpus}: 1 indexed, 3 unchanged, 1 removed" in result.stdout
    files = run("list", "--index", idx, "--files").stdout
    assert "python.rst" not in files and "cooking.md" in files
    assert "pasta" in run("query", "boil pasta water", "--index", idx, "-k", "1").stdout
    result = run("update", tmp_path / "elsewhere.md", "--index", idx)
    assert result.exit_code == 2 and "is not under any source" in result.stderr


def test_output_formats_for_scripts(indexed):
    import csv
    import io

    args = ["query", "owls hunt at night", "--index", indexed, "-k", 2, "--per-chunk"]
    rows = list(csv.reader(io.StringIO(run(*args, "--format", "csv").stdout)))
    assert rows[0][:4] == ["query", "rank", "score", "source"] and len(rows) == 3
    paths = run(*args, "--format", "paths").stdout.splitlines()
    assert len(paths) == len(set(paths)) >= 1 and paths[0].endswith("birds.md")
    grep = run(*args, "--format", "grep").stdout.splitlines()[0]
    path, line, passage = grep.split(":", 2)
    assert path.endswith("birds.md") and line.isdigit() and "Owls" in passage
    array = json.loads(run(*args, "--format", "json").stdout)
    assert [r["rank"] for r in array] == [1, 2] and array[0]["query"] == "owls hunt at night"
    # paths (-l) and grep list matches only, as grep does: the files of hits scored at least the no-match threshold
    every = json.loads(run("query", "owls hunt at night", "--index", indexed, "--format", "json").stdout)
    floor = calibration.NO_MATCH["hybrid"]
    matching = list(dict.fromkeys(r["source"] for r in every if r["score"] >= floor))
    assert 1 <= len(matching) < len(every), "the fixture's other documents rank below the threshold"
    assert run("query", "owls hunt at night", "--index", indexed, "-l").stdout.splitlines() == matching
    assert len(run("query", "owls hunt at night", "--index", indexed, "--format", "grep").stdout.splitlines()) == len(
        [r for r in every if r["score"] >= floor]
    )
    assert len(
        run("query", "owls hunt at night", "--index", indexed, "-l", "--min-score", 0).stdout.splitlines()
    ) == len(every)


def test_null_ends_each_path_with_nul_for_names_holding_a_newline(tmp_path, use_fake_encoder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "odd\nname.md").write_text("# Owls\n\nOwls hunt at night in the old barn.\n")
    (docs / "plain.md").write_text("# Bread\n\nKnead the dough and let it rise.\n")
    assert run("index", docs, "--index", tmp_path / "idx", "-q").exit_code == 0
    query = ["query", "owls hunt at night", "--index", tmp_path / "idx"]
    names = run(*query, "-l", "-0").stdout
    assert names.endswith("\0") and names.split("\0")[:-1] == [str(docs / "odd\nname.md")]
    path, rest = run(*query, "--format", "grep", "--null").stdout.split("\0")
    assert path == str(docs / "odd\nname.md") and rest.split(":")[0] == "3"
    refused = run(*query, "-0")
    assert refused.exit_code == 2 and "--null is for --format paths (-l) or grep" in refused.output


def test_every_command_and_option_has_help_and_summaries_are_whole():
    import click

    from searcher.cli import cli as group

    listing = CliRunner().invoke(group, ["--help"]).stdout.split("Commands:")[1]
    assert "..." not in listing and len(listing.strip().splitlines()) == len(group.commands), "summaries are whole"
    for name, command in group.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                assert param.help, f"{name} {param.opts} has no help"


def test_exit_statuses_follow_grep_and_a_query_starting_with_a_dash(indexed):
    assert run("query", "owls hunt at night", "--index", indexed, "--mode", "lexical").exit_code == 0
    assert run("query", "zqxjv wvkbrt", "--index", indexed).exit_code == 1, "no match"
    assert run("query", "owls", "--index", "no such index").exit_code == 2, "an error"
    typo = run("query", "owls", "--index", indexed, "--path", "nestd/*")  # a filter no file matches: said so
    assert typo.exit_code == 1 and "no file of the index matches --path nestd/*" in typo.stderr
    dashed = run("query", "-owls", "--index", indexed)
    assert dashed.exit_code == 2 and "-e QUERY" in dashed.output and "after --" in dashed.output
    flag = run("query", "--no-cache-dir", "--index", indexed)  # a flag's name, searched for
    assert flag.exit_code == 2 and "(searcher query -e --no-cache-dir)" in flag.output
    typo = run("query", "--mdoe", "lexical", "owls", "--index", indexed)
    assert typo.exit_code == 2 and "Did you mean" in typo.output and "-e QUERY" not in typo.output
    found = run("query", "--index", indexed, "-e", "-zqxjv owls", "--mode", "lexical", "--json")
    assert found.exit_code == 0 and "birds.md" in found.stdout, "-e takes a query that starts with -"
    batch = run("query", "-", "--index", indexed, "--json", "--mode", "lexical", input="zqxjv\nowls\n")
    records = [__import__("json").loads(line) for line in batch.stdout.splitlines()]
    assert (
        records[0] == {"query": "zqxjv", "no_match": True, "reason": NOTHING_RELEVANT} and records[1]["query"] == "owls"
    )


def test_ctrl_c_on_a_read_only_command_says_nothing_about_writes(indexed, monkeypatch):
    import searcher.search

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(searcher.search.Searcher, "search_batch", interrupted)
    result = run("query", "owls", "--index", indexed)
    assert result.exit_code == 130 and result.stderr.strip() == "interrupted"


def test_skipped_files_are_listed_once_one_per_line_and_q_silences_them(tmp_path, use_fake_encoder):
    from conftest import write_corpus

    docs = write_corpus(
        tmp_path / "docs", {"a.txt": "Owls hunt at night.", **{f"b{i}.bin": b"\x00\x01" for i in range(12)}}
    )
    first = run("index", docs, "--index", tmp_path / "idx")
    listed = [line for line in first.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(listed) == 11 and listed[-1] == "skipped: ... and 2 more (-v lists them)", first.stderr
    assert "\r" not in first.stderr and "scanning" not in first.stderr, "no progress bars when stderr is not a terminal"
    again = run("index", docs, "--index", tmp_path / "idx")
    assert "skipped: " not in again.stderr and "12 skipped" in again.stdout, "an unchanged run does not repeat it"
    (docs / "c.txt").write_text("Eagles nest on cliffs.")
    quiet = run("index", docs, "--index", tmp_path / "idx", "-q")
    assert "skipped: " not in quiet.stderr


def test_show_l_context_and_color(indexed):
    from pathlib import Path

    from searcher import open_index

    docs = Path(next(e.path for e in open_index(indexed).files() if e.path.endswith("astronomy.txt"))).parent
    shown = run("show", f"{docs / 'astronomy.txt'}:3", "-C", 1, "--index", indexed)
    assert shown.exit_code == 0 and shown.stdout.splitlines() == [
        "     2- ",
        "     3: Jupiter is the largest planet. Saturn has bright rings of ice.",
    ]
    assert "moon" in run("show", docs / "astronomy.txt", "--index", indexed).stdout
    past = run("show", f"{docs / 'astronomy.txt'}:999", "--index", indexed)
    assert past.exit_code == 2 and "line 999 is past its end" in past.output and len(past.output.splitlines()) == 1
    zero = run("show", f"{docs / 'astronomy.txt'}:0", "--index", indexed)
    assert zero.exit_code == 2 and "lines are numbered from 1" in zero.output
    outside = run("show", "/etc/passwd:1", "--index", indexed)
    assert outside.exit_code == 2 and "not a file of this index" in outside.output
    files = run("query", "owls hunt at night", "--index", indexed, "-l", "--mode", "lexical")
    assert files.exit_code == 0 and files.stdout.splitlines()[0].endswith("birds.md")
    around = run("query", "Saturn rings", "--index", indexed, "-k", 1, "-C", 1, "--mode", "lexical").stdout
    assert "     3: Jupiter is the largest planet. Saturn has bright rings of ice." in around
    painted = run("query", "Saturn rings", "--index", indexed, "-k", 1, "--color", "always", "--mode", "lexical")
    assert "\x1b[35m" in painted.stdout and "\x1b[1;33m" in painted.stdout
    plain = run("query", "Saturn rings", "--index", indexed, "-k", 1, "--color", "never", "--mode", "lexical")
    assert "\x1b[" not in plain.stdout


def test_include_and_exclude_can_be_cleared_are_shown_and_do_not_survive_a_rebuild(tmp_path, use_fake_encoder):
    from conftest import write_corpus

    docs = write_corpus(tmp_path / "docs", {"a.md": "Owls hunt at night.", "b.txt": "Eagles nest on cliffs."})
    idx = tmp_path / "idx"
    assert "1 indexed" in run("index", docs, "--index", idx, "--exclude", "*.txt", "-q").stdout
    assert "exclude     *.txt" in run("info", "--index", idx).stdout
    assert "0 indexed, 1 unchanged" in run("index", docs, "--index", idx, "-q").stdout, "kept by the index"
    cleared = run("index", docs, "--index", idx, "--exclude", "", "-q")
    assert cleared.exit_code == 0 and "1 indexed, 1 unchanged" in cleared.stdout
    assert "exclude " not in run("info", "--index", idx).stdout
    run("index", docs, "--index", idx, "--include", "*.md", "-q")
    assert "2 indexed" in run("index", docs, "--index", idx, "--rebuild", "-q").stdout, "a rebuild starts over"
    run("index", docs, "--index", "named", "-q")
    assert str(docs) in run("list").stdout, "list names each index's sources"


def test_searcher_model_in_the_environment_does_not_break_queries(indexed, monkeypatch):
    monkeypatch.setenv("SEARCHER_MODEL", "some-other/model-for-indexing")
    result = run("query", "owls hunt at night", "--index", indexed, "--mode", "lexical")
    assert result.exit_code == 0 and "birds.md" in result.stdout


def test_several_indexes_are_searched_at_once_hits_merged_by_score(tmp_path, use_fake_encoder):
    from conftest import write_corpus

    birds = write_corpus(tmp_path / "birds", {"owls.md": "Owls hunt mice at night in the forest."})
    sky = write_corpus(tmp_path / "sky", {"moon.md": "The moon has craters and no air."})
    assert run("index", birds, "--index", "birds", "-q").exit_code == 0
    assert run("index", sky, "--index", "sky", "-q").exit_code == 0
    both = run("query", "owls moon craters", "--index", "birds", "--index", "sky", "--mode", "lexical", "--json")
    sources = [__import__("json").loads(line)["source"] for line in both.stdout.splitlines()]
    assert both.exit_code == 0 and {s.rsplit("/", 1)[1] for s in sources} == {"owls.md", "moon.md"}
    scores = [__import__("json").loads(line)["score"] for line in both.stdout.splitlines()]
    assert scores == sorted(scores, reverse=True), "merged by score"
    everywhere = run("query", "moon craters", "--all", "--mode", "lexical", "-k", 1)
    assert everywhere.exit_code == 0 and "moon.md" in everywhere.stdout
    assert run("query", "zqxjv", "--all").exit_code == 1, "no match in any index"
    from searcher.home import home

    (home() / "sky" / "manifest.json").write_text("{damaged")
    unfinished = home() / "later"
    (unfinished / "pending").mkdir(parents=True)
    (unfinished / ".searcher-index").write_bytes((home() / "birds" / ".searcher-index").read_bytes())
    rest = run("query", "owls", "--all", "--mode", "lexical", "-k", 1)
    assert "owls.md" in rest.stdout, "one index that cannot be searched does not hide the others"
    assert "warning: skipped sky: " in rest.stderr and "notice: skipped later: its first build stopped" in rest.stderr
    assert rest.exit_code == 2, "an error, as grep's, after the hits"
    named = run("query", "owls", "--index", "sky")
    assert named.exit_code == 2 and "is damaged" in named.output and "skipped" not in named.output, "named: an error"
    table = run("list").stdout.splitlines()  # the listing says the same
    assert any(line.startswith("sky ") and "unreadable: " in line for line in table)
    assert any(line.startswith("later ") and "unfinished: its first build stopped" in line for line in table)
    listed = {r["name"]: r for r in json.loads(run("list", "--json").stdout)}
    assert listed["birds"]["documents"] == 1 and listed["birds"]["sources"] == [str(birds)]
    assert listed["later"] == {"name": "later", "path": str(home() / "later"), "unfinished": True}
    assert "error" in listed["sky"] and "documents" not in listed["sky"]
    one = json.loads(run("list", "birds", "--json", "--files").stdout)
    assert one["sources"] == [{"path": str(birds), "files": 1, "documents": 1, "chunk_ids": 1, "on_disk": True}]
    assert one["files"] == [{"path": str(birds / "owls.md"), "documents": 1}]


def test_a_hits_path_is_shown_relative_or_whole_whichever_is_shorter(tmp_path, monkeypatch):
    import os

    from searcher.render import _display_path

    inside = tmp_path / "a" / "docs" / "guide.md"
    (tmp_path / "a" / "docs").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    assert _display_path(str(inside)) == os.path.join("docs", "guide.md")
    (tmp_path / "a" / "other").mkdir()
    monkeypatch.chdir(tmp_path / "a" / "other")
    assert _display_path(str(inside)) == os.path.join("..", "docs", "guide.md")  # a sibling: still shorter
    monkeypatch.chdir("/usr")  # from another tree, ../tmp/.../guide.md is longer than the path itself
    assert os.path.relpath(inside).startswith("..") and _display_path(str(inside)) == str(inside)


def test_shell_completion_offers_the_named_indexes(tmp_path, corpus, use_fake_encoder, monkeypatch):
    monkeypatch.setenv("SEARCHER_HOME", str(tmp_path / "home"))
    for name in ("notes", "news", "work"):
        assert run("index", corpus, "--index", name, "-q").exit_code == 0

    def complete(words: str) -> list[str]:
        env = {"_SEARCHER_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        result = CliRunner().invoke(cli, [], prog_name="searcher", env=env)
        return result.stdout.split()

    assert complete("searcher query owls --index n") == ["plain,news", "plain,notes"]
    assert complete("searcher info w") == ["plain,work"]
    assert complete("searcher drop no") == ["plain,notes"]
    assert complete("searcher query owls --index ./no") == ["dir,./no"], "a path completes as a folder"
