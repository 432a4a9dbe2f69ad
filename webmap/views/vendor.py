"""Serve Leaflet and its plugins from the xstatic Python packages: the map never asks another host."""

from __future__ import annotations

import os

from flask import Blueprint, abort, send_from_directory

bp = Blueprint("vendor", __name__, url_prefix="/vendor")


def _packages() -> dict:
    import xstatic.pkg.font_awesome as font_awesome
    import xstatic.pkg.leaflet as leaflet
    import xstatic.pkg.leaflet_markercluster as markercluster

    return {
        "leaflet": leaflet.BASE_DIR,
        "markercluster": markercluster.BASE_DIR,
        "font-awesome": font_awesome.BASE_DIR,
    }


PACKAGES = _packages()


@bp.route("/<package>/<path:filename>")
def asset(package, filename):
    base = PACKAGES.get(package)
    if base is None:
        abort(404)
    # send_from_directory refuses paths that leave ``base``
    response = send_from_directory(os.path.abspath(base), filename, max_age=86400)
    return response
