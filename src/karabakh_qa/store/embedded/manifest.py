"""The generation manifest: a typed, versioned description of one index state.

``index/CURRENT`` names the serving manifest ``gen-NNNNNN.json``. A manifest
lists the immutable segments of the generation, each with the deletion file
that hides its removed rows, plus generation-wide files: the BM25 document
frequency histogram and the near-duplicate group overlay. Switching generations
is one atomic replace of ``CURRENT``; a manifest is never edited in place.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import IndexUnavailable
from . import files

SCHEMA_VERSION = 4  # 4: the relation table (relations-G.npy)
CURRENT = "CURRENT"


class IndexCorrupt(IndexUnavailable):
    """A file of the index is missing, truncated or unreadable."""


class IndexOutdated(IndexUnavailable):
    """The index was written by another version of this program."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights_sha256: str
    dim: int
    max_tokens: int
    embed_context: bool
    backend: str = "torch"  # Embedder.backend_id: "torch" or an int8 graph and its hash
    passage_vectors: str = "model"  # Settings.passage_vectors (before it: the model's)


@dataclass(frozen=True)
class Bm25Params:
    k1: float
    b: float
    epsilon: float
    context: bool


@dataclass(frozen=True)
class DedupParams:
    shingle: int
    jaccard: float
    bands: int
    rows_per_band: int


@dataclass(frozen=True)
class VectorCodec:
    """Vectors are stored as ``bits``-bit codes on a fixed range (the same for every
    segment, so merges copy codes and never re-quantise)."""

    kind: str  # "uniform"
    bits: int
    low: float
    high: float


@dataclass(frozen=True)
class SegmentRef:
    name: str  # folder seg-NNNNNN
    rows: int  # passages written in the segment
    deletes: str | None = None  # file of deleted rows, None when none are
    deleted: int = 0


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str
    sha256: str
    size: int = -1
    mtime_ns: int = -1


@dataclass(frozen=True)
class Manifest:
    generation: int
    built_at: str
    model: ModelInfo
    tokenizer: str
    bm25: Bm25Params
    dedup: DedupParams
    vectors: VectorCodec  # passage vectors
    sentences: VectorCodec  # sentence vectors
    segments: tuple[SegmentRef, ...] = ()
    live_passages: int = 0  # BM25 N over live rows
    total_length: int = 0  # sum of live rows' BM25 lengths
    live_articles: int = 0
    stats: str | None = None  # file with the document-frequency histogram
    groups: str | None = None  # file with the near-duplicate overlay
    relations: str | None = None  # file with the relations between articles
    skipped: tuple[SkippedFile, ...] = ()
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return manifest_name(self.generation)

    def files(self) -> set[str]:
        """Every top-level name of the index folder this generation needs."""
        names = {self.file_name}
        for seg in self.segments:
            names.add(seg.name)
            if seg.deletes:
                names.add(seg.deletes)
        names.update(x for x in (self.stats, self.groups, self.relations) if x)
        return names

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        """Parse and validate; anything unexpected is :class:`IndexCorrupt`."""
        try:
            raw = json.loads(text)
            if raw.get("schema_version") != SCHEMA_VERSION:
                raise IndexOutdated(
                    f"index schema {raw.get('schema_version')} is not {SCHEMA_VERSION} (built by "
                    "another version): run `karabakh-qa index --full`"
                )
            return cls(
                **{
                    **raw,
                    "model": ModelInfo(**raw["model"]),
                    "bm25": Bm25Params(**raw["bm25"]),
                    "dedup": DedupParams(**raw["dedup"]),
                    "vectors": VectorCodec(**raw["vectors"]),
                    "sentences": VectorCodec(**raw["sentences"]),
                    "segments": tuple(SegmentRef(**s) for s in raw["segments"]),
                    "skipped": tuple(SkippedFile(**s) for s in raw["skipped"]),
                }
            )
        except IndexUnavailable:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IndexCorrupt(
                f"index manifest {where} is unreadable ({exc}): run `karabakh-qa index --full`"
            ) from None


def manifest_name(generation: int) -> str:
    return f"gen-{generation:06d}.json"


def current_name(index_dir: Path) -> str | None:
    """The serving manifest's file name, or None when there is no index."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def read_manifest(index_dir: Path, name: str) -> Manifest:
    path = index_dir / name
    if path.is_dir():  # CURRENT named a generation folder: the layout before segments
        raise IndexOutdated(
            f"index in {index_dir} was built by an older version (one folder per "
            "generation): run `karabakh-qa index --full`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorrupt(f"index manifest {path} is unreadable ({exc})") from None
    return Manifest.from_json(text, str(path))


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    files.write_bytes_atomic(index_dir / manifest.file_name, manifest.to_json().encode("utf-8"))


def switch_current(index_dir: Path, manifest: Manifest) -> None:
    """Make ``manifest`` the serving generation: one atomic replace of CURRENT."""
    files.write_bytes_atomic(index_dir / CURRENT, (manifest.file_name + "\n").encode())
    files.fsync(index_dir)
