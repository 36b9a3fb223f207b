"""Shared by the benchmark scripts: where data and caches live, machine facts, and RESULTS.md sections."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"  # indexes and embedding caches (untracked)
RESULTS = HERE / "RESULTS.md"
SHARED_DATA = HERE.parent.parent / "shared" / "data"
sys.path.insert(0, str(HERE.parent))


def require_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        sys.exit(f"{path} is missing: this benchmark reads ../shared/data/{name}")
    return path


def corpus_size(report) -> str:
    """'N documents in M chunks' of the index an EvalReport was measured on."""
    from searcher.store import read_manifest

    manifest = read_manifest(Path(report.index))
    return f"{manifest.documents:,} documents in {manifest.chunks:,} chunks"


# The instruction sets that decide which path is fastest here (bf16/int8 matrix units, AVX-512 widths).
FEATURES = {
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX512-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def machine() -> str:
    """The CPU as a reader can tell machines apart: model name, family/model, and the features that matter
    ("Intel(R) Xeon(R) Processor" alone names a dozen generations)."""
    cpu = "unknown CPU"
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.*)", info).group(1)
        family, model = (re.search(rf"{key}\s*:\s*(\d+)", info).group(1) for key in ("cpu family", "model"))
        flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split())
        cpu += (
            f" (family {family} model {model}; "
            + (", ".join(v for k, v in FEATURES.items() if k in flags) or "no AVX-512")
            + ")"
        )
    except (OSError, AttributeError):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for module in ("torch", "sentence_transformers", "faiss", "numpy", "onnxruntime"):
        with contextlib.suppress(ImportError):
            versions.append(f"{module} {__import__(module).__version__}")
    return f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM, Python {platform.python_version()}; " + ", ".join(
        versions
    )


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], HERE.parent), *sys.argv[1:]])


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section `name` of RESULTS.md, stamped with date, machine and command."""
    stamp = f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.\n\nCommand: `{command()}`\n"
    section = f"<!-- section:{name} -->\n## {title}\n\n{stamp}\n{body.strip()}\n<!-- /section:{name} -->"
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else "# Benchmark results\n\nWritten by the scripts in this folder; see README.md there.\n"
    )
    pattern = re.compile(rf"<!-- section:{name} -->.*?<!-- /section:{name} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    print(section)


def top10_agreement(found, truth) -> float:
    """Mean share of each query's `truth` ids (its top 10) that `found` (rows of ids, best first) also holds."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))
