"""Text to vectors: the embedder models (models.py) and the inference backends
they run on (backends.py)."""

from .models import (
    Embedder,
    HashEmbedder,
    SentenceTransformerEmbedder,
    TokenCounter,
    load_embedder,
    model_path,
    sha256_file,
)

__all__ = [
    "Embedder",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "TokenCounter",
    "load_embedder",
    "model_path",
    "sha256_file",
]
