"""HTML pages: the map. Vietnamese by default; ``?lang=en`` switches and is remembered in a cookie."""

from __future__ import annotations

import re
import secrets

from flask import Blueprint, current_app, make_response, render_template, request, url_for

from webmap.views import guard
from webmap.i18n import LANGUAGES, current_language, strings

bp = Blueprint("pages", __name__)


def _assets() -> dict:
    return {
        "js": [
            ("leaflet", url_for("vendor.asset", package="leaflet", filename="leaflet.js")),
            ("markercluster", url_for("vendor.asset", package="markercluster", filename="leaflet.markercluster.js")),
            ("webmap_common", url_for("static", filename="common.js")),
            ("webmap", url_for("static", filename="webmap.js")),
        ],
        "css": [
            ("leaflet_css", url_for("vendor.asset", package="leaflet", filename="leaflet.css")),
            ("markercluster_css", url_for("vendor.asset", package="markercluster", filename="MarkerCluster.css")),
            ("markercluster_default_css", url_for("vendor.asset", package="markercluster", filename="MarkerCluster.Default.css")),
            ("webmap_css", url_for("static", filename="webmap.css")),
        ],
    }


def _basemap():
    value = current_app.config.get("BASEMAP")
    if not value:
        return None
    if value.endswith(".mbtiles"):
        url = url_for("tiles.tile", z=0, x=0, y=0).replace("/0/0/0.png", "/{z}/{x}/{y}.png")
    else:
        url = value
    return {"url": url, "attribution": current_app.config.get("BASEMAP_ATTRIBUTION", ""), "name": "basemap"}


@bp.get("/")
def index():
    from webmap.maps.webmap_page import build_map, render_parts  # folium: loaded on first use, not at start-up

    lang = current_language()
    text = strings(lang)
    client = {
        "lang": lang,
        "strings": text,
        "layers": [layer.to_client(lang, rule.hidden_fields) for layer, rule in guard.visible_layers()],
        "api": {
            "layers": url_for("api.list_layers"),
            "features": url_for("api.layer_features", kind="__KIND__"),
            "search": url_for("api.search"),
            # the patrol-map print of a drawn rectangle (static/common.js): signed-in users only
            "print": url_for("prints.patrol_pdf") if guard.principal().role != "public" else None,
        },
        "page_features": current_app.config["PAGE_FEATURES"],
    }
    fmap = build_map(center=current_app.config["MAP_CENTER"], zoom=current_app.config["MAP_ZOOM"],
                     assets=_assets(), client_config=client, basemap=_basemap())
    other = [code for code in LANGUAGES if code != lang][0]
    nonce = secrets.token_urlsafe(18)
    html = render_template("map.html", lang=lang, text=text, other_lang=other, parts=render_parts(fmap))
    # folium writes its set-up as inline <script> blocks: each gets this response's nonce, so the
    # Content-Security-Policy can refuse every other inline script (an injected one has no nonce).
    html = re.sub(r"<script>", f'<script nonce="{nonce}">', html)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self' 'nonce-{nonce}'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'; object-src 'none'"
    )
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
