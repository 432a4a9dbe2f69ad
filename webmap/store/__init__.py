"""Stores: where layers live. ``open_store`` picks the backend from the configured URL."""

from __future__ import annotations

import os

from webmap.errors import BadInput
from webmap.store.base import FeatureQuery, LayerVersion, Store

__all__ = ["FeatureQuery", "LayerVersion", "Store", "open_store", "default_store_url"]


def default_store_url(instance_path: str) -> str:
    return "folder:" + os.path.join(instance_path, "store")


def open_store(url: str) -> Store:
    """Open the store named by ``url``: ``folder:/path/to/store`` (embedded: an SQLite catalogue and one Arrow file per layer version) or a PostGIS URL (later)."""
    if url.startswith("folder:"):
        from webmap.store.embedded import EmbeddedStore

        return EmbeddedStore(url[len("folder:"):])
    if url.startswith(("postgresql:", "postgres:")):
        raise BadInput("the PostGIS store is not available yet: use the embedded store (folder:PATH)")
    raise BadInput(f"unknown store URL {url!r}: expected folder:/path/to/store (embedded)")
