"""The HTTP API: layer list, features by bbox and limit, filters, search, and 400s for bad parameters."""

import json

import pytest

import fixtures
from webmap.importer import import_layer


@pytest.fixture
def client(client_as):
    """The police see every layer: these tests are about the API itself (test_access.py is about roles)."""
    return client_as("police", "CA-CT")


@pytest.fixture
def loaded(store, tmp_path):
    for kind, make in fixtures.FRAMES.items():
        import_layer(store, fixtures.write_geojson(make(), str(tmp_path / f"{kind}.geojson")), kind)
    return store


def test_layer_list_has_definitions_counts_and_extents(client, loaded):
    body = client.get("/api/layers").get_json()
    layers = {layer["kind"]: layer for layer in body["layers"]}
    assert layers["stations"]["count"] == 3
    assert layers["stations"]["label"] == "Trạm viễn thông, bưu chính"
    assert layers["wards"]["count"] == 0 and layers["wards"]["bbox"] is None
    west, south, east, north = layers["cable_routes"]["bbox"]
    assert (west, east) == pytest.approx((105.76, 105.78))
    english = client.get("/api/layers?lang=en").get_json()
    assert {layer["kind"]: layer["label"] for layer in english["layers"]}["stations"] == "Stations"


def test_features_are_rfc7946_geojson(client, loaded):
    response = client.get("/api/layers/districts/features")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    body = json.loads(response.data)
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == 1
    feature = body["features"][0]
    assert feature["id"] == "916" and feature["properties"]["name"] == "Ninh Kiều"
    ring = feature["geometry"]["coordinates"][0]
    # RFC 7946: exterior rings counter-clockwise (positive shoelace area)
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:]))
    assert area2 > 0
    assert "crs" not in body


def test_bbox_selects_the_view(client, loaded):
    near = "105.769,10.029,105.771,10.0316"
    body = client.get(f"/api/layers/incidents/features?bbox={near}").get_json()
    assert sorted(f["id"] for f in body["features"]) == ["I-050", "I-150"]
    assert body["limitExceeded"] is False


def test_limit_is_applied_and_reported(client, loaded):
    body = client.get("/api/layers/incidents/features?limit=2").get_json()
    assert body["numberReturned"] == 2 and body["limitExceeded"] is True and body["limit"] == 2


def test_type_and_date_filters(client, loaded):
    body = client.get("/api/layers/incidents/features?type=cable_theft,fee_fraud").get_json()
    assert sorted(f["id"] for f in body["features"]) == ["I-050", "I-2000"]
    body = client.get("/api/layers/incidents/features?since=2025-02-11&until=2025-02-11").get_json()
    assert [f["id"] for f in body["features"]] == ["I-150"]


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("bbox=1,2,3", "4 numbers"),
        ("bbox=a,b,c,d", "4 numbers"),
        ("bbox=105.8,10.0,105.7,10.1", "west <= east"),
        ("bbox=10.0,105.7,10.1,105.8", "outside"),
        ("bbox=nan,1,2,3", "finite"),
        ("limit=0", "between 1 and"),
        ("limit=abc", "whole number"),
        ("limit=9999999", "between 1 and"),
        ("type=arson", "unknown"),
        ("since=2025-13-01", "YYYY-MM-DD"),
        ("since=2025-02-01&until=2025-01-01", "on or before"),
        ("colour=red", "unknown parameter"),
    ],
)
def test_bad_parameters_are_json_400(client, loaded, query, fragment):
    response = client.get(f"/api/layers/incidents/features?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["status"] == 400 and fragment in body["error"]


def test_unknown_or_empty_layer_is_json_404(client, loaded):
    for path in ("/api/layers/nope/features", "/api/layers/wards/features"):
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.get_json()


def test_search_ignores_diacritics_and_finds_ids(client, loaded):
    body = client.get("/api/search?q=ninh kieu").get_json()
    labels = [r["label"] for r in body["results"]]
    assert any("Ninh Kiều" in label for label in labels)
    hit = next(r for r in body["results"] if r["layer"] == "districts")
    assert hit["bbox"] == pytest.approx([105.74, 10.0, 105.80, 10.06])
    body = client.get("/api/search?q=s-002").get_json()
    assert [r["id"] for r in body["results"]] == ["S-002"]
    assert client.get("/api/search?q=x").status_code == 400


def test_map_page_is_small_and_local(client, loaded):
    response = client.get("/")
    html = response.data.decode()
    assert response.status_code == 200 and len(response.data) < 300_000
    assert "Tuyến cáp" in html and 'lang="vi"' in html
    assert "I-050" not in html  # features are never inlined
    for marker in ("https://", "http://", "//cdn"):
        assert marker not in html.replace("http://www.w3.org", ""), marker
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    inline = [tag for tag in html.split("<script")[1:] if "src=" not in tag.split(">")[0]]
    assert inline and all(f'nonce="{nonce}"' in tag.split(">")[0] for tag in inline)
    assert client.get("/").headers["Content-Security-Policy"] != policy  # a new nonce per response


def test_vendor_assets_are_served_and_contained(client):
    assert client.get("/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/vendor/markercluster/leaflet.markercluster.js").status_code == 200
    assert client.get("/vendor/leaflet/../../../../etc/passwd").status_code == 404
    assert client.get("/vendor/nothing/x.js").status_code == 404


def test_english_page(client, loaded):
    html = client.get("/?lang=en").data.decode()
    assert 'lang="en"' in html and "Cable routes" in html


def test_layer_list_names_every_owner_for_stable_colours(client, loaded):
    layers = {layer["kind"]: layer for layer in client.get("/api/layers").get_json()["layers"]}
    assert layers["cable_routes"]["values"] == {"owner": ["MKN", "VTSH"]}
    assert layers["stations"]["values"] == {"owner": ["BDTM", "VTSH"]}
    assert "values" not in layers["districts"]


def test_cut_off_views_show_the_newest_incidents(client, loaded):
    body = client.get("/api/layers/incidents/features?limit=1").get_json()
    assert [f["id"] for f in body["features"]] == ["I-2000"]  # occurred 2026-03-01, the latest


def test_search_ranks_exact_and_prefix_matches_first(client, loaded):
    ids = [r["id"] for r in client.get("/api/search?q=ninh kieu").get_json()["results"]]
    assert ids[0] == "916"  # the district named exactly so, before stations that mention it
    ids = [r["id"] for r in client.get("/api/search?q=i-050").get_json()["results"]]
    assert ids == ["I-050"]
