"""Settings: defaults here, then ``instance/config.py``, then ``WEBMAP_*`` environment variables.

Every setting is documented in README.md (a test checks that). Bad values are refused with the key named.
"""

from __future__ import annotations

import os

from webmap.errors import BadInput

DEFAULTS = {
    # Where the data lives. Empty: the embedded GeoPackage instance/webmap.gpkg.
    "STORE_URL": "",
    # Language of pages when the visitor has not chosen one: vi or en.
    "DEFAULT_LANGUAGE": "vi",
    # Most features one /api/layers/<kind>/features answer may hold (the page asks for less).
    "MAX_FEATURES": 5000,
    # Features the map asks for per layer and view.
    "PAGE_FEATURES": 2000,
    # Basemap: empty for none (the default: context layers on a plain background), a tile URL template
    # on your own tile server such as http://tiles.intranet/{z}/{x}/{y}.png, or a local .mbtiles path.
    "BASEMAP": "",
    "BASEMAP_ATTRIBUTION": "",
    # Map start view (lon/lat of Cần Thơ) and zoom.
    "MAP_CENTER": (10.06, 105.62),
    "MAP_ZOOM": 11,
    # Largest request body (bytes).
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    # Address and port of `webmap serve`.
    "HOST": "127.0.0.1",
    "PORT": 5000,
}

_INT_KEYS = {"MAX_FEATURES", "PAGE_FEATURES", "MAP_ZOOM", "MAX_CONTENT_LENGTH", "PORT"}


def from_environment(environ=os.environ) -> dict:
    """``WEBMAP_<KEY>`` overrides ``<KEY>``; integers are parsed, and a bad one is named."""
    out = {}
    for key in DEFAULTS:
        value = environ.get(f"WEBMAP_{key}")
        if value is None:
            continue
        if key in _INT_KEYS:
            try:
                value = int(value)
            except ValueError:
                raise BadInput(f"WEBMAP_{key} must be a whole number, got {value!r}") from None
        if key == "MAP_CENTER":
            try:
                lat, lon = (float(v) for v in value.split(","))
            except ValueError:
                raise BadInput(f"WEBMAP_MAP_CENTER must be 'lat,lon', got {value!r}") from None
            value = (lat, lon)
        out[key] = value
    return out


def validate(config) -> None:
    if config["DEFAULT_LANGUAGE"] not in ("vi", "en"):
        raise BadInput(f"DEFAULT_LANGUAGE must be vi or en, got {config['DEFAULT_LANGUAGE']!r}")
    for key in ("MAX_FEATURES", "PAGE_FEATURES"):
        if not 1 <= int(config[key]) <= 1_000_000:
            raise BadInput(f"{key} must be between 1 and 1000000, got {config[key]!r}")
    if int(config["PAGE_FEATURES"]) > int(config["MAX_FEATURES"]):
        raise BadInput("PAGE_FEATURES must not exceed MAX_FEATURES")
    basemap = config["BASEMAP"]
    if basemap and not (basemap.endswith(".mbtiles") or ("{z}" in basemap and "{x}" in basemap and "{y}" in basemap)):
        raise BadInput(f"BASEMAP must be a tile URL template with {{z}}/{{x}}/{{y}} or a .mbtiles file, got {basemap!r}")
    if basemap.endswith(".mbtiles") and not os.path.isfile(basemap):
        raise BadInput(f"BASEMAP file not found: {basemap}")
