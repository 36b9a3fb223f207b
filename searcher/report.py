"""What an indexing run did: the report every write API returns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IndexReport:
    """What one `build_index` run did. File counts are for this run; documents and chunks are index totals."""

    index_dir: str
    indexed: int = 0  # new or changed files, (re)chunked in this run
    unchanged: int = 0
    skipped: int = 0  # unsupported, binary, undecodable or empty
    failed: int = 0  # could not be read (the previously indexed version, if any, is kept)
    removed: int = 0  # indexed before, gone now
    documents: int = 0
    chunks: int = 0
    embedded: int = 0  # chunks the model embedded in this run
    embedded_with: str = ""  # "torch", "torch-bf16", "onnx" or "onnx-int8" (choose_document_encoder), "ray: ..."
    reused: int = 0  # new chunks whose vectors were found already embedded
    projection: str = ""
    generation: int = 0  # the generation this run published (0: nothing changed, nothing written)
    synced: str = ""  # the qdrant backend: what the sync to the collection did
    warnings: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # every skipped file, with the reason
    missing: list[str] = field(default_factory=list)  # update_index: sources not found, kept as they were
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read", "chunk", "export", "embed", "write"), 0.0)
    )
    _skip_warnings: set[str] = field(default_factory=set, repr=False, compare=False)

    def skip(self, path: str, reason: str, *, warn: bool = False) -> None:
        """Count a file left out of the index, listed with the reason in `skipped_files`; `warn`: a reason a reader
        of `warnings` should see too (the file could not be read as its type)."""
        self.skipped += 1
        self.skipped_files.append(f"{path} ({reason})")
        if warn:
            warning = f"{path}: skipped, {reason}"
            self.warnings.append(warning)
            self._skip_warnings.add(warning)

    def unlisted_warnings(self) -> list[str]:
        """The warnings that do not repeat an entry of `skipped_files` (for output that lists those apart)."""
        return [w for w in self.warnings if w not in self._skip_warnings]
