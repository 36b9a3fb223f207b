"""`searcher serve` and `searcher mcp`: the real server in a subprocess on a free 127.0.0.1 port, spoken to over
HTTP (httpx), through the MCP client library over stdio, and in a headless Chromium (skipped with the reason where
none is installed). The index is built with the bundled model, so the server answers with its exported,
torch-free encoder, as it does for a user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import write_corpus

from searcher import build_index

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow
STOP_AFTER = 300  # every server stops itself after this many seconds, whatever happens to the test


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, index_dirs, home: Path, token: str | None = None, extra: list[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SEARCHER_HOME": str(home)}
        env.pop("SEARCHER_TOKEN", None)
        if token:
            env["SEARCHER_TOKEN"] = token
        args = [a for d in index_dirs for a in ("--index", str(d))]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "searcher",
                "serve",
                *args,
                "--port",
                str(self.port),
                "--stop-after",
                str(STOP_AFTER),
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not answer /health within 60 s")

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@pytest.fixture(scope="module")
def served(tmp_path_factory, minilm):
    """(home, docs, index folder) of a small index built with the bundled model (and its ONNX export)."""
    home = tmp_path_factory.mktemp("home")
    docs = write_corpus(tmp_path_factory.mktemp("served") / "docs")
    index_dir = docs.parent / "index"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHER_HOME", str(home))
        build_index(docs, index_dir, encoder=minilm)
    return home, docs, index_dir


@pytest.fixture(scope="module")
def server(served):
    home, docs, index_dir = served
    s = Server([index_dir], home)
    yield s
    err = s.stop()
    assert "Traceback" not in err, err


def test_search_get_post_batch_and_the_same_records_as_the_cli(server, served):
    home, docs, index_dir = served
    got = httpx.get(server.url + "/search", params={"query": "planets with rings", "k": 3}).json()
    assert got["index"] == "index" and got["generation"] >= 1 and not got["no_match"]
    assert httpx.get(server.url + "/search", params={"q": "planets with rings", "k": 3}).json() == got, "q= alike"
    top = got["hits"][0]
    assert (
        top["source"] == str(docs / "astronomy.txt") and (top["line"], top["end_line"]) == (3, 3) and top["rank"] == 1
    )
    assert "Saturn" in top["snippet"] and top["highlights"]
    env = {**os.environ, "SEARCHER_HOME": str(home)}
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "searcher",
            "query",
            "planets with rings",
            "-k",
            "3",
            "--index",
            str(index_dir),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert got["hits"] == __import__("json").loads(cli.stdout)  # the same JSON records as `searcher query`

    posted = httpx.post(server.url + "/search", json={"query": "planets with rings", "k": 3}).json()
    assert posted["hits"] == got["hits"]
    filtered = httpx.get(server.url + "/search", params=[("query", "water"), ("type", "md"), ("path", "*/cooking*")])
    assert {h["source"] for h in filtered.json()["hits"]} == {str(docs / "cooking.md")}
    chunks = httpx.post(server.url + "/search", json={"query": "pasta", "per_doc": False, "mode": "lexical"}).json()
    assert len(chunks["hits"]) >= 1 and all("more" not in h for h in chunks["hits"])
    batch = httpx.post(server.url + "/search/batch", json={"queries": ["owls at night", "tomato soil"], "k": 2}).json()
    assert [r["hits"][0]["source"] for r in batch["results"]] == [
        str(docs / "nested" / "birds.md"),
        str(docs / "gardening.html"),
    ]
    nothing = httpx.get(server.url + "/search", params={"query": "xqzvwk flibbertigibbet"}).json()
    assert nothing["no_match"] is True and all(h["score"] < 0.05 for h in nothing["hits"]), "no hit dressed as 1.0"
    assert nothing["reason"] == "nothing in the index is likely to be relevant" and "reason" not in got
    unheld = httpx.get(server.url + "/search", params={"query": '"owls on the moon"'}).json()
    assert unheld["no_match"] is True and unheld["reason"].startswith('no passage holds "owls on the moon"')
    assert 0 < top["score"] < 1, "a probability"
    strict = httpx.get(server.url + "/search", params={"query": "planets with rings", "min_score": 0.999}).json()
    assert strict["hits"] == [], "min_score filters on the calibrated score"
    for bad in ("2", "nan"):
        answer = httpx.get(server.url + "/search", params={"query": "planets", "min_score": bad})
        assert answer.status_code == 422 and "min_score" in answer.json()["error"], bad
    phrase = httpx.get(server.url + "/search", params={"query": 'water -"the soil"', "mode": "dense"}).json()
    assert phrase["hits"] and str(docs / "gardening.html") not in {h["source"] for h in phrase["hits"]}
    recent = httpx.get(server.url + "/search", params={"query": "water", "changed_within": "30d"}).json()
    old = httpx.post(server.url + "/search", json={"query": "water", "changed_before": "2000-01-01"}).json()
    assert recent["hits"] and old["hits"] == [], "the files were written today"


def test_concurrent_requests_get_the_answers_sequential_ones_do(server):
    from concurrent.futures import ThreadPoolExecutor

    queries = [
        "planets with rings",
        "owls hunt at night",
        "boil pasta",
        "tomatoes in full sun",
        "read a file",
        "water the soil",
        "eagles nests",
        "telescopes craters",
    ] * 6
    with httpx.Client(base_url=server.url, timeout=60) as client:
        expected = {
            q: client.get("/search", params={"query": q, "per_doc": False}).json()["hits"] for q in set(queries)
        }

        def ask(q):
            r = client.get("/search", params={"query": q, "per_doc": False})
            return q, r.status_code, r.json()

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, queries))
    assert all(status == 200 for _, status, _ in answers), [a for a in answers if a[1] != 200][:2]
    assert all(body["hits"] == expected[q] for q, _, body in answers)


def test_indexes_health_docs_page_and_document(server, served):
    _, docs, index_dir = served
    (listed,) = httpx.get(server.url + "/indexes").json()["indexes"]
    assert listed["name"] == "index" and listed["documents"] == 5 and listed["path"] == str(index_dir)
    assert listed["model"] == "sentence-transformers/all-MiniLM-L6-v2" and listed["updated"]
    assert httpx.get(server.url + "/health").json() == {"status": "ok", "indexes": ["index"]}
    assert "/search" in httpx.get(server.url + "/openapi.json").json()["paths"]
    assert httpx.get(server.url + "/docs").status_code == 404, "no page that loads Swagger UI from a CDN"
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert httpx.get(server.url + "/static/app.js").status_code == 200
    lines = httpx.get(
        server.url + "/document", params={"source": str(docs / "astronomy.txt"), "start_line": 3, "end_line": 3}
    ).json()
    assert lines["text"] == "Jupiter is the largest planet. Saturn has bright rings of ice."
    outside = httpx.get(server.url + "/document", params={"source": "/etc/passwd"})
    assert outside.status_code == 400 and "not a file of this index" in outside.json()["error"]
    past = httpx.get(server.url + "/document", params={"source": str(docs / "astronomy.txt"), "start_line": 999})
    assert past.status_code == 400 and "is past its end" in past.json()["error"], "not an empty stretch of the file"


@pytest.mark.parametrize(
    "method, path, payload, status, words",
    [
        ("post", "/search", b'{"query": "x", ', 400, "not valid JSON"),
        ("post", "/search", {"query": ""}, 422, "query"),
        ("post", "/search", {"query": "   "}, 400, "query is empty"),
        ("post", "/search", {"query": "x", "k": 0}, 422, "k"),
        ("post", "/search", {"query": "x", "k": 101}, 422, "k"),
        ("get", "/search?query=x&k=1000", None, 422, "k"),
        ("get", "/search", None, 422, "query"),
        ("get", "/search?query=x&q=y", None, 422, "once"),
        ("post", "/search", {"query": "x", "index": "nope"}, 404, "no index named 'nope'"),
        ("post", "/search", {"query": "x", "colour": "red"}, 422, "colour"),
        ("post", "/search", {"query": "x", "mode": "fuzzy"}, 422, "mode"),
        ("get", "/search?query=x&changed_within=soon", None, 400, "cannot read 'soon' as a time"),
        ("post", "/search", {"query": "x", "changed_before": "y" * 65}, 422, "changed_before"),
        ("post", "/search/batch", {"queries": []}, 422, "queries"),
        ("post", "/search", {"query": "x" * 300_000}, 413, "request body over"),
        ("get", "/nowhere", None, 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_4xx_and_one_line_of_json(server, method, path, payload, status, words):
    if isinstance(payload, bytes):
        response = httpx.post(server.url + path, content=payload, headers={"content-type": "application/json"})
    elif method == "post":
        response = httpx.post(server.url + path, json=payload)
    else:
        response = httpx.get(server.url + path)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and words in body["error"] and "\n" not in body["error"]


def test_a_token_is_required_when_set_and_beyond_loopback(served):
    from click.testing import CliRunner

    from searcher.cli import cli

    home, _, index_dir = served
    refused = CliRunner().invoke(
        cli, ["serve", "--index", str(index_dir), "--host", "0.0.0.0"], env={"SEARCHER_TOKEN": None}
    )
    assert refused.exit_code == 2 and "set SEARCHER_TOKEN" in refused.output  # refused before binding anything
    s = Server([index_dir], home, token="s3cret")
    try:
        url = s.url + "/search?query=moon"
        assert httpx.get(url).status_code == 401
        wrong = httpx.get(url, headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401 and "SEARCHER_TOKEN" in wrong.json()["error"]
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(s.url + "/health").status_code == 200  # liveness stays open
    finally:
        s.stop()


def test_a_foreign_host_or_origin_is_refused_as_dns_rebinding_would_send_it(server, served):
    _, docs, _ = served
    document = {"source": str(docs / "astronomy.txt")}
    rebound = httpx.get(server.url + "/document", params=document, headers={"Host": f"evil.example:{server.port}"})
    assert rebound.status_code == 403 and "--allow-host evil.example" in rebound.json()["error"]
    assert "Jupiter" not in rebound.text
    searched = httpx.get(server.url + "/search", params={"query": "moon"}, headers={"Host": "evil.example"})
    assert searched.status_code == 403
    foreign = httpx.post(server.url + "/search", json={"query": "moon"}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "Origin" in foreign.json()["error"]
    other_port = httpx.get(server.url + "/search", params={"query": "moon"}, headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status_code == 403
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert httpx.get(server.url + "/document", params=document, headers={"Host": host}).status_code == 200
    own = httpx.post(
        server.url + "/search", json={"query": "moon"}, headers={"Origin": f"http://localhost:{server.port}"}
    )
    assert own.status_code == 200
    assert httpx.get(server.url + "/health", headers={"Host": "evil.example"}).status_code == 200


def test_a_name_passed_with_allow_host_is_served_and_a_token_keeps_both_checks(served):
    home, _, index_dir = served
    s = Server([index_dir], home, token="s3cret", extra=["--allow-host", "search.internal"])
    try:
        auth = {"Authorization": "Bearer s3cret"}
        url = s.url + "/search?query=moon"
        assert httpx.get(url, headers={**auth, "Host": f"search.internal:{s.port}"}).status_code == 200
        assert httpx.get(url, headers={**auth, "Host": "evil.example"}).status_code == 403
        assert httpx.get(url, headers={**auth, "Origin": "http://evil.example"}).status_code == 403
    finally:
        s.stop()


def test_every_index_at_once_and_documents_from_any_index(tmp_path, served, minilm):
    home, docs, index_dir = served
    other = write_corpus(tmp_path / "other", {"comets.md": "# Comets\n\nComets grow tails of dust near the sun.\n"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHER_HOME", str(home))
        build_index(other, tmp_path / "comets-index", encoder=minilm)
    s = Server([index_dir, tmp_path / "comets-index"], home)
    try:
        both = httpx.get(s.url + "/search", params={"query": "comets and planets with rings", "index": "*", "k": 4})
        body = both.json()
        assert both.status_code == 200 and body["index"] == "*" and "generation" not in body
        assert {h["index"] for h in body["hits"]} == {"index", "comets-index"}
        assert [h["score"] for h in body["hits"]] == sorted((h["score"] for h in body["hits"]), reverse=True)
        lines = httpx.get(s.url + "/document", params={"source": str(other / "comets.md"), "start_line": 3})
        assert lines.status_code == 200 and "tails of dust" in lines.json()["text"], "found in the second index"
        outside = httpx.get(s.url + "/document", params={"source": "/etc/passwd"})
        assert outside.status_code == 400 and "not a file of this index" in outside.json()["error"]
    finally:
        s.stop()


def test_a_chunked_body_over_the_cap_is_refused_without_being_read_whole(server):
    def body():
        for _ in range(200):  # 20 MB in 100 KB pieces, no Content-Length
            yield b"x" * 100_000

    response = httpx.post(server.url + "/search", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "request body over" in response.json()["error"]
    assert httpx.get(server.url + "/health").status_code == 200


def test_a_port_in_use_is_one_line_before_anything_claims_to_serve(server, served):
    home, _, index_dir = served
    taken = subprocess.run(
        [
            sys.executable,
            "-m",
            "searcher",
            "serve",
            "--index",
            str(index_dir),
            "--port",
            str(server.port),
            "--stop-after",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SEARCHER_HOME": str(home)},
    )
    assert taken.returncode == 2 and f"port {server.port} is in use; pass --port" in taken.stderr
    assert "serving" not in taken.stderr and "Traceback" not in taken.stderr and "Errno" not in taken.stderr


def test_the_server_switches_to_a_new_generation_without_a_failed_or_mixed_request(tmp_path, served, minilm):
    home, docs, _ = served
    mine = tmp_path / "docs"
    shutil.copytree(docs, mine)
    index_dir = tmp_path / "index"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHER_HOME", str(home))
        build_index(mine, index_dir, encoder=minilm)
        s = Server([index_dir], home)
        seen, errors, stop = [], [], threading.Event()

        def loop() -> None:
            with httpx.Client(base_url=s.url, timeout=10) as client:
                while not stop.is_set() and len(seen) < 20_000:
                    asked = time.monotonic()
                    response = client.get("/search", params={"query": "volcano magma eruption", "k": 3})
                    if response.status_code != 200:
                        errors.append(response.text)
                        continue
                    body = response.json()
                    seen.append(
                        (asked, body["generation"], any(h["source"].endswith("volcano.md") for h in body["hits"]))
                    )

        threads = [threading.Thread(target=loop) for _ in range(2)]
        try:
            for t in threads:
                t.start()
            time.sleep(1)
            (mine / "volcano.md").write_text("# Volcanoes\n\nMagma rises and the volcano erupts in an eruption.\n")
            build_index(mine, index_dir, encoder=minilm)
            published = time.monotonic()
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            s.stop()
    assert errors == []
    old = seen[0][1]
    new = old + 1
    assert {g for _, g, _ in seen} == {old, new}
    # Each response is from one generation: the old never has the new file, the new always has it.
    assert all(has == (g == new) for _, g, has in seen)
    # Requests asked more than a second after the new generation was published are answered from it.
    assert all(g == new for t, g, _ in seen if t > published + 1.0)
    assert sum(1 for t, g, _ in seen if t > published + 1.0) > 0
    assert not (index_dir / "gen-000001").exists()  # the old generation was collected


def test_mcp_tools_through_an_mcp_client(served):
    pytest.importorskip("mcp")
    import anyio
    from mcp import Client, StdioServerParameters

    home, docs, index_dir = served
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "searcher", "mcp", "--index", str(index_dir)],
        env={"SEARCHER_HOME": str(home), "HF_HUB_OFFLINE": "1"},
    )

    async def talk():
        async with Client(params, read_timeout_seconds=60) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            found = await client.call_tool("search", {"query": "where do owls hunt", "k": 2})
            nothing = await client.call_tool("search", {"query": "xqzvwk flibbertigibbet"})
            strict = await client.call_tool("search", {"query": "where do owls hunt", "min_score": 0.999})
            huge = await client.call_tool("search", {"query": "owls " * 1000})
            zero = await client.call_tool("search", {"query": "owls", "k": 0})
            schema = {t.name: t.input_schema for t in (await client.list_tools()).tools}
            lines = await client.call_tool(
                "get_document", {"source": str(docs / "nested" / "birds.md"), "start_line": 3, "end_line": 3}
            )
            refused = await client.call_tool("get_document", {"source": "/etc/passwd"})
            recent = await client.call_tool("search", {"query": "where do owls hunt", "changed_within": "30d"})
            ancient = await client.call_tool("search", {"query": "where do owls hunt", "changed_before": "2000-01-01"})
            unread = await client.call_tool("search", {"query": "owls", "changed_within": "lately"})
            dated = (recent, ancient, unread)
            return tools, found, lines, refused, nothing, strict, huge, zero, schema, dated

    tools, found, lines, refused, nothing, strict, huge, zero, schema, dated = anyio.run(talk)
    recent, ancient, unread = dated
    assert recent.structured_content["hits"] and ancient.structured_content["hits"] == [], "files changed today"
    assert unread.is_error and "cannot read 'lately' as a time" in str(unread.content)
    assert nothing.structured_content["no_match"] is True
    assert "no match for 'xqzvwk flibbertigibbet': nothing in the index is likely" in str(nothing.content)
    assert all(h["score"] < 0.05 for h in nothing.structured_content["hits"])
    assert strict.structured_content["hits"] == [] and not strict.is_error
    assert huge.is_error and "2000" in str(huge.content)
    assert zero.is_error, "k = 0 is refused, as HTTP refuses it"
    params = schema["search"]["properties"]
    assert params["k"]["minimum"] == 1 and params["k"]["maximum"] == 100 and params["k"]["description"]
    assert set(params["mode"]["enum"]) == {"hybrid", "dense", "lexical"} and all(
        p.get("description") for p in params.values()
    )
    record = found.structured_content["hits"][0]
    assert "text" not in record and set(record) >= {"source", "line", "end_line", "heading", "snippet", "score"}
    assert len(str(found.structured_content)) < 1200, "sized for an agent: the passage, not the chunk"
    assert found.content[0].text.startswith("1. ") and "{" not in found.content[0].text, "a listing, not the JSON again"
    assert {"search", "get_document"} <= tools
    hit = found.structured_content["hits"][0]
    assert hit["source"] == str(docs / "nested" / "birds.md") and hit["line"] == 3 and "Owls" in hit["snippet"]
    assert lines.structured_content["text"] == "Owls hunt at night. Sparrows eat seeds."
    assert refused.is_error and "not a file of this index" in str(refused.content)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_the_search_page_in_a_headless_browser(served, tmp_path, minilm):
    browser, driver = _chromium(), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no headless browser: apt-get install chromium chromium-driver (Debian) to run this test")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    home, docs, index_dir = served
    other = write_corpus(tmp_path / "other", {"comets.md": "# Comets\n\nComets grow tails of dust near the sun.\n"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEARCHER_HOME", str(home))
        build_index(other, tmp_path / "comets-index", encoder=minilm)
    server = Server([index_dir, tmp_path / "comets-index"], home)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)
    hits = (By.CSS_SELECTOR, "#results li.hit")
    try:
        chrome.set_page_load_timeout(30)
        chrome.get(server.url + "/")
        WebDriverWait(chrome, 20).until(lambda c: len(c.find_elements(By.CSS_SELECTOR, "#index option")) == 3)
        names = [o.get_attribute("textContent") for o in chrome.find_elements(By.CSS_SELECTOR, "#index option")]
        assert names == ["all 2 indexes", "index (5 documents)", "comets-index (1 document)"]
        box = chrome.find_element(By.ID, "query")
        box.send_keys("which planet has rings\n")
        WebDriverWait(chrome, 20).until(ec.presence_of_element_located(hits))
        first = chrome.find_elements(*hits)[0]
        where = first.find_element(By.CSS_SELECTOR, "a.where")
        assert where.text == f"{docs / 'astronomy.txt'}:3" and "/document?" in where.get_attribute("href")
        assert first.find_element(By.CSS_SELECTOR, ".from").text == "index", "all indexes: each hit names its own"
        assert "Saturn" in first.find_element(By.CSS_SELECTOR, ".snippet").text
        assert first.find_elements(By.CSS_SELECTOR, ".snippet mark")  # the query's words highlighted
        # The location opens the file in context, its line marked.
        where.click()
        marked = WebDriverWait(chrome, 20).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "#document .hit-line"))
        )
        assert marked.find_element(By.CSS_SELECTOR, ".number").text == "3" and "Saturn" in marked.text
        # A filter and an index from the page: only Markdown files of the first index; the URL keeps all of it.
        chrome.find_element(By.CSS_SELECTOR, "#options summary").click()
        chrome.find_element(By.ID, "type").send_keys("md")
        chrome.find_element(By.CSS_SELECTOR, "#index option[value='index']").click()
        chrome.find_element(By.ID, "mode").find_element(By.CSS_SELECTOR, "option[value='lexical']").click()
        box.clear()
        box.send_keys("water\n")

        def only_markdown(c):
            wheres = c.find_elements(By.CSS_SELECTOR, ".where")
            return (
                "from index" in c.find_element(By.ID, "status").text
                and wheres
                and all(w.text.split(":")[0].endswith(".md") for w in wheres)
            )

        # the page re-renders the list while the condition reads it: a vanished element means "look again"
        WebDriverWait(chrome, 20, ignored_exceptions=(StaleElementReferenceException,)).until(only_markdown)
        shown = [w.text for w in chrome.find_elements(By.CSS_SELECTOR, ".where")]
        state = chrome.execute_script("return location.search")
        for part in ("q=water", "index=index", "mode=lexical", "type=md"):
            assert part in state
        # A reload (or the link shared) restores the form and the same results.
        chrome.refresh()
        WebDriverWait(chrome, 20, ignored_exceptions=(StaleElementReferenceException,)).until(only_markdown)
        assert [w.text for w in chrome.find_elements(By.CSS_SELECTOR, ".where")] == shown
        assert chrome.find_element(By.ID, "type").get_attribute("value") == "md"
        assert chrome.find_element(By.ID, "mode").get_attribute("value") == "lexical"
        assert chrome.find_element(By.ID, "query").get_attribute("value") == "water"
        # A date filter: a span the files fall in keeps the results (and the URL keeps it); one it cannot read is
        # the server's one-line error.
        chrome.find_element(By.ID, "changed_within").send_keys("30d")
        chrome.find_element(By.ID, "query").send_keys("\n")
        WebDriverWait(chrome, 20).until(lambda c: "changed_within=30d" in c.execute_script("return location.search"))
        WebDriverWait(chrome, 20, ignored_exceptions=(StaleElementReferenceException,)).until(only_markdown)
        assert [w.text for w in chrome.find_elements(By.CSS_SELECTOR, ".where")] == shown
        chrome.find_element(By.ID, "changed_within").clear()
        chrome.find_element(By.ID, "changed_within").send_keys("lately\n")
        WebDriverWait(chrome, 20).until(lambda c: "cannot read 'lately'" in c.find_element(By.ID, "status").text)
        # No match says why: here, a quoted phrase no passage of the Markdown files (the type above) holds.
        chrome.find_element(By.ID, "changed_within").clear()
        box = chrome.find_element(By.ID, "query")
        box.clear()
        box.send_keys('"owls on the moon"\n')
        WebDriverWait(chrome, 20).until(
            lambda c: (
                'No match: no passage of the files searched holds "owls on the moon"'
                in c.find_element(By.ID, "status").text
            )
        )
        assert chrome.save_screenshot(str(tmp_path / "page.png"))
    finally:
        chrome.quit()
        server.stop()
