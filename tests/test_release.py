"""The release: the wheel and sdist build, and the built wheel installed into a fresh virtual environment runs the
main job (index a folder with the bundled model, answer a query) as its own `searcher` command.

The fresh environment gets searcher only from the wheel; its dependencies come from this test run's environment
through a path entry (as a user's environment would have them from PyPI), so that the test needs no network and
installs no torch. That the wheel's own `searcher` is the one running is checked, not assumed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from searcher import __version__
from searcher.errors import DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build", reason="the test extra installs build")
    out = tmp_path_factory.mktemp("dist")
    made = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    return out


def test_the_wheel_and_sdist_carry_the_package_its_page_and_the_distribution_name(dist):
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    assert wheel.name == f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "searcher/server/static/app.js" in names and "searcher/cli/__init__.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "corpus/")) for n in names)
    metadata = zipfile.ZipFile(wheel).read(f"{DISTRIBUTION.replace('-', '_')}-{__version__}.dist-info/METADATA")
    assert f"Name: {DISTRIBUTION}" in metadata.decode() and "Provides-Extra: serve" in metadata.decode()
    entry = zipfile.ZipFile(wheel).read(f"{DISTRIBUTION.replace('-', '_')}-{__version__}.dist-info/entry_points.txt")
    assert "searcher = searcher.cli:cli" in entry.decode()
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("/CHANGELOG.md") for n in tar.getnames())


def test_the_built_wheel_in_a_fresh_environment_indexes_and_answers(dist, tmp_path, corpus):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    fresh = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies from this environment, after the fresh one's own site-packages (so the wheel's searcher wins).
    (fresh / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("*.whl"))
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {**os.environ, "SEARCHER_HOME": str(tmp_path / "home"), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    command = str(venv / "bin" / "searcher")
    version = subprocess.run([command, "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"searcher {__version__} ({DISTRIBUTION})"
    where = subprocess.run(
        [python, "-c", "import searcher; print(searcher.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(fresh)), f"the wheel's searcher, not the checkout's: {where.stdout}"
    made = subprocess.run(
        [command, "index", str(corpus), "-q"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr[-2000:]
    found = subprocess.run(
        [command, "query", "growing tomatoes in the sun", "-k", "1", "--format", "grep"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert found.returncode == 0 and re.match(r".*gardening\.html:\d+:", found.stdout), found.stdout + found.stderr
