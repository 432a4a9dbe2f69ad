"""The store interface: everything above it (import, API, map, exports, analyses) talks to this.

Two backends are planned: the embedded folder (``embedded.py``, the default: an SQLite catalogue and one
Arrow file per layer version) and PostGIS for many
users. A backend must make ``replace_layer``, ``append_features`` and ``update_features`` all-or-nothing:
readers see the old version until the new one is complete, and a failure leaves the old one untouched.
Every change, however small, makes a new version with its provenance (an incident report appended, a
status changed), so what a layer held at any kept version can be shown and explained.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass
class LayerVersion:
    """One imported version of a layer, with its provenance."""

    kind: str
    version: int
    created_at: str
    source_name: str
    sha256: str
    crs: str
    feature_count: int
    bbox: tuple | None
    report: dict = field(default_factory=dict)
    active: bool = True


@dataclass
class FeatureQuery:
    """A viewport query: bbox in lon/lat, a limit, and equality/range filters on schema fields."""

    bbox: tuple | None = None
    limit: int = 1000
    in_filters: dict = field(default_factory=dict)  # field -> list of allowed values
    min_filters: dict = field(default_factory=dict)  # field -> inclusive lower bound (string compare)
    max_filters: dict = field(default_factory=dict)  # field -> exclusive upper bound
    mask: object = None  # shapely geometry (lon/lat): only features that intersect it
    # field -> list: only rows whose field is empty (NULL) or one of these; a field the stored version does
    # not have counts as empty (e.g. incidents.reported_by_org in a version imported before it existed)
    null_or_in: dict = field(default_factory=dict)


class Store(ABC):
    @abstractmethod
    def list_versions(self, kind: str | None = None, active_only: bool = True) -> list[LayerVersion]:
        """Versions of every layer (or of one), newest first."""

    @abstractmethod
    def replace_layer(self, kind: str, gdf, provenance: dict, progress=None, *, wkb=None, rank=None) -> LayerVersion:
        """Store ``gdf`` (EPSG:4326, schema columns + ``extra`` + ``_search``) as the new active version.

        ``progress``, if given, is called with the name of each step as it starts (for a progress bar).
        ``wkb`` (optional, pyarrow binary) is the WKB of ``gdf``'s geometries when the caller already has it;
        ``rank`` (optional, integers) orders the rows in a view cut off at its limit, lowest first (the
        default is the order of ``gdf``).
        """

    @abstractmethod
    def append_features(self, kind: str, gdf, provenance: dict) -> LayerVersion:
        """Add the rows of ``gdf`` (EPSG:4326, columns as ``replace_layer`` takes them) to the active version
        of ``kind``, as a new active version; all or nothing.

        Columns the active version lacks are added (empty for its existing rows); columns ``gdf`` lacks are
        empty in the new rows. ``provenance`` is kept as with ``replace_layer`` (``source_name``, ``sha256``,
        ``crs``, ``report``); the version's report also records the operation and the version it was made from.
        Raises NotFound when ``kind`` has never been imported.
        """

    @abstractmethod
    def update_features(self, kind: str, ids: list, values: dict, provenance: dict, id_field: str = "id") -> LayerVersion:
        """Set ``values`` (field -> value, attributes only) on the rows whose ``id_field`` is one of ``ids``, as a
        new active version; all or nothing.

        Raises NotFound (and changes nothing) when ``kind`` was never imported or any of ``ids`` is not in the
        active version; BadInput for the geometry column or an internal one.
        """

    @abstractmethod
    def query_features(self, kind: str, query: FeatureQuery):
        """Return ``(GeoDataFrame, exceeded)`` for the active version, at most ``query.limit`` rows."""

    @abstractmethod
    def summarize(self, kind: str, query: FeatureQuery):
        """``(count, [w, s, e, n] or None)`` of every feature the query matches, ignoring its limit."""

    @abstractmethod
    def read_layer(self, kind: str):
        """The whole active version as a GeoDataFrame (exports, analyses)."""

    @abstractmethod
    def distinct_values(self, kind: str, field: str, limit: int = 200) -> list:
        """Sorted distinct non-empty values of ``field`` in the active version (for legends)."""

    @abstractmethod
    def search(self, text_folded: str, kinds: list[str], limit: int) -> list[dict]:
        """Features whose folded search text contains ``text_folded``: layer, id, label, bbox."""

    @abstractmethod
    def get_flag(self, name: str) -> str | None:
        """The value of the store-wide flag ``name`` (e.g. ``demo``), or None if it was never set."""

    @abstractmethod
    def set_flag(self, name: str, value: str) -> None:
        """Set the store-wide flag ``name`` to ``value`` (kept with the store, e.g. ``demo`` = ``1``)."""
