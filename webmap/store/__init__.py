"""Stores: where layers live. ``open_store`` picks the backend from the configured URL."""

from __future__ import annotations

import os

from webmap.errors import BadInput
from webmap.store.base import FeatureQuery, LayerVersion, Store

__all__ = ["FeatureQuery", "LayerVersion", "Store", "open_store", "default_store_url"]


def default_store_url(instance_path: str) -> str:
    return "gpkg:" + os.path.join(instance_path, "webmap.gpkg")


def open_store(url: str) -> Store:
    """Open the store named by ``url``: ``gpkg:/path/file.gpkg`` (embedded) or a PostGIS URL (later)."""
    if url.startswith("gpkg:"):
        from webmap.store.embedded import EmbeddedStore

        return EmbeddedStore(url[len("gpkg:"):])
    if url.startswith(("postgresql:", "postgres:")):
        raise BadInput("the PostGIS store is not available yet: use the embedded store (gpkg:PATH)")
    raise BadInput(f"unknown store URL {url!r}: expected gpkg:/path/to/webmap.gpkg")
