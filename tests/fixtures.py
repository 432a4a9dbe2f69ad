"""A tiny deterministic dataset whose answers can be worked out by hand, and writers for every format.

Geometry (WGS 84, near Ninh Kiều): one straight east-west cable along latitude 10.03 from 105.76 to
105.78 E (about 2.19 km); incidents 50 m, 150 m and 2 km north of its middle; a station at its east end
inside a key-site square; one district square around it all.
"""

from __future__ import annotations

import os
import zipfile

import geopandas as gpd
import pyogrio
from shapely.geometry import LineString, Point, Polygon, box

METRE_LAT = 1 / 110_574  # degrees of latitude per metre at 10°N (WGS 84 ellipsoid)
MID = (105.77, 10.03)


def cable_routes() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": ["C-001", "C-002"],
            "name": ["Tuyến trục Ninh Kiều – Cái Răng", "Tuyến vượt sông Cần Thơ"],
            "owner": ["VTSH", "MKN"],
            "medium": ["fibre", "fibre"],
            "placement": ["underground", "river_crossing"],
            "tier": ["trunk", "distribution"],
            "criticality": ["critical", "high"],
        },
        geometry=[LineString([(105.76, 10.03), (105.78, 10.03)]), LineString([(105.775, 10.02), (105.775, 10.028)])],
        crs="EPSG:4326",
    )


def stations() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": ["S-001", "S-002", "S-003"],
            "name": ["Trạm BTS Cái Khế 01", "Tổng đài Ninh Kiều", "Bưu cục Cờ Đỏ"],
            "owner": ["VTSH", "VTSH", "BDTM"],
            "kind": ["bts", "exchange", "post_office"],
            "criticality": ["medium", "critical", "low"],
            "address": ["Phường Cái Khế", "Đường 3 Tháng 2", "Thị trấn Cờ Đỏ"],
        },
        geometry=[Point(105.78, 10.03), Point(105.765, 10.035), Point(105.772, 10.025)],
        crs="EPSG:4326",
    )


def key_sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": ["K-001"],
            "name": ["[DEMO] Trung tâm điều hành"],
            "category": ["telecom_hub"],
            "protection_level": ["special"],
            "guard_unit": ["Đội bảo vệ mẫu"],
            "demo": [True],
        },
        geometry=[box(105.779, 10.029, 105.781, 10.031)],
        crs="EPSG:4326",
    )


def incidents() -> gpd.GeoDataFrame:
    offsets_m = [50, 150, 2000]
    return gpd.GeoDataFrame(
        {
            "id": ["I-050", "I-150", "I-2000"],
            "occurred_at": ["2025-01-10T02:30:00+07:00", "2025-02-11T23:00:00+07:00", "2026-03-01T12:00:00+07:00"],
            "type": ["cable_theft", "sabotage", "fee_fraud"],
            "status": ["verified", "reported", "resolved"],
            "severity": ["high", "medium", "low"],
            "damage_vnd": [15_000_000, 2_500_000, 0],
            "source": ["police_patrol", "hotline", "enterprise"],
            "asset_id": ["C-001", "C-001", None],
            "description": ["Cắt trộm 30 m cáp", "Phá hoại hộp cáp", "Gian lận cước"],
        },
        geometry=[Point(MID[0], MID[1] + d * METRE_LAT) for d in offsets_m],
        crs="EPSG:4326",
    )


def districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["916"], "name": ["Ninh Kiều"], "name_official": ["Quận Ninh Kiều"], "type": ["Quận"], "parent": ["92"]},
        geometry=[Polygon([(105.74, 10.0), (105.80, 10.0), (105.80, 10.06), (105.74, 10.06)])],
        crs="EPSG:4326",
    )


FRAMES = {
    "cable_routes": cable_routes,
    "stations": stations,
    "key_sites": key_sites,
    "incidents": incidents,
    "districts": districts,
}


def write_shapefile(gdf, folder, name, encoding="UTF-8") -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.shp")
    pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding=encoding)
    return path


def zip_folder(folder, zip_path, prefix="") -> str:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(os.listdir(folder)):
            archive.write(os.path.join(folder, name), prefix + name)
    return zip_path


def write_geojson(gdf, path) -> str:
    pyogrio.write_dataframe(gdf, path, driver="GeoJSON")
    return path
