"""Basemap tiles from a local MBTiles file named by the BASEMAP setting (so no tile server is needed)."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response, abort, current_app

bp = Blueprint("tiles", __name__, url_prefix="/tiles")


def _mbtiles_path():
    value = current_app.config.get("BASEMAP") or ""
    return value if value.endswith(".mbtiles") else None


@bp.get("/<int:z>/<int:x>/<int:y>.png")
def tile(z, x, y):
    path = _mbtiles_path()
    if path is None or not 0 <= z <= 22 or not (0 <= x < 2**z and 0 <= y < 2**z):
        abort(404)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        # MBTiles rows count from the south (TMS); the web map counts from the north (XYZ)
        row = con.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (2**z - 1) - y),
        ).fetchone()
    finally:
        con.close()
    if row is None:
        abort(404)
    data = bytes(row[0])
    mimetype = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else ("image/webp" if data[8:12] == b"WEBP" else "image/png")
    return Response(data, mimetype=mimetype, headers={"Cache-Control": "max-age=86400"})
