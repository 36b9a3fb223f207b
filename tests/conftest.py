from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# No test may reach a model hub: fail fast instead of retrying for a minute.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeEncoder  # noqa: E402

from searcher import IndexConfig  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TOPICS = {
    "cooking.md": "# Cooking pasta\n\nBoil water with salt. Add the pasta and stir.\n\n"
    "Drain the pasta when it is al dente. Serve with tomato sauce and basil.\n",
    "astronomy.txt": "The moon orbits the earth. Telescopes reveal craters on the moon.\n\n"
    "Jupiter is the largest planet. Saturn has bright rings of ice.\n",
    "gardening.html": "<html><head><title>Growing tomatoes</title><script>var x = 'tomato';</script></head>"
    "<body><nav>Home | About</nav><main><h1>Growing tomatoes</h1><p>Plant tomatoes in full sun.</p>"
    "<p>Water the soil deeply twice a week.</p></main><footer>Copyright</footer></body></html>",
    "python.rst": "Reading files\n=============\n\nUse open() to read a file line by line.\n\n"
    "The with statement closes the file for you.\n",
    "nested/birds.md": "# Birds\n\nOwls hunt at night. Sparrows eat seeds.\n\nEagles build large nests on cliffs.\n",
}


def write_corpus(root: Path, files: dict[str, str | bytes] = TOPICS) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _searcher_home(tmp_path_factory, monkeypatch):
    """Named indexes go to a temporary home, never the user's ~/.local/share/searcher."""
    monkeypatch.setenv("SEARCHER_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("SEARCHER_INDEX", raising=False)


@pytest.fixture
def fake() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def fake_config(fake) -> IndexConfig:
    # float32: logic tests compare stored vectors exactly; the other storage types have their own tests
    return IndexConfig(model=fake.info.name, chunk_tokens=32, overlap_tokens=4, full_storage="float32")


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def use_fake_encoder(monkeypatch, fake):
    """Make every model name load the fake encoder (for CLI tests)."""
    import searcher.evaluate
    import searcher.indexer
    import searcher.search
    import searcher.watch

    for module in (searcher.indexer, searcher.search, searcher.evaluate, searcher.watch):
        monkeypatch.setattr(module, "load_encoder", lambda name: fake)
    return fake


@pytest.fixture(scope="session")
def minilm():
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    from searcher.encoder import load_encoder

    return load_encoder("sentence-transformers/all-MiniLM-L6-v2")


def run_unprivileged(code: str, *args) -> subprocess.CompletedProcess:
    """Run Python `code` in a child that file permissions apply to. Root reads a chmod 000 folder, so as root the
    child runs without the capabilities that bypass permissions (setpriv, util-linux). The child can import
    searcher and tests/fakes."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv (util-linux): cannot make a folder unreadable")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    prelude = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
    return subprocess.run(
        [*prefix, sys.executable, "-c", prelude + code, *map(str, args)], capture_output=True, text=True, timeout=120
    )
