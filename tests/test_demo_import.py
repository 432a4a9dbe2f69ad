"""The real demo files go through the ordinary import path, end to end, and the API serves them."""

import json

from webmap.app import create_app


def test_demo_loads_through_the_cli_and_serves(run_cli, instance):
    code, out, err = run_cli("demo")
    assert code == 0, err
    assert "incidents: 3660 features" in out and "stations: 401 features" in out
    code, out, _ = run_cli("layers")
    assert code == 0 and "cable_routes" in out and "key_sites" in out
    from conftest import log_in, make_account

    app = create_app()
    client = app.test_client()
    log_in(client, make_account(app, "police.demo.test", "police", "CA-CT"))
    layers = {layer["kind"]: layer for layer in client.get("/api/layers").get_json()["layers"]}
    assert layers["districts"]["count"] == 9 and layers["key_sites"]["count"] >= 20
    west, south, east, north = layers["districts"]["bbox"]
    assert 105.2 < west < east < 105.9 and 9.9 < south < north < 10.35
    hits = client.get("/api/search?q=ninh kieu").get_json()["results"]
    assert hits[0]["layer"] == "districts" and hits[0]["label"].startswith("Ninh Kiều")
    body = json.loads(client.get("/api/layers/incidents/features?type=cable_theft&limit=50").data)
    assert body["numberReturned"] == 50 and body["limitExceeded"] is True
    assert {f["properties"]["type"] for f in body["features"]} == {"cable_theft"}
    # Shapefile-truncated names were mapped back onto the schema
    assert all(f["properties"]["occurred_at"].endswith("+07:00") for f in body["features"])
    cables = json.loads(client.get("/api/layers/cable_routes/features?limit=5").data)
    assert all(f["properties"]["criticality"] in ("low", "medium", "high", "critical") for f in cables["features"])
