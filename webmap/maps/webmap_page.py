"""The main map page, built with folium: the Map element with local assets, and one element that hands
the layer definitions to ``static/webmap.js``, which loads features from the API for the current view.

Nothing is inlined: the page stays the same size whatever the data (folium's own GeoJson would embed it).
"""

from __future__ import annotations

import json

import folium
from branca.element import Element, MacroElement
from jinja2 import Template


class WebmapLayers(MacroElement):
    """Start webmap.js on the folium map with the client configuration (layers, strings, API URLs)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        window.webmapApp = WebMap.start({{ this._parent.get_name() }}, {{ this.config_json }});
        {% endmacro %}
        """
    )

    def __init__(self, config: dict):
        super().__init__()
        self._name = "WebmapLayers"
        # "</" is escaped so no value can close the script element
        self.config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")


def build_map(*, center, zoom, assets: dict, client_config: dict, basemap: dict | None):
    """Return a folium Map whose header links only to this app's own assets."""
    fmap = folium.Map(location=list(center), zoom_start=zoom, tiles=None, control_scale=True,
                      prefer_canvas=False, zoom_control=True)
    fmap.default_js = [(name, url) for name, url in assets["js"]]
    fmap.default_css = [(name, url) for name, url in assets["css"]]
    if basemap:
        folium.TileLayer(tiles=basemap["url"], attr=basemap["attribution"] or " ", name=basemap["name"],
                         max_zoom=19, overlay=False, control=False).add_to(fmap)
    WebmapLayers(client_config).add_to(fmap)
    return fmap


def render_parts(fmap) -> dict:
    """Header, body and script of the folium page, for our own template (folium's Flask recipe)."""
    root = fmap.get_root()
    root.render()
    return {
        "header": root.header.render(),
        "body": root.html.render(),
        "script": root.script.render(),
    }
