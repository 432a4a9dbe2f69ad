"""Uploads from the browser: the import path under the access rules, limits, and nothing left behind."""

import io
import os
import re
import zipfile

import pytest

import fixtures
from webmap.importer import import_layer


@pytest.fixture
def loaded(store, tmp_path):
    for kind in ("districts", "cable_routes", "stations"):
        import_layer(store, fixtures.write_geojson(fixtures.FRAMES[kind](), str(tmp_path / f"{kind}.geojson")), kind)
    return store


def csrf(client):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/upload").data.decode()).group(1)


def send(client, kind, name, data, **form):
    return client.post("/upload", data={"csrf_token": csrf(client), "layer": kind,
                                        "file": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def station_file(tmp_path, rows):
    frame = fixtures.stations().iloc[rows].copy()
    return open(fixtures.write_geojson(frame, str(tmp_path / "up.geojson")), "rb").read()


def ids_by_owner(store):
    gdf = store.read_layer("stations")
    return {owner: sorted(group["id"]) for owner, group in gdf.groupby("owner")}


def test_an_enterprise_replaces_only_its_own_rows(client_as, loaded, tmp_path, app):
    client = client_as("enterprise", "MKN")
    frame = fixtures.stations().iloc[[0]].copy()
    frame["id"], frame["owner"], frame["name"] = ["MKN-BTS-1"], ["VTSH"], ["Trạm BTS MKN mới"]  # claims VTSH
    data = open(fixtures.write_geojson(frame, str(tmp_path / "mkn.geojson")), "rb").read()
    response = send(client, "stations", "tram.geojson", data)
    assert response.status_code == 200, response.data.decode()[:500]
    assert ids_by_owner(loaded) == {"BDTM": ["S-003"], "MKN": ["MKN-BTS-1"], "VTSH": ["S-001", "S-002"]}
    assert "owner column replaced by --owner MKN" in response.data.decode()
    # a second upload by MKN replaces MKN's rows again, still leaving the others
    frame["id"] = ["MKN-BTS-2"]
    send(client, "stations", "tram.geojson", open(fixtures.write_geojson(frame, str(tmp_path / "m2.geojson")), "rb").read())
    assert ids_by_owner(loaded)["MKN"] == ["MKN-BTS-2"] and ids_by_owner(loaded)["VTSH"] == ["S-001", "S-002"]
    from webmap import audit
    entries = audit.for_app(app).entries(action="import")
    assert entries[0].target == "stations" and entries[0].actor.startswith("enterprise.")


def test_an_enterprise_cannot_upload_other_layers(client_as, loaded, tmp_path):
    client = client_as("enterprise", "VTSH")
    page = client.get("/upload").data.decode()
    assert 'value="stations"' in page and 'value="key_sites"' not in page and 'value="incidents"' not in page
    data = fixtures.write_geojson(fixtures.key_sites(), str(tmp_path / "k.geojson"))
    for kind in ("key_sites", "incidents", "districts"):
        assert send(client, kind, "k.geojson", open(data, "rb").read()).status_code == 404


def test_police_upload_a_whole_layer(client_as, loaded, tmp_path):
    client = client_as("police", "CA-CT")
    response = send(client, "stations", "s.geojson", station_file(tmp_path, [2]))
    assert response.status_code == 200
    assert ids_by_owner(loaded) == {"BDTM": ["S-003"]}


def test_who_has_no_upload(client_as, loaded):
    assert client_as("public").get("/upload").status_code == 302  # to the login page
    assert client_as("district", "916").get("/upload").status_code == 404


def test_bad_files_change_nothing_and_leave_nothing(client_as, loaded, tmp_path, app):
    client = client_as("enterprise", "VTSH")
    before = ids_by_owner(loaded)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../etc/evil.shp", b"x")
    for name, data, fragment in (
        ("tram.shp", b"\x00\x00\x27\x0a", "zipped"),
        ("tram.geojson", b"<OGRVRTDataSource/>", "tram.geojson is really an OGR VRT"),
        ("tram.zip", bomb.getvalue(), "climbs out"),
        ("tram.geojson", b'{"type": "FeatureCollection", "features": []}', "no features"),
    ):
        response = send(client, "stations", name, data)
        assert response.status_code == 400 and fragment in response.data.decode(), (name, response.data[:300])
    assert send(client, "stations", "", b"").status_code == 400
    assert ids_by_owner(loaded) == before
    uploads = os.path.join(app.instance_path, "uploads")
    assert not os.path.exists(uploads) or os.listdir(uploads) == []
    assert oct(os.stat(uploads).st_mode & 0o777) == "0o700"


def test_oversized_uploads_are_refused(client_as, loaded, app):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    client = client_as("enterprise", "VTSH")
    token = csrf(client)
    response = client.post("/upload", data={"csrf_token": token, "layer": "stations",
                                            "file": (io.BytesIO(b"{" + b" " * 10_000 + b"}"), "big.geojson")},
                           content_type="multipart/form-data")
    assert response.status_code == 413


def test_upload_needs_the_csrf_token(client_as, loaded, tmp_path):
    client = client_as("enterprise", "VTSH")
    response = client.post("/upload", data={"layer": "stations", "file": (io.BytesIO(b"{}"), "a.geojson")},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "CSRF" in response.data.decode()
