"""Shared fixtures: small deterministic settings, a built seed index, the Flask app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from karabakh_qa.config import PROJECT_ROOT, Settings
from karabakh_qa.embed import HashEmbedder
from karabakh_qa.service import SearchService
from karabakh_qa.web import create_app

SEEDS = PROJECT_ROOT / "seeds"


def make_settings(tmp: Path, articles: Path | None = None, **kw) -> Settings:
    """Settings over the hash embedder. Its passages are embedded whole, as the exact
    rankings of these tests were written for (the product default, the mean of the
    sentences' vectors, has tests of its own: tests/store/test_passage_vectors.py;
    the real model ranks with it in tests/test_model.py)."""
    kw.setdefault("passage_vectors", "model")
    return Settings(
        articles_dir=articles or tmp / "articles",
        index_dir=tmp / "index",
        cache_dir=tmp / "cache",
        model_name="hash-bow-64",
        **kw,
    )


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture(scope="session")
def seed_template(tmp_path_factory) -> Settings:
    """The seed articles and their index, built once per test run: each test gets
    copies (``copy2`` keeps the files' times, so the copied index is up to date with
    the copied folder), not a build of its own."""
    root = tmp_path_factory.mktemp("seed-template")
    shutil.copytree(SEEDS, root / "articles")
    settings = make_settings(root)
    SearchService(settings, HashEmbedder(64)).build()
    return settings


@pytest.fixture
def seed_dir(tmp_path: Path, seed_template: Settings) -> Path:
    folder = tmp_path / "articles"
    shutil.copytree(seed_template.articles_dir, folder)
    return folder


@pytest.fixture
def seed_settings(tmp_path: Path, seed_dir: Path) -> Settings:
    return make_settings(tmp_path, seed_dir)


@pytest.fixture
def seed_service(
    seed_settings: Settings, seed_template: Settings, embedder: HashEmbedder
) -> SearchService:
    shutil.copytree(seed_template.index_dir, seed_settings.index_dir)
    return SearchService(seed_settings, embedder)


@pytest.fixture
def app(seed_settings: Settings, seed_service: SearchService):
    return create_app(seed_settings, service=seed_service)


@pytest.fixture
def client(app):
    return app.test_client()


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, str):
        path.write_bytes(text.encode("utf-8"))
    else:
        path.write_bytes(text)
    return path
