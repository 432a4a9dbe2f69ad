"""Settings from the environment and instance folder, refused with the key named; the local MBTiles basemap."""

import sqlite3

import pytest

from webmap.app import create_app
from webmap.errors import BadInput

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def make_mbtiles(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    con.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    # z=1, x=1, y=0 in XYZ is tile_row 1 in TMS
    con.execute("INSERT INTO tiles VALUES (1, 1, 1, ?)", (PNG_1PX,))
    con.commit()
    con.close()


def test_environment_overrides_defaults(instance, monkeypatch):
    monkeypatch.setenv("WEBMAP_PAGE_FEATURES", "300")
    monkeypatch.setenv("WEBMAP_DEFAULT_LANGUAGE", "en")
    app = create_app()
    assert app.config["PAGE_FEATURES"] == 300 and app.config["DEFAULT_LANGUAGE"] == "en"


def test_instance_config_file_is_read(instance):
    (instance / "config.py").write_text("MAP_ZOOM = 13\n", encoding="utf-8")
    assert create_app().config["MAP_ZOOM"] == 13


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("WEBMAP_MAX_FEATURES", "lots", "WEBMAP_MAX_FEATURES"),
        ("WEBMAP_DEFAULT_LANGUAGE", "fr", "DEFAULT_LANGUAGE"),
        ("WEBMAP_BASEMAP", "https://tile.example/tiles.png", "BASEMAP"),
        ("WEBMAP_MAP_CENTER", "10.0", "MAP_CENTER"),
    ],
)
def test_bad_settings_are_named(instance, monkeypatch, name, value, fragment):
    monkeypatch.setenv(name, value)
    with pytest.raises(BadInput, match=fragment):
        create_app()


def test_no_basemap_by_default(client):
    html = client.get("/").data.decode()
    assert "L.tileLayer" not in html and "/tiles/" not in html


def test_local_mbtiles_basemap_is_served_by_the_app(instance, tmp_path):
    mbtiles = tmp_path / "basemap.mbtiles"
    make_mbtiles(str(mbtiles))
    app = create_app({"BASEMAP": str(mbtiles), "BASEMAP_ATTRIBUTION": "Nền: Sở TT&TT"})
    client = app.test_client()
    html = client.get("/").data.decode()
    assert "/tiles/{z}/{x}/{y}.png" in html
    response = client.get("/tiles/1/1/0.png")
    assert response.status_code == 200 and response.data == PNG_1PX and response.mimetype == "image/png"
    assert client.get("/tiles/1/0/0.png").status_code == 404
    assert client.get("/tiles/1/5/0.png").status_code == 404


def test_secret_key_is_made_once_private_and_kept(instance):
    import os
    import stat

    first = create_app().config["SECRET_KEY"]
    path = instance / "secret_key"
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert create_app().config["SECRET_KEY"] == first


def test_secret_key_from_environment(instance, monkeypatch):
    monkeypatch.setenv("WEBMAP_SECRET_KEY", "k" * 40)
    assert create_app().config["SECRET_KEY"] == "k" * 40
    assert not (instance / "secret_key").exists()
    monkeypatch.setenv("WEBMAP_SECRET_KEY", "short")
    with pytest.raises(BadInput, match="32"):
        create_app()


def test_session_cookie_settings(instance, monkeypatch):
    app = create_app()
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    monkeypatch.setenv("WEBMAP_SESSION_COOKIE_SECURE", "1")
    assert create_app().config["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("WEBMAP_SESSION_COOKIE_SECURE", "maybe")
    with pytest.raises(BadInput, match="SESSION_COOKIE_SECURE"):
        create_app()
