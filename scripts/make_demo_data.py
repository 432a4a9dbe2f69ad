#!/usr/bin/env python3
"""Generate the fictional demo city for webmap: enterprises, cable routes, stations, key sites, incidents.

Everything this script writes is invented, except the ground it stands on: the 9 real district
polygons and the city outline of Cần Thơ in ``data/`` (sources and licence in ``data/README.md``).
The same seed gives byte-identical files, so the files in ``data/demo/`` are exactly what
``python scripts/make_demo_data.py`` makes, and ``tests/test_demo_data.py`` checks that.

Usage::

    python scripts/make_demo_data.py [--out data/demo] [--seed 2026]

Model
-----
Frame
    Geometry is built in metres in a local equirectangular frame centred on 105.53°E 10.12°N
    (distortion under 0.1 % across the city). It is a plain affine map of lon/lat, computed with
    numpy alone, so no PROJ version can change a coordinate. Output is lon/lat rounded to 6 decimals.
Organisations
    Three fictional telecom enterprises (VTSH, MKN, TCT; market shares 45/35/20 % of the BTS) and one
    fictional postal enterprise (BDTM), all named "... (demo)".
Stations
    Every telecom enterprise has a main exchange near each district centre (the district centroid from
    ``cantho_admin_units_facts.csv``) and a second one in Ninh Kiều, Cái Răng and Bình Thủy (VTSH and MKN);
    4 data centres and 2 gateways sit in the urban core. BTS and post offices are drawn per district
    from a fixed count (Ninh Kiều is ~30x denser per km² than the rural huyện) as a mixture: around
    the district centre, along the trunk cables (a stand-in for the main roads), and uniform, with a
    minimum spacing. No ward polygons exist, so each district gets one invented "seed" point per real
    ward (names from the GSO list) and a station takes the name of the nearest seed: the ward names are
    real, their positions are not.
Cable routes
    Trunks: for each telecom enterprise a corridor along the Hậu river, i.e. the city's north-east edge
    (Thốt Nốt – Ô Môn – Bình Thủy – Ninh Kiều – Cái Răng) offset 1.5–2.8 km inland and smoothed,
    cut into sections between the district centres; short trunk spurs from the riverside exchanges to
    it; gently bent routes between the exchanges of neighbouring districts; links from data centres and
    gateways to an exchange. Distribution: chains of 1–3 BTS from their nearest exchange (same owner,
    same district) and short copper cables radiating from the urban exchanges. River crossings:
    short cables across the Cần Thơ river (the Ninh Kiều / Cái Răng border) and the Cần Thơ half of
    crossings of the Hậu river (the far bank belongs to Vĩnh Long / Đồng Tháp, outside the outline).
    Every route lies inside the city outline; distribution routes inside their own district.
Key sites
    26 invented sites named "[DEMO] ...", with ``demo`` = true: rotated rectangles (some L-shaped) and
    4 points. The telecom hubs and data centres are drawn around a generated exchange or data centre,
    so those polygons contain a station.
Incidents
    About 3,660 points from 2023-12-01 to 2026-11-30 (local time, +07:00), drawn from separate processes,
    each with a place and a daily intensity:
    cable theft and sabotage along the cables (weighted by length, aerial and copper more exposed;
    offsets of tens to a few hundred metres), with more in the dry season (Dec–Apr) and in the three
    weeks before Tết; hot spots at three bridges and three markets; two *emerging* hot spots whose
    incidents mostly fall in the last 90 days with a rising trend; fires and sabotage at stations;
    smuggling at post offices; cyber attacks at data centres, gateways and exchanges (rising trend);
    fee fraud, reactionary material (peaks before 30/4 and 2/9) and other incidents spread by urban
    weight. Status follows the age of the incident, damage the type and severity (cable theft:
    metres stolen x price per metre). ``asset_id`` is the nearest cable or station for the asset-related
    types.

Determinism
    One ``numpy.random.SeedSequence(seed)`` is split into independent streams (wards, network, key sites,
    incidents). Nothing depends on time, dict/set order or the PROJ/GEOS version for coordinates
    (GEOS only answers inside/outside and nearest questions). GeoJSON, Shapefile and zip are written
    by this script: the .dbf header date is fixed to 2026-01-01 and zip members carry a fixed
    timestamp (1980-01-01), in sorted order, deflated.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import struct
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.geometry.polygon import orient

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
DEFAULT_OUT = DATA_DIR / "demo"
DEFAULT_SEED = 2026

# --- frame ---------------------------------------------------------------------------------------
R_EARTH_M = 6_371_008.8
LON0, LAT0 = 105.53, 10.12
KX = R_EARTH_M * math.pi / 180 * math.cos(math.radians(LAT0))  # metres per degree of longitude
KY = R_EARTH_M * math.pi / 180  # metres per degree of latitude


def to_m(lonlat) -> np.ndarray:
    """Lon/lat (N, 2) -> local metres (N, 2)."""
    a = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    return np.column_stack(((a[:, 0] - LON0) * KX, (a[:, 1] - LAT0) * KY))


def to_lonlat(xy) -> np.ndarray:
    """Local metres (N, 2) -> lon/lat (N, 2), rounded to 6 decimals."""
    a = np.asarray(xy, dtype=float).reshape(-1, 2)
    return np.round(np.column_stack((a[:, 0] / KX + LON0, a[:, 1] / KY + LAT0)), 6)


def geom_to_m(geom):
    return shapely.transform(geom, to_m)


# --- fixed tables ----------------------------------------------------------------------------------
ORGS = [  # code, name, kind
    ("VTSH", "Viễn thông Sông Hậu (demo)", "telecom"),
    ("MKN", "Mạng Kết Nối Mê Kông (demo)", "telecom"),
    ("TCT", "Truyền thông Cồn Tiên (demo)", "telecom"),
    ("BDTM", "Bưu điện Tây Mê Kông (demo)", "postal"),
]
TELCOS = ("VTSH", "MKN", "TCT")
TELCO_SHARE = (0.45, 0.35, 0.20)
POSTAL = "BDTM"

# district code: (class, BTS count, ward post offices, centre sigma m, min station gap m)
PROFILE = {
    "916": ("urban", 80, 7, 1100, 160),      # Ninh Kiều, 29 km²
    "917": ("suburban", 30, 4, 2200, 450),   # Ô Môn
    "918": ("urban", 46, 5, 1600, 220),      # Bình Thủy
    "919": ("urban", 46, 5, 1600, 220),      # Cái Răng
    "923": ("suburban", 28, 4, 2200, 450),   # Thốt Nốt
    "924": ("rural", 20, 3, 3500, 700),      # Vĩnh Thạnh, 306 km²
    "925": ("rural", 22, 3, 3500, 700),      # Cờ Đỏ
    "926": ("suburban", 22, 3, 2500, 500),   # Phong Điền
    "927": ("rural", 22, 3, 3500, 700),      # Thới Lai
}
RIVERSIDE = ("923", "917", "918", "916", "919")  # along the Hậu, upstream (NW) to downstream (SE)
CORRIDOR_OFFSET_M = {"VTSH": 1500.0, "MKN": 2100.0, "TCT": 2800.0}
EXTRA_EXCHANGES = [("VTSH", "916"), ("MKN", "916"), ("VTSH", "919"), ("MKN", "919"), ("VTSH", "918"), ("MKN", "918")]
DATA_CENTRES = [("VTSH", "916"), ("VTSH", "919"), ("MKN", "918"), ("TCT", "916")]
GATEWAYS = [("VTSH", "916"), ("MKN", "919")]
# trunks between district centres: (from, to, owners)
INTER_DISTRICT = [
    ("916", "918", TELCOS), ("916", "919", TELCOS), ("916", "926", TELCOS),
    ("918", "926", ("VTSH", "MKN")), ("919", "926", ("VTSH",)), ("926", "927", ("VTSH", "MKN")),
    ("917", "927", ("VTSH", "TCT")), ("917", "925", ("VTSH", "MKN")), ("927", "925", ("VTSH",)),
    ("925", "924", ("VTSH", "MKN")), ("923", "924", ("VTSH", "MKN", "TCT")), ("923", "925", ("VTSH",)),
]
CT_RIVER_CROSSINGS = ("VTSH", "MKN", "TCT", "VTSH", "MKN", "VTSH", "TCT", "MKN")
HAU_CROSSINGS = [("923", "VTSH"), ("917", "MKN"), ("918", "VTSH"), ("916", "TCT"), ("916", "VTSH"), ("919", "MKN")]

KIND_CODE = {"bts": "BTS", "exchange": "EXC", "data_centre": "DC", "gateway": "GW", "post_office": "PO"}
DIRECTIONS_VI = ("Đông", "Đông Bắc", "Bắc", "Tây Bắc", "Tây", "Tây Nam", "Nam", "Đông Nam")

# named places for incident hot spots: lon, lat (approximate; checked to lie inside the outline).
# The two river points are snapped onto the Ninh Kiều / Cái Răng border, i.e. the Cần Thơ river.
BRIDGES = [  # key, name, lon, lat, snap to Cần Thơ river, sigma m, count
    ("cau_can_tho", "Chân cầu Cần Thơ (Cái Răng)", 105.8040, 10.0300, False, 300, 180),
    ("cau_cai_rang", "Cầu Cái Răng", 105.7605, 10.0110, True, 250, 140),
    ("cau_o_mon", "Cầu Ô Môn", 105.6300, 10.1180, False, 300, 100),
]
MARKETS = [
    ("cho_ninh_kieu", "Chợ Cần Thơ – bến Ninh Kiều", 105.7870, 10.0335, False, 250, 160),
    ("cho_noi_cai_rang", "Chợ nổi Cái Răng", 105.7475, 10.0060, True, 250, 140),
    ("cho_noi_phong_dien", "Chợ nổi Phong Điền", 105.6700, 9.9990, False, 300, 80),
]

START = np.datetime64("2023-12-01")
END = np.datetime64("2026-11-30")  # last day; also the "as of" date for statuses
TET = (np.datetime64("2024-02-10"), np.datetime64("2025-01-29"), np.datetime64("2026-02-17"))
RECENT_DAYS = 90

INCIDENT_TYPES = ("cable_theft", "sabotage", "fire_explosion", "fee_fraud", "postal_smuggling",
                  "cyber_attack", "reactionary_material", "other")
SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_P = {
    "cable_theft": (0.35, 0.40, 0.20, 0.05), "sabotage": (0.15, 0.40, 0.33, 0.12),
    "fire_explosion": (0.25, 0.40, 0.27, 0.08), "fee_fraud": (0.35, 0.40, 0.20, 0.05),
    "postal_smuggling": (0.30, 0.40, 0.25, 0.05), "cyber_attack": (0.30, 0.40, 0.22, 0.08),
    "reactionary_material": (0.40, 0.35, 0.20, 0.05), "other": (0.60, 0.30, 0.09, 0.01),
}
SOURCES = ("hotline", "enterprise", "police_patrol", "district", "camera")
SOURCE_P = {
    "cable_theft": (0.18, 0.45, 0.20, 0.05, 0.12), "sabotage": (0.15, 0.40, 0.25, 0.05, 0.15),
    "fire_explosion": (0.30, 0.40, 0.10, 0.15, 0.05), "fee_fraud": (0.25, 0.55, 0.10, 0.10, 0.00),
    "postal_smuggling": (0.10, 0.50, 0.30, 0.05, 0.05), "cyber_attack": (0.05, 0.85, 0.05, 0.05, 0.00),
    "reactionary_material": (0.35, 0.05, 0.40, 0.15, 0.05), "other": (0.35, 0.20, 0.20, 0.20, 0.05),
}
# damage ranges (VND, log-uniform) by severity; None = no money damage recorded
DAMAGE_RANGE = {
    "sabotage": ((5e6, 2e7), (2e7, 8e7), (8e7, 3e8), (3e8, 9e8)),
    "fire_explosion": ((3e6, 1.5e7), (1.5e7, 8e7), (8e7, 4e8), (4e8, 9.5e8)),
    "fee_fraud": ((5e6, 3e7), (3e7, 1.2e8), (1.2e8, 4.5e8), (4.5e8, 9.5e8)),
    "cyber_attack": (None, (1e7, 6e7), (6e7, 3e8), (3e8, 9e8)),
    "postal_smuggling": (None, None, None, None),
    "reactionary_material": (None, None, None, None),
    "other": ((5e5, 5e6), (5e6, 2e7), (2e7, 8e7), (8e7, 2e8)),
}
THEFT_METRES = ((20, 80), (80, 250), (250, 800), (800, 2000))  # cable stolen, by severity
PRICE_PER_M = {"fibre": (60_000, 150_000), "copper": (180_000, 420_000)}  # cable + repair, VND/m
# hour-of-day weights
NIGHT = np.array([8, 8, 8, 7, 5, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8], float)
DAY = np.array([0.3, 0.2, 0.2, 0.2, 0.3, 1, 3, 5, 7, 8, 8, 7, 6, 6, 7, 7, 7, 6, 5, 4, 3, 2, 1, 0.5])
AFTERNOON = np.array([2, 2, 2, 2, 2, 2, 2, 3, 3, 4, 5, 6, 7, 7, 7, 6, 5, 4, 4, 3, 3, 3, 2, 2], float)
FLAT = np.ones(24)
HOURS = {"cable_theft": NIGHT, "sabotage": NIGHT, "fire_explosion": AFTERNOON, "fee_fraud": DAY,
         "postal_smuggling": DAY, "cyber_attack": FLAT, "reactionary_material": DAY, "other": DAY}

MEDIUM_VI = {"fibre": "quang", "copper": "đồng"}
PLACEMENT_VI = {"aerial": "treo", "underground": "ngầm", "river_crossing": "vượt sông"}
DESCRIPTIONS = {
    "cable_theft": (
        "Phát hiện mất trộm khoảng {m} m cáp {medium} {placement}.",
        "Đối tượng cắt trộm {m} m cáp {medium}, gây gián đoạn thông tin liên lạc.",
        "Cáp {medium} {placement} bị cắt, mất khoảng {m} m.",
        "Mất {m} m cáp {medium}, lưu lượng phải chuyển hướng.",
    ),
    "sabotage": (  # the asset is a cable
        "Cáp {medium} bị cắt đứt có chủ ý, nghi phá hoại.",
        "Tủ cáp bị đập phá, hư hỏng thiết bị.",
        "Cột treo cáp bị cưa đổ, tuyến cáp bị võng.",
    ),
    "sabotage_station": (  # the asset is a station
        "Nhà trạm bị cạy cửa, phá hoại thiết bị nguồn.",
        "Ăng-ten của trạm bị phá hỏng, nghi cố ý.",
        "Hàng rào và tủ thiết bị tại trạm bị đập phá.",
    ),
    "fire_explosion": (
        "Cháy tủ nguồn tại trạm, đã dập tắt kịp thời.",
        "Chập điện gây cháy thiết bị tại nhà trạm.",
        "Nổ ắc quy dự phòng tại trạm, không có thương vong.",
        "Cháy lan từ khu dân cư sang công trình viễn thông.",
    ),
    "fee_fraud": (
        "Phát hiện thiết bị SIM box chuyển lưu lượng quốc tế trái phép.",
        "Gian lận cước bằng {k} SIM kích hoạt sẵn.",
        "Phát hiện điểm kinh doanh dịch vụ viễn thông trái phép.",
        "Lưu lượng bất thường, nghi trộm cước tổng đài doanh nghiệp.",
    ),
    "postal_smuggling": (
        "Phát hiện bưu gửi chứa hàng cấm, khai sai nội dung.",
        "Thu giữ {k} bưu kiện chứa hàng giả, hàng lậu.",
        "Bưu gửi nghi chứa chất cấm, đã bàn giao cơ quan chức năng.",
    ),
    "cyber_attack": (
        "Tấn công từ chối dịch vụ (DDoS) vào hệ thống của doanh nghiệp.",
        "Phát hiện mã độc trên máy chủ tại trạm.",
        "Dò quét, truy cập trái phép vào thiết bị mạng.",
        "Tấn công lừa đảo (phishing) nhắm vào nhân viên vận hành.",
    ),
    "reactionary_material": (
        "Phát hiện tờ rơi có nội dung phản động tại khu vực công cộng.",
        "Phát hiện {k} tài liệu phản động gửi qua đường bưu chính.",
        "Treo băng rôn có nội dung xấu, đã thu gỡ.",
    ),
    "other": (
        "Phương tiện va chạm làm võng cáp treo.",
        "Thi công công trình làm ảnh hưởng tuyến cáp.",
        "Người dân báo tin nghi vấn, đã kiểm tra.",
        "Cây đổ do mưa bão đè lên tuyến cáp.",
        "Mất trộm khóa, nắp hố cáp tại công trình.",
    ),
}

GUARD_UNITS = (
    "Đội bảo vệ mục tiêu số 1 (demo)", "Đội bảo vệ mục tiêu số 2 (demo)", "Đội bảo vệ mục tiêu số 3 (demo)",
    "Tổ bảo vệ chuyên trách khu vực A (demo)", "Tổ bảo vệ chuyên trách khu vực B (demo)",
)
# key sites: category, district, protection level, shape (poly/point/station), name, station kind to wrap
KEY_SITES = [
    ("government", "916", "special", "poly", "Khu trụ sở cơ quan thành phố A"),
    ("government", "916", "special", "poly", "Khu trụ sở cơ quan thành phố B"),
    ("government", "916", "level_1", "poly", "Trụ sở cơ quan quận C (Ninh Kiều)"),
    ("government", "919", "level_1", "poly", "Trụ sở cơ quan quận D (Cái Răng)"),
    ("government", "918", "level_1", "poly", "Trụ sở cơ quan quận E (Bình Thủy)"),
    ("government", "917", "level_2", "poly", "Trụ sở cơ quan quận F (Ô Môn)"),
    ("government", "923", "level_2", "poly", "Trụ sở cơ quan quận G (Thốt Nốt)"),
    ("public_security", "916", "level_1", "poly", "Trụ sở an ninh AN-1 (Ninh Kiều)"),
    ("public_security", "919", "level_1", "poly", "Trụ sở an ninh AN-2 (Cái Răng)"),
    ("public_security", "927", "level_2", "poly", "Trụ sở an ninh AN-3 (Thới Lai)"),
    ("defence", "926", "special", "poly", "Khu vực phòng thủ QP-1 (Phong Điền)"),
    ("defence", "925", "special", "poly", "Khu vực phòng thủ QP-2 (Cờ Đỏ)"),
    ("broadcasting", "916", "level_1", "poly", "Đài phát sóng PT-1 (Ninh Kiều)"),
    ("broadcasting", "919", "level_1", "point", "Cột phát sóng PT-2 (Cái Răng)"),
    ("telecom_hub", "916", "level_1", ("exchange", "VTSH"), "Đầu mối viễn thông VTSH Ninh Kiều"),
    ("telecom_hub", "919", "level_1", ("exchange", "MKN"), "Đầu mối viễn thông MKN Cái Răng"),
    ("telecom_hub", "918", "level_2", ("exchange", "TCT"), "Đầu mối viễn thông TCT Bình Thủy"),
    ("data_centre", "916", "level_1", ("data_centre", "VTSH"), "Trung tâm dữ liệu VTSH Ninh Kiều"),
    ("data_centre", "918", "level_1", ("data_centre", "MKN"), "Trung tâm dữ liệu MKN Bình Thủy"),
    ("data_centre", "916", "level_2", ("data_centre", "TCT"), "Trung tâm dữ liệu TCT Ninh Kiều"),
    ("energy", "917", "level_1", "poly", "Trạm biến áp NL-1 (Ô Môn)"),
    ("energy", "923", "level_2", "point", "Trạm biến áp NL-2 (Thốt Nốt)"),
    ("energy", "926", "level_2", "point", "Trạm biến áp NL-3 (Phong Điền)"),
    ("transport", "919", "level_2", "poly", "Cảng sông GT-1 (Cái Răng)"),
    ("transport", "918", "level_1", "poly", "Khu ga hàng không GT-2 (Bình Thủy)"),
    ("transport", "916", "level_2", "point", "Bến tàu GT-3 (Ninh Kiều)"),
]
SITE_SIZE_M = {  # (min, max) side of the rectangle
    "government": (80, 220), "public_security": (70, 160), "defence": (300, 650), "broadcasting": (90, 180),
    "energy": (250, 450), "transport": (200, 600),
}

FIELDS = {  # output attribute order and Shapefile types: (name, dbf type); "C" text, "N" integer
    "cable_routes": [("id", "C"), ("name", "C"), ("owner", "C"), ("medium", "C"), ("placement", "C"),
                     ("tier", "C"), ("criticality", "C")],
    "stations": [("id", "C"), ("name", "C"), ("owner", "C"), ("kind", "C"), ("criticality", "C"),
                 ("address", "C")],
    "incidents": [("id", "C"), ("occurred_at", "C"), ("type", "C"), ("status", "C"), ("severity", "C"),
                  ("damage_vnd", "N"), ("source", "C"), ("asset_id", "C"), ("description", "C")],
    "key_sites": [("id", "C"), ("name", "C"), ("category", "C"), ("protection_level", "C"),
                  ("guard_unit", "C"), ("demo", "L")],
}
SHAPEFILE_KINDS = ("cable_routes", "stations", "incidents")
DBF_DATE = (2026, 1, 1)  # fixed .dbf "last update" date (GDAL would write today's date)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
WGS84_PRJ = ('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
             'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')


# --- small data holders ------------------------------------------------------------------------------
@dataclass
class District:
    code: str
    name: str
    name_official: str
    type: str
    parent: str
    geom_ll: MultiPolygon            # lon/lat, as read
    geom: MultiPolygon               # metres
    inner: MultiPolygon              # metres, 30 m inside the border (stations keep off the border)
    centre: np.ndarray               # metres, from the facts CSV centroid
    area_km2: float
    wards: list = field(default_factory=list)   # (name, name_official)
    seeds: np.ndarray | None = None  # invented ward positions, metres


@dataclass
class Station:
    owner: str
    kind: str
    district: str
    xy: np.ndarray
    name: str = ""
    criticality: str = "low"
    address: str | None = None
    ward: int = 0
    id: str = ""
    main: bool = False


@dataclass
class Route:
    owner: str
    tier: str
    placement: str
    medium: str
    criticality: str
    name: str
    xy: np.ndarray
    prefix: str  # T, D or X
    id: str = ""


# --- geometry helpers ------------------------------------------------------------------------------
def contains_xy(geom, xy) -> np.ndarray:
    xy = np.asarray(xy).reshape(-1, 2)
    return shapely.contains_xy(geom, xy[:, 0], xy[:, 1])


def dedupe(pts: np.ndarray) -> np.ndarray:
    """Drop repeated consecutive vertices (the source rings have a few)."""
    keep = np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]
    return pts[keep]


def polyline_lengths(pts: np.ndarray) -> np.ndarray:
    """Cumulative length along a polyline, starting at 0."""
    return np.r_[0.0, np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]


def resample(pts: np.ndarray, step_m: float) -> np.ndarray:
    s = polyline_lengths(pts)
    n = max(2, int(round(s[-1] / step_m)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack((np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])))


def smooth(pts: np.ndarray, window: int) -> np.ndarray:
    """Moving average that keeps the end points."""
    half = window // 2
    padded = np.vstack([np.repeat(pts[:1], half, 0), pts, np.repeat(pts[-1:], half, 0)])
    kernel = np.ones(window) / window
    out = np.column_stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)])
    out[0], out[-1] = pts[0], pts[-1]
    return out


def left_normals(pts: np.ndarray) -> np.ndarray:
    tangent = np.gradient(pts, axis=0)
    tangent /= np.hypot(*tangent.T)[:, None]
    return np.column_stack((-tangent[:, 1], tangent[:, 0]))


def project(pts: np.ndarray, p: np.ndarray) -> float:
    """Distance along the polyline ``pts`` of the point nearest to ``p``."""
    a, b = pts[:-1], pts[1:]
    d = b - a
    len2 = (d ** 2).sum(1)
    t = np.clip(((p - a) * d).sum(1) / len2, 0.0, 1.0)
    dist = np.hypot(*(a + t[:, None] * d - p).T)
    k = int(np.argmin(dist))
    return float(polyline_lengths(pts)[k] + t[k] * math.sqrt(len2[k]))


def point_at(pts: np.ndarray, s_m: float) -> np.ndarray:
    s = polyline_lengths(pts)
    return np.array([np.interp(s_m, s, pts[:, 0]), np.interp(s_m, s, pts[:, 1])])


def cut(pts: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """The part of a polyline between distances s0 < s1 along it."""
    s = polyline_lengths(pts)
    inner = pts[(s > s0) & (s < s1)]
    return np.vstack([point_at(pts, s0), inner, point_at(pts, s1)])


def bent_path(rng, a, b, bend: float, wiggle_m: float, step_m: float) -> np.ndarray:
    """A gently curved path from a to b: a parabolic bow of up to ``bend`` x length plus a small wiggle."""
    d = b - a
    length = math.hypot(*d)
    n = int(np.clip(round(length / step_m) + 1, 3, 80))
    t = np.linspace(0.0, 1.0, n)
    normal = np.array([-d[1], d[0]]) / length
    k = rng.uniform(-bend, bend)
    ph1, ph2 = rng.uniform(0, 2 * math.pi, 2)
    offset = 4 * k * length * t * (1 - t) + wiggle_m * np.sin(np.pi * t) * (
        0.6 * np.sin(4 * np.pi * t + ph1) + 0.4 * np.sin(10 * np.pi * t + ph2))
    pts = a + t[:, None] * d + offset[:, None] * normal
    pts[0], pts[-1] = a, b
    return pts


def path_inside(rng, a, b, area, bend, wiggle_m, step_m, waypoint_towards=None):
    """A bent path inside ``area``: try smaller bends, then a detour via a waypoint; None if none fits."""
    for scale in (1.0, 0.5, 0.25, 0.0):
        pts = bent_path(rng, a, b, bend * scale, wiggle_m * scale, step_m)
        if area.contains(LineString(pts)):
            return pts
    if waypoint_towards is not None:
        mid = (a + b) / 2
        for pull in (0.2, 0.4, 0.6):
            w = mid + pull * (waypoint_towards - mid)
            p1 = bent_path(rng, a, w, 0.0, 0.0, step_m)
            p2 = bent_path(rng, w, b, 0.0, 0.0, step_m)
            pts = np.vstack([p1, p2[1:]])
            if area.contains(LineString(pts)):
                return pts
    return None


def rectangle(centre, w, h, angle, notch=False) -> Polygon:
    """A rotated w x h rectangle (L-shaped when ``notch``), counter-clockwise."""
    x, y = w / 2, h / 2
    if notch:
        corners = [(-x, -y), (x, -y), (x, 0), (0, 0), (0, y), (-x, y)]
    else:
        corners = [(-x, -y), (x, -y), (x, y), (-x, y)]
    c, s = math.cos(angle), math.sin(angle)
    pts = [(centre[0] + c * px - s * py, centre[1] + s * px + c * py) for px, py in corners]
    return orient(Polygon(pts), 1.0)


# --- loading the real geography --------------------------------------------------------------------
def load_geography(data_dir: Path):
    with open(data_dir / "cantho_districts.geojson", encoding="utf-8") as f:
        features = json.load(f)["features"]
    with open(data_dir / "cantho_boundary.geojson", encoding="utf-8") as f:
        city_ll = shape(json.load(f)["features"][0]["geometry"])
    with open(data_dir / "cantho_admin_units_facts.csv", encoding="utf-8", newline="") as f:
        facts = list(csv.DictReader(f))
    by_code = {r["code"]: r for r in facts}
    districts = []
    for feat in sorted(features, key=lambda ft: ft["properties"]["code"]):
        p = feat["properties"]
        geom_ll = shape(feat["geometry"])
        geom = geom_to_m(geom_ll)
        row = by_code[p["code"]]
        d = District(code=p["code"], name=p["name"], name_official=p["name_official"], type=p["type"],
                     parent=p["parent"], geom_ll=geom_ll, geom=geom, inner=geom.buffer(-30),
                     centre=to_m([[float(row["centroid_lon"]), float(row["centroid_lat"])]])[0],
                     area_km2=float(row["area_km2_computed"]))
        d.wards = [(r["name"], r["name_official"]) for r in facts if r["level"] == "ward" and r["parent"] == d.code]
        for g in (d.geom, d.inner):
            shapely.prepare(g)
        districts.append(d)
    city = geom_to_m(city_ll)
    return districts, city_ll, city


def river_arc(city) -> np.ndarray:
    """The city's north-east edge (the Hậu river), from Thốt Nốt's northern tip to Cái Răng's eastern tip."""
    poly = city.geoms[0] if city.geom_type == "MultiPolygon" else city
    ring = dedupe(np.asarray(poly.exterior.coords)[:-1])
    n = len(ring)
    i, j = int(np.argmax(ring[:, 1])), int(np.argmax(ring[:, 0]))
    a1 = ring[(i + np.arange((j - i) % n + 1)) % n]
    a2 = ring[(j + np.arange((i - j) % n + 1)) % n][::-1]
    return a1 if a1.sum(1).mean() > a2.sum(1).mean() else a2


# --- the network -----------------------------------------------------------------------------------
class Network:
    """Stations and cable routes, built in a fixed order from one random stream."""

    def __init__(self, rng, districts, city, city_inner):
        self.rng = rng
        self.districts = districts
        self.by_code = {d.code: d for d in districts}
        self.city = city
        self.city_inner = city_inner
        self.stations: list[Station] = []
        self.routes: list[Route] = []
        self.trunk_vertices: list[np.ndarray] = []
        self.corridors: dict[str, np.ndarray] = {}
        self.corridor_nodes: dict[tuple, float] = {}

    # stations
    def _gap_ok(self, p, gap_m):
        if not self.stations:
            return True
        xy = np.array([s.xy for s in self.stations])
        return bool(np.min(np.hypot(*(xy - p).T)) >= gap_m)

    def sample_point(self, d: District, mode_p=(0.45, 0.35, 0.20), sigma_m=None, gap_m=None):
        """One station position in district d: near the centre, near a trunk, or uniform (mode_p)."""
        _, _, _, sigma, gap = PROFILE[d.code]
        sigma = sigma_m or sigma
        gap = gap if gap_m is None else gap_m
        road = None
        if self.trunk_vertices:
            allv = np.vstack(self.trunk_vertices)
            road = allv[contains_xy(d.geom, allv)]
        minx, miny, maxx, maxy = d.geom.bounds
        for _ in range(5000):
            u = self.rng.random()
            if u < mode_p[0]:
                p = d.centre + self.rng.normal(0, sigma, 2)
            elif u < mode_p[0] + mode_p[1] and road is not None and len(road):
                p = road[self.rng.integers(len(road))] + self.rng.normal(0, 300, 2)
            else:
                p = np.array([self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)])
            if contains_xy(d.inner, p)[0] and self._gap_ok(p, gap):
                return p
        raise RuntimeError(f"could not place a station in {d.name}")

    def add_station(self, owner, kind, d, xy, **kw) -> Station:
        st = Station(owner=owner, kind=kind, district=d.code, xy=xy, **kw)
        st.ward = int(np.argmin(np.hypot(*(d.seeds - xy).T)))
        self.stations.append(st)
        return st

    def find(self, kind, owner=None, district=None, main=None):
        return [s for s in self.stations if s.kind == kind and (owner is None or s.owner == owner)
                and (district is None or s.district == district) and (main is None or s.main == main)]

    # routes
    def add_route(self, owner, tier, placement, medium, criticality, name, xy, prefix):
        if not self.city_inner.contains(LineString(xy)):
            raise RuntimeError(f"route {name!r} leaves the city outline")
        r = Route(owner, tier, placement, medium, criticality, name, np.asarray(xy), prefix)
        self.routes.append(r)
        if tier == "trunk":
            self.trunk_vertices.append(r.xy)
        return r

    def build(self):
        rng = self.rng
        # 1. main exchanges near every district centre
        for d in self.districts:
            for owner in TELCOS:
                cls = PROFILE[d.code][0]
                p = self.sample_point(d, mode_p=(1.0, 0.0, 0.0), sigma_m=350 if cls == "urban" else 700, gap_m=200)
                self.add_station(owner, "exchange", d, p, main=True)
        # 2. corridors along the Hậu river and the trunk sections between riverside district centres
        arc = resample(river_arc(self.city), 200.0)
        arc = smooth(arc, 15)
        normals = left_normals(arc)
        inward = 1.0 if contains_xy(self.city, arc + 800 * normals).mean() > 0.5 else -1.0
        for owner in TELCOS:
            s = polyline_lengths(arc)
            wiggle = 150 * np.sin(2 * math.pi * s / 6000 + rng.uniform(0, 2 * math.pi))
            line = smooth(arc + inward * (CORRIDOR_OFFSET_M[owner] + wiggle)[:, None] * normals, 9)
            self.corridors[owner] = line
            nodes = [project(line, self.by_code[c].centre) for c in RIVERSIDE]
            if nodes != sorted(nodes):
                raise RuntimeError("riverside district centres are not in river order")
            for k, (c0, c1) in enumerate(zip(RIVERSIDE, RIVERSIDE[1:])):
                xy = cut(line, nodes[k], nodes[k + 1])
                urban = c0 in ("918", "916", "919") and c1 in ("918", "916", "919")
                crit = "critical" if owner == "VTSH" else "high"
                self.add_route(owner, "trunk", "underground" if urban else "aerial", "fibre", crit,
                               f"Tuyến trục ven sông Hậu {self.by_code[c0].name} – {self.by_code[c1].name}", xy, "T")
            for c, s_node in zip(RIVERSIDE, nodes):
                self.corridor_nodes[(owner, c)] = s_node
        # spurs from riverside main exchanges to the corridor
        for c in RIVERSIDE:
            d = self.by_code[c]
            for owner in TELCOS:
                ex = self.find("exchange", owner, c, main=True)[0]
                node = point_at(self.corridors[owner], self.corridor_nodes[(owner, c)])
                xy = path_inside(rng, ex.xy, node, self.city_inner, 0.08, 60, 200)
                if xy is None:
                    raise RuntimeError(f"no spur for {owner} in {d.name}")
                self.add_route(owner, "trunk", "aerial" if PROFILE[c][0] != "urban" else "underground", "fibre",
                               "high", f"Tuyến trục nhánh Tổng đài {d.name} – trục ven sông Hậu", xy, "T")
        # 3. trunks between neighbouring district centres
        centre_city = np.mean([d.centre for d in self.districts], axis=0)
        for c0, c1, owners in INTER_DISTRICT:
            for owner in owners:
                a = self.find("exchange", owner, c0, main=True)[0].xy
                b = self.find("exchange", owner, c1, main=True)[0].xy
                xy = path_inside(rng, a, b, self.city_inner, 0.12, 150, 250, waypoint_towards=centre_city)
                if xy is None:
                    raise RuntimeError(f"no trunk {c0}-{c1} for {owner}")
                both_urban = PROFILE[c0][0] == "urban" and PROFILE[c1][0] == "urban"
                crit = "critical" if (owner == "VTSH" and both_urban) else ("high" if both_urban or owner == "VTSH" else "medium")
                placement = "underground" if both_urban else ("aerial" if rng.random() < 0.8 else "underground")
                self.add_route(owner, "trunk", placement, "fibre", crit,
                               f"Tuyến trục {self.by_code[c0].name} – {self.by_code[c1].name}", xy, "T")
        # 4. extra exchanges, data centres, gateways in the urban core, linked to an exchange
        for owner, c in EXTRA_EXCHANGES:
            d = self.by_code[c]
            self.add_station(owner, "exchange", d, self.sample_point(d, gap_m=1200), criticality="medium")
        for kind, table in (("data_centre", DATA_CENTRES), ("gateway", GATEWAYS)):
            for owner, c in table:
                d = self.by_code[c]
                p = self.sample_point(d, mode_p=(0.7, 0.3, 0.0), sigma_m=900, gap_m=300)
                st = self.add_station(owner, kind, d, p, criticality="critical")
                ex = min(self.find("exchange", owner, c), key=lambda e: math.hypot(*(e.xy - st.xy)))
                xy = path_inside(rng, ex.xy, st.xy, d.geom, 0.1, 30, 100)
                if xy is None:
                    raise RuntimeError(f"no link to the {kind} in {d.name}")
                label = "Trung tâm dữ liệu" if kind == "data_centre" else "Trạm cổng quốc tế"
                self.add_route(owner, "trunk", "underground", "fibre", "critical",
                               f"Tuyến trục kết nối {label} {d.name}", xy, "T")
        # 5. BTS and post offices
        for d in self.districts:
            cls, n_bts, n_po, _, _ = PROFILE[d.code]
            self.add_station(POSTAL, "post_office", d,
                             self.sample_point(d, mode_p=(1.0, 0, 0), sigma_m=500, gap_m=150), main=True)
            for _ in range(n_po):
                self.add_station(POSTAL, "post_office", d, self.sample_point(d, mode_p=(0.5, 0.3, 0.2)))
            for _ in range(n_bts):
                owner = TELCOS[int(rng.choice(3, p=TELCO_SHARE))]
                self.add_station(owner, "bts", d, self.sample_point(d))
        # 6. distribution
        for d in self.districts:
            for owner in TELCOS:
                self._distribution(d, owner)
        # 7. river crossings
        self._crossings()

    def _distribution(self, d: District, owner: str):
        rng = self.rng
        urban = PROFILE[d.code][0] == "urban"
        hubs = self.find("exchange", owner, d.code)
        bts = self.find("bts", owner, d.code)
        step = 100 if urban else 200
        counter = 0
        for hub in hubs:
            mine = [s for s in bts if min(hubs, key=lambda h: math.hypot(*(h.xy - s.xy))) is hub]
            mine.sort(key=lambda s: math.atan2(*(s.xy - hub.xy)[::-1]))
            k = 0
            while k < len(mine):
                size = int(rng.integers(1, 4))
                group = sorted(mine[k:k + size], key=lambda s: math.hypot(*(s.xy - hub.xy)))
                k += size
                pts, last = [hub.xy[None, :]], hub
                for st in group:
                    leg = path_inside(rng, last.xy, st.xy, d.geom, 0.08, 25 if urban else 60, step)
                    if leg is None:
                        continue
                    pts.append(leg[1:])
                    last = st
                if last is hub:
                    continue
                xy = np.vstack(pts)
                counter += 1
                medium = "copper" if rng.random() < 0.12 else "fibre"
                placement = ("underground" if rng.random() < 0.45 else "aerial") if urban else (
                    "underground" if rng.random() < 0.1 else "aerial")
                crit = SEVERITIES[int(rng.choice(3, p=(0.35, 0.5, 0.15) if urban else (0.55, 0.4, 0.05)))]
                ward = d.wards[last.ward][0]
                self.add_route(owner, "distribution", placement, medium, crit,
                               f"Tuyến phân phối {d.name} – {ward} {counter:02d}", xy, "D")
            if urban:  # copper cables radiating from the exchange
                for _ in range(5):
                    for _try in range(20):
                        angle = rng.uniform(0, 2 * math.pi)
                        length = rng.uniform(500, 1800)
                        end = hub.xy + length * np.array([math.cos(angle), math.sin(angle)])
                        xy = path_inside(rng, hub.xy, end, d.geom, 0.1, 20, 100)
                        if xy is not None:
                            break
                    else:
                        continue
                    counter += 1
                    direction = DIRECTIONS_VI[int(round(angle / (math.pi / 4))) % 8]
                    self.add_route(owner, "distribution", "aerial" if rng.random() < 0.7 else "underground",
                                   "copper", "low" if rng.random() < 0.7 else "medium",
                                   f"Tuyến cáp đồng {hub_label(hub, d)} hướng {direction} {counter:02d}", xy, "D")

    def _crossings(self):
        rng = self.rng
        nk, cr = self.by_code["916"], self.by_code["919"]
        # Cần Thơ river = the Ninh Kiều / Cái Răng border (the vertices the two rings share)
        cr_vertices = {tuple(c) for c in np.asarray(cr.geom_ll.geoms[0].exterior.coords)}
        nk_ring = np.asarray(nk.geom_ll.geoms[0].exterior.coords)
        shared = np.array([c in cr_vertices for c in map(tuple, nk_ring)])
        border = dedupe(to_m(nk_ring[shared]))
        self.ct_river = border
        length = polyline_lengths(border)[-1]
        fractions = np.linspace(0.1, 0.9, len(CT_RIVER_CROSSINGS)) + rng.uniform(-0.03, 0.03, len(CT_RIVER_CROSSINGS))
        normals = left_normals(resample(border, 50.0))
        fine = resample(border, 50.0)
        for n, (owner, f) in enumerate(zip(CT_RIVER_CROSSINGS, fractions), 1):
            s = f * length
            p = point_at(border, s)
            k = int(np.argmin(np.hypot(*(fine - p).T)))
            nrm = normals[k]
            for _ in range(20):
                a = p + nrm * rng.uniform(150, 350)
                b = p - nrm * rng.uniform(150, 350)
                ends = {contains_xy(nk.inner, a)[0] + 2 * contains_xy(cr.inner, a)[0],
                        contains_xy(nk.inner, b)[0] + 2 * contains_xy(cr.inner, b)[0]}
                if ends == {1, 2}:
                    break
            else:
                raise RuntimeError("no Cần Thơ river crossing fits")
            xy = bent_path(rng, a, b, 0.05, 0, 60)
            tier = "trunk" if n <= 3 else "distribution"
            self.add_route(owner, tier, "river_crossing", "fibre", "high" if tier == "trunk" else "medium",
                           f"Tuyến vượt sông Cần Thơ Ninh Kiều – Cái Răng {n:02d}", xy, "X")
        # Hậu river: from ~1.3 km inland to ~150 m inside the outline, the Cần Thơ half of a crossing
        arc = smooth(resample(river_arc(self.city), 100.0), 5)
        normals = left_normals(arc)
        inward = 1.0 if contains_xy(self.city, arc + 800 * normals).mean() > 0.5 else -1.0
        per_district: dict[str, int] = {}
        for c, owner in HAU_CROSSINGS:
            d = self.by_code[c]
            per_district[c] = n = per_district.get(c, 0) + 1
            on_edge = np.flatnonzero(contains_xy(d.geom.buffer(300), arc))
            for _ in range(50):
                k = int(on_edge[rng.integers(len(on_edge))])
                a = arc[k] + inward * normals[k] * rng.uniform(1100, 1500)
                b = arc[k] + inward * normals[k] * 150
                xy = bent_path(rng, a, b, 0.04, 0, 80)
                if contains_xy(d.inner, a)[0] and contains_xy(d.geom, b)[0] and self.city_inner.contains(LineString(xy)):
                    break
            else:
                raise RuntimeError(f"no Hậu crossing fits in {d.name}")
            self.add_route(owner, "trunk" if owner == "VTSH" else "distribution", "river_crossing", "fibre",
                           "critical" if owner == "VTSH" else "high", f"Tuyến vượt sông Hậu {d.name} {n:02d}", xy, "X")

    def finish(self):
        """Names, criticality, addresses and ids, in a fixed order."""
        rng = self.rng
        seen: dict[tuple, int] = {}
        for s in self.stations:
            d = self.by_code[s.district]
            ward, ward_official = d.wards[s.ward]
            if s.kind == "bts":
                key = (s.owner, s.district, s.ward)
                seen[key] = seen.get(key, 0) + 1
                s.name = f"Trạm BTS {ward} {seen[key]:02d}"
                urban = PROFILE[s.district][0] == "urban"
                s.criticality = SEVERITIES[int(rng.choice(3, p=(0.45, 0.40, 0.15) if urban else (0.6, 0.35, 0.05)))]
            elif s.kind == "exchange":
                s.name = hub_label(s, d)
                if s.main:
                    s.criticality = "high" if PROFILE[s.district][0] == "urban" or s.owner == "VTSH" else "medium"
            elif s.kind == "post_office":
                if s.main:
                    s.name = f"Bưu cục {d.name}"
                    s.criticality = "high" if s.district == "916" else "medium"
                else:
                    key = (s.owner, s.district, s.ward)
                    seen[key] = seen.get(key, 0) + 1
                    s.name = f"Bưu cục {ward}" + (f" {seen[key]}" if seen[key] > 1 else "")
            elif s.kind == "data_centre":
                s.name = f"Trung tâm dữ liệu {d.name}"
            elif s.kind == "gateway":
                s.name = f"Trạm cổng quốc tế {d.name}"
            if s.kind != "bts" or rng.random() < 0.7:
                s.address = f"{ward_official}, {d.name_official}, TP. Cần Thơ"
        order = sorted(range(len(self.stations)), key=lambda i: (
            self.stations[i].owner, list(KIND_CODE).index(self.stations[i].kind), self.stations[i].district, i))
        counters: dict[tuple, int] = {}
        for i in order:
            s = self.stations[i]
            key = (s.owner, s.kind)
            counters[key] = counters.get(key, 0) + 1
            s.id = f"{s.owner}-{KIND_CODE[s.kind]}-{counters[key]:04d}"
        self.stations = [self.stations[i] for i in order]
        counters = {}
        for r in self.routes:
            key = (r.owner, r.prefix)
            counters[key] = counters.get(key, 0) + 1
            r.id = f"{r.owner}-{r.prefix}-{counters[key]:03d}"
        self.routes.sort(key=lambda r: r.id)


def hub_label(hub: Station, d: District) -> str:
    return f"Tổng đài {d.name}" if hub.main else f"Tổng đài {d.wards[hub.ward][0]}"


def place_ward_seeds(rng, districts):
    """One invented position per real ward, spread over its district (no ward polygons exist)."""
    for d in districts:
        n = len(d.wards)
        gap = 0.6 * math.sqrt(d.area_km2 * 1e6 / n)
        minx, miny, maxx, maxy = d.geom.bounds
        seeds: list[np.ndarray] = []
        tries = 0
        while len(seeds) < n:
            tries += 1
            p = np.array([rng.uniform(minx, maxx), rng.uniform(miny, maxy)])
            g = gap if tries < 20000 else gap / 2
            if contains_xy(d.inner, p)[0] and all(math.hypot(*(p - q)) >= g for q in seeds):
                seeds.append(p)
        d.seeds = np.array(seeds)


# --- key sites -------------------------------------------------------------------------------------
def build_key_sites(rng, network: Network):
    sites = []
    taken: list = []
    for n, (category, c, level, how, name) in enumerate(KEY_SITES, 1):
        d = network.by_code[c]
        for _ in range(2000):
            if isinstance(how, tuple):  # a hub drawn around a station of that kind and owner
                kind, owner = how
                st = network.find(kind, owner, c)[0]
                w, h = rng.uniform(60, 140, 2)
                centre = st.xy + rng.uniform(-0.25, 0.25, 2) * (w, h)
                geom = rectangle(centre, w, h, rng.uniform(0, math.pi), notch=False)
            else:
                sigma = 1200 if PROFILE[c][0] == "urban" else 3000
                centre = d.centre + rng.normal(0, sigma, 2)
                if how == "point":
                    geom = Point(centre)
                else:
                    lo, hi = SITE_SIZE_M[category]
                    w, h = rng.uniform(lo, hi, 2)
                    geom = rectangle(centre, w, h, rng.uniform(0, math.pi), notch=rng.random() < 0.3)
            if not d.inner.contains(geom):
                continue
            if any(geom.distance(g) < 100 for g in taken):
                continue
            break
        else:
            raise RuntimeError(f"could not place key site {name}")
        taken.append(geom)
        sites.append({"id": f"KS-{n:03d}", "name": f"[DEMO] {name}", "category": category,
                      "protection_level": level, "guard_unit": GUARD_UNITS[int(rng.integers(len(GUARD_UNITS)))],
                      "demo": True, "geom": geom})
    return sites


# --- incidents -------------------------------------------------------------------------------------
class IncidentModel:
    def __init__(self, rng, network: Network, city_inner):
        self.rng = rng
        self.net = network
        self.city_inner = city_inner
        self.days = np.arange(START, END + np.timedelta64(1, "D"))
        n = len(self.days)
        months = self.days.astype("datetime64[M]").astype(int) % 12 + 1
        self.trend = np.linspace(0.85, 1.15, n)
        pre_tet = lambda width: np.any([(self.days >= t - np.timedelta64(width, "D")) & (self.days < t) for t in TET], axis=0)
        self.w_theft = np.where(np.isin(months, (12, 1, 2, 3, 4)), 1.5, 0.8) + 1.0 * pre_tet(21)
        self.w_fire = np.where(np.isin(months, (3, 4, 5)), 1.6, 1.0)
        self.w_market = 1.0 + 0.8 * pre_tet(30)
        self.w_postal = (1.0 + 1.0 * pre_tet(30)) * np.linspace(0.8, 1.3, n)
        self.w_cyber = np.linspace(0.6, 1.6, n)
        spike = np.zeros(n, bool)  # the ten days before 30/4 and 2/9
        for year in (2024, 2025, 2026):
            for holiday in (f"{year}-04-30", f"{year}-09-02"):
                t = np.datetime64(holiday)
                spike |= (self.days >= t - np.timedelta64(10, "D")) & (self.days <= t)
        self.w_reactionary = 1.0 + 2.5 * spike
        recent = self.days > END - np.timedelta64(RECENT_DAYS, "D")
        frac = np.cumsum(recent) / RECENT_DAYS
        self.w_emerging = np.where(recent, 1.0 + 5.0 * frac, 0.05)
        self.rows = []  # (xy, type, day index)
        self.hotspots = []
        routes = network.routes
        self.route_lines = [LineString(r.xy) for r in routes]
        self.route_tree = shapely.STRtree(self.route_lines)
        self.stations = network.stations
        self.station_tree = shapely.STRtree([Point(s.xy) for s in self.stations])

    # places
    def _inside(self, sampler, k):
        out, guard = [], 0
        while sum(len(o) for o in out) < k:
            guard += 1
            if guard > 1000:
                raise RuntimeError("incident sampler cannot stay inside the city")
            pts = sampler(k - sum(len(o) for o in out))
            out.append(pts[contains_xy(self.city_inner, pts)])
        return np.vstack(out)[:k]

    def along_routes(self, k, weights, segment_filter=None, max_offset_m=400.0, scale_m=90.0):
        segs_a, segs_b, segw = [], [], []
        for r, w in zip(self.net.routes, weights):
            a, b = r.xy[:-1], r.xy[1:]
            length = np.hypot(*(b - a).T)
            keep = np.ones(len(a), bool) if segment_filter is None else segment_filter((a + b) / 2)
            segs_a.append(a[keep]); segs_b.append(b[keep]); segw.append(length[keep] * w)
        a, b, w = np.vstack(segs_a), np.vstack(segs_b), np.concatenate(segw)
        p = w / w.sum()

        def sampler(m):
            i = self.rng.choice(len(a), size=m, p=p)
            t = self.rng.random(m)
            d = b[i] - a[i]
            nrm = np.column_stack((-d[:, 1], d[:, 0])) / np.hypot(*d.T)[:, None]
            off = np.minimum(self.rng.exponential(scale_m, m), max_offset_m) * self.rng.choice((-1.0, 1.0), m)
            return a[i] + t[:, None] * d + off[:, None] * nrm

        return self._inside(sampler, k)

    def around(self, centre, sigma_m, k):
        return self._inside(lambda m: centre + self.rng.normal(0, sigma_m, (m, 2)), k)

    def near_stations(self, k, kinds, radius_m):
        pool = np.array([s.xy for s in self.stations if s.kind in kinds])

        def sampler(m):
            i = self.rng.integers(len(pool), size=m)
            ang = self.rng.uniform(0, 2 * math.pi, m)
            r = radius_m * np.sqrt(self.rng.random(m))
            return pool[i] + np.column_stack((r * np.cos(ang), r * np.sin(ang)))

        return self._inside(sampler, k)

    def urban_weighted(self, k, sigma_m=350.0):
        weights = {"916": 0.40, "919": 0.15, "918": 0.15, "917": 0.08, "923": 0.08, "926": 0.05,
                   "927": 0.03, "925": 0.03, "924": 0.03}
        codes = sorted(weights)
        p = np.array([weights[c] for c in codes])
        by_d = {c: np.array([s.xy for s in self.stations if s.district == c]) for c in codes}

        def sampler(m):
            dc = self.rng.choice(len(codes), size=m, p=p / p.sum())
            out = np.empty((m, 2))
            for j in range(m):
                pool = by_d[codes[dc[j]]]
                out[j] = pool[self.rng.integers(len(pool))]
            return out + self.rng.normal(0, sigma_m, (m, 2))

        return self._inside(sampler, k)

    # times
    def draw_days(self, k, weights):
        p = weights / weights.sum()
        return self.rng.choice(len(self.days), size=k, p=p)

    def add(self, xy, types, day_weights):
        types = np.asarray(types)
        days = self.draw_days(len(xy), day_weights)
        for p, t, day in zip(xy, types, days):
            self.rows.append((p, str(t), int(day)))

    def mix(self, k, choices, probs):
        return np.asarray(choices)[self.rng.choice(len(choices), size=k, p=probs)]

    def snap_to_ct_river(self, lonlat):
        p = to_m([lonlat])[0]
        border = self.net.ct_river
        return point_at(border, project(border, p))

    def hotspot_centre(self, key, name, lon, lat, snap):
        centre = self.snap_to_ct_river((lon, lat)) if snap else to_m([[lon, lat]])[0]
        if not contains_xy(self.city_inner, centre)[0]:
            raise RuntimeError(f"hot spot {name} is outside the city outline")
        self.hotspots.append((key, name, to_lonlat(centre)[0]))
        return centre

    def build(self):
        net = self.net
        trend = self.trend
        exposure = np.array([(1.6 if r.placement == "aerial" else 0.7 if r.placement == "underground" else 1.0)
                             * (1.8 if r.medium == "copper" else 1.0) for r in net.routes])
        # A. cable theft and sabotage along the cables
        self.add(self.along_routes(1000, exposure), ["cable_theft"] * 1000, self.w_theft * trend)
        self.add(self.along_routes(180, exposure ** 0.5), ["sabotage"] * 180, self.w_theft * trend)
        # B. sabotage at stations
        self.add(self.near_stations(120, ("bts", "exchange"), 80), ["sabotage"] * 120, self.w_theft * trend)
        # C. bridges
        for key, name, lon, lat, snap, sigma, k in BRIDGES:
            c = self.hotspot_centre(key, name, lon, lat, snap)
            types = self.mix(k, ("cable_theft", "sabotage", "other"), (0.7, 0.15, 0.15))
            self.add(self.around(c, sigma, k), types, self.w_theft * trend)
        # D. markets
        for key, name, lon, lat, snap, sigma, k in MARKETS:
            c = self.hotspot_centre(key, name, lon, lat, snap)
            types = self.mix(k, ("fee_fraud", "postal_smuggling", "reactionary_material", "other"), (0.35, 0.2, 0.15, 0.3))
            self.add(self.around(c, sigma, k), types, self.w_market * trend)
        # E. emerging hot spots: one on the VTSH river trunk in Bình Thủy, one on the VTSH trunk
        #    Ninh Kiều – Phong Điền; most of their incidents fall in the last 90 days, rising
        bt = [r for r in net.routes if r.owner == "VTSH" and r.name.endswith("Bình Thủy – Ninh Kiều") and r.tier == "trunk"][0]
        pd_ = [r for r in net.routes if r.owner == "VTSH" and r.name == "Tuyến trục Ninh Kiều – Phong Điền"][0]
        for route, k, label in ((bt, 110, "Trục ven sông Hậu, Bình Thủy (mới nổi)"),
                                (pd_, 70, "Trục Ninh Kiều – Phong Điền (mới nổi)")):
            centre = point_at(route.xy, polyline_lengths(route.xy)[-1] / 2)
            self.hotspots.append(("emerging", label, to_lonlat(centre)[0]))
            weights = np.array([1.0 if r is route else 0.0 for r in net.routes])
            near = lambda mids, c=centre: np.hypot(*(mids - c).T) < 900
            xy = self.along_routes(k, weights, segment_filter=near, max_offset_m=250, scale_m=60)
            types = self.mix(k, ("cable_theft", "sabotage"), (0.8, 0.2))
            self.add(xy, types, self.w_emerging)
        # F. fires at stations
        self.add(self.near_stations(240, ("bts", "exchange", "data_centre", "post_office"), 60),
                 ["fire_explosion"] * 240, self.w_fire * trend)
        # G. smuggling at post offices
        self.add(self.near_stations(220, ("post_office",), 150), ["postal_smuggling"] * 220, self.w_postal)
        # H. cyber attacks at data centres, gateways and exchanges
        self.add(self.near_stations(260, ("data_centre", "gateway", "exchange"), 30), ["cyber_attack"] * 260, self.w_cyber)
        # I-K. spread by urban weight
        self.add(self.urban_weighted(250), ["fee_fraud"] * 250, trend)
        self.add(self.urban_weighted(160), ["reactionary_material"] * 160, self.w_reactionary)
        self.add(self.urban_weighted(250), ["other"] * 250, trend)
        return self.attributes()

    def attributes(self):
        rng = self.rng
        out = []
        for xy, itype, day in self.rows:
            date = self.days[day]
            hour = int(rng.choice(24, p=HOURS[itype] / HOURS[itype].sum()))
            minute = int(rng.integers(0, 60))
            occurred = f"{date}T{hour:02d}:{minute:02d}:00+07:00"
            age = int((END - date).astype(int))
            if age > 120:
                status_p = (0.0, 0.05, 0.07, 0.78, 0.10)
            elif age > 30:
                status_p = (0.03, 0.15, 0.30, 0.45, 0.07)
            else:
                status_p = (0.40, 0.30, 0.25, 0.05, 0.0)
            status = ("reported", "verified", "in_progress", "resolved", "rejected")[int(rng.choice(5, p=status_p))]
            sev_i = int(rng.choice(4, p=SEVERITY_P[itype]))
            severity = SEVERITIES[sev_i]
            source = SOURCES[int(rng.choice(5, p=SOURCE_P[itype]))]
            asset, route = self.asset_for(itype, xy)
            key = "sabotage_station" if itype == "sabotage" and asset != route.id else itype
            template = DESCRIPTIONS[key][int(rng.integers(len(DESCRIPTIONS[key])))]
            if itype == "cable_theft":
                lo, hi = THEFT_METRES[sev_i]
                metres = int(round(rng.uniform(lo, hi), -1))
                price = rng.uniform(*PRICE_PER_M[route.medium])
                damage = metres * price + rng.uniform(1e6, 5e6)
                text = template.format(m=metres, medium=MEDIUM_VI[route.medium], placement=PLACEMENT_VI[route.placement])
            else:
                rng_range = DAMAGE_RANGE[itype][sev_i]
                damage = 0.0 if rng_range is None else math.exp(rng.uniform(*np.log(rng_range)))
                text = template.format(k=int(rng.integers(3, 60)), medium=MEDIUM_VI[route.medium])
            if status == "rejected":
                damage = 0.0
            out.append({"xy": xy, "occurred_at": occurred, "type": itype, "status": status, "severity": severity,
                        "damage_vnd": int(round(damage, -3)), "source": source, "asset_id": asset, "description": text})
        out.sort(key=lambda r: (r["occurred_at"], r["xy"][0], r["xy"][1]))
        counters: dict[str, int] = {}
        for r in out:
            year = r["occurred_at"][:4]
            counters[year] = counters.get(year, 0) + 1
            r["id"] = f"VV-{year}-{counters[year]:04d}"
        return out

    def asset_for(self, itype, xy):
        """Nearest cable / station id for the asset-related types; also the cable (for its medium)."""
        p = Point(xy)
        route_i = int(self.route_tree.query_nearest(p, all_matches=False)[0])
        route = self.net.routes[route_i]
        if itype == "cable_theft":
            return route.id, route
        kinds = {"fire_explosion": None, "sabotage": None, "cyber_attack": ("data_centre", "gateway", "exchange"),
                 "postal_smuggling": ("post_office",)}
        if itype not in kinds:
            return None, route
        wanted = kinds[itype]
        if wanted is None:
            st_i = int(self.station_tree.query_nearest(p, all_matches=False)[0])
        else:
            cand = [i for i, s in enumerate(self.stations) if s.kind in wanted]
            dist = [math.hypot(*(self.stations[i].xy - xy)) for i in cand]
            st_i = cand[int(np.argmin(dist))]
        station = self.stations[st_i]
        if itype == "sabotage" and p.distance(self.route_lines[route_i]) < math.hypot(*(station.xy - xy)):
            return route.id, route
        return station.id, route


# --- writers -----------------------------------------------------------------------------------------
def _coords(xy) -> list:
    return [[float(x), float(y)] for x, y in to_lonlat(xy)]


def geojson_geometry(geom_m) -> dict:
    if isinstance(geom_m, np.ndarray):  # a polyline
        return {"type": "LineString", "coordinates": _coords(geom_m)}
    if geom_m.geom_type == "Point":
        return {"type": "Point", "coordinates": _coords([geom_m.x, geom_m.y])[0]}
    if geom_m.geom_type == "Polygon":
        poly = orient(geom_m, 1.0)
        return {"type": "Polygon", "coordinates": [_coords(np.asarray(poly.exterior.coords))]}
    raise TypeError(geom_m.geom_type)


def write_geojson(path: Path, name: str, features: list[tuple[dict, dict]]):
    """RFC 7946 GeoJSON, UTF-8, one feature per line (diff-friendly), stable key order."""
    lines = [json.dumps({"type": "Feature", "properties": props, "geometry": geom},
                        ensure_ascii=False, separators=(",", ":")) for props, geom in features]
    text = '{"type":"FeatureCollection","name":' + json.dumps(name) + ',"features":[\n' + ",\n".join(lines) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def shapefile_bytes(kind: str, records: list[dict], geoms: list) -> dict[str, bytes]:
    """A minimal ESRI Shapefile (Point or PolyLine) with a UTF-8 .dbf, as {extension: bytes}."""
    is_point = geoms and geoms[0].ndim == 1
    shape_type = 1 if is_point else 3
    contents = []
    for g in geoms:
        if is_point:
            contents.append(struct.pack("<i2d", 1, g[0], g[1]))
        else:
            pts = np.asarray(g, float)
            box = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
            contents.append(struct.pack("<i4d2i", 3, *box, 1, len(pts)) + struct.pack("<i", 0)
                            + pts.astype("<f8").tobytes())
    allpts = np.vstack([np.atleast_2d(g) for g in geoms])
    bbox = (allpts[:, 0].min(), allpts[:, 1].min(), allpts[:, 0].max(), allpts[:, 1].max())

    def header(length_bytes):
        return (struct.pack(">7i", 9994, 0, 0, 0, 0, 0, length_bytes // 2)
                + struct.pack("<2i4d4d", 1000, shape_type, *bbox, 0.0, 0.0, 0.0, 0.0))

    shp_body, shx_body, offset = io.BytesIO(), io.BytesIO(), 100
    for n, c in enumerate(contents, 1):
        shp_body.write(struct.pack(">2i", n, len(c) // 2) + c)
        shx_body.write(struct.pack(">2i", offset // 2, len(c) // 2))
        offset += 8 + len(c)
    shp = header(offset) + shp_body.getvalue()
    shx = header(100 + 8 * len(contents)) + shx_body.getvalue()

    fields = []
    for name, ftype in FIELDS[kind]:
        values = [r[name] for r in records]
        if ftype == "N":
            width = max(10, max(len(str(v)) for v in values if v is not None))
            encoded = [b" " * width if v is None else str(v).rjust(width).encode("ascii") for v in values]
        else:
            raw = [b"" if v is None else str(v).encode("utf-8") for v in values]
            width = max(1, max(len(b) for b in raw))
            if width > 254:
                raise ValueError(f"{kind}.{name}: a value is longer than the 254 bytes a .dbf field holds")
            encoded = [b.ljust(width, b" ") for b in raw]
        fields.append((name[:10], ftype, width, encoded))
    record_len = 1 + sum(f[2] for f in fields)
    header_len = 32 + 32 * len(fields) + 1
    y, m, d = DBF_DATE
    dbf = io.BytesIO()
    dbf.write(struct.pack("<4BIHH20x", 0x03, y - 1900, m, d, len(records), header_len, record_len))
    for name, ftype, width, _ in fields:
        dbf.write(struct.pack("<11sc4xBB14x", name.encode("ascii"), ftype.encode("ascii"), width, 0))
    dbf.write(b"\r")
    for i in range(len(records)):
        dbf.write(b" " + b"".join(f[3][i] for f in fields))
    dbf.write(b"\x1a")
    return {"shp": shp, "shx": shx, "dbf": dbf.getvalue(), "prj": WGS84_PRJ.encode("ascii"), "cpg": b"UTF-8"}


def write_zip(path: Path, members: dict[str, bytes]):
    """A zip with fixed timestamps and permissions, members sorted by name, deflated."""
    with zipfile.ZipFile(path, "w") as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            z.writestr(info, members[name], compresslevel=9)


# --- main --------------------------------------------------------------------------------------------
def generate(out_dir: Path = DEFAULT_OUT, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR) -> dict:
    """Write the demo files into ``out_dir``; return counts and hot spots (for the README and the log)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    districts, city_ll, city = load_geography(Path(data_dir))
    city_inner = city.buffer(-10)
    for g in (city, city_inner):
        shapely.prepare(g)
    rng_wards, rng_net, rng_sites, rng_inc = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))

    place_ward_seeds(rng_wards, districts)
    net = Network(rng_net, districts, city, city_inner)
    net.build()
    net.finish()
    sites = build_key_sites(rng_sites, net)
    model = IncidentModel(rng_inc, net, city_inner)
    incidents = model.build()

    # organisations
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name", "kind"])
    w.writerows(ORGS)
    (out_dir / "organisations.csv").write_text(buf.getvalue(), encoding="utf-8")

    # districts: the real polygons, schema attributes only
    with open(Path(data_dir) / "cantho_districts.geojson", encoding="utf-8") as f:
        src = json.load(f)["features"]
    write_geojson(out_dir / "districts.geojson", "districts", [
        ({k: f["properties"][k] for k in ("code", "name", "name_official", "type", "parent")}, f["geometry"])
        for f in sorted(src, key=lambda ft: ft["properties"]["code"])])

    layers = {
        "cable_routes": [({"id": r.id, "name": r.name, "owner": r.owner, "medium": r.medium, "placement": r.placement,
                           "tier": r.tier, "criticality": r.criticality}, r.xy) for r in net.routes],
        "stations": [({"id": s.id, "name": s.name, "owner": s.owner, "kind": s.kind, "criticality": s.criticality,
                       "address": s.address}, s.xy) for s in net.stations],
        "incidents": [({k: r[k] for k, _ in FIELDS["incidents"]}, r["xy"]) for r in incidents],
    }
    for kind, rows in layers.items():
        write_geojson(out_dir / f"{kind}.geojson", kind, [
            (props, geojson_geometry(xy if xy.ndim == 2 else Point(xy))) for props, xy in rows])
        geoms = [to_lonlat(xy) if xy.ndim == 2 else to_lonlat(xy)[0] for _, xy in rows]
        parts = shapefile_bytes(kind, [p for p, _ in rows], geoms)
        write_zip(out_dir / f"{kind}.zip", {f"{kind}.{ext}": data for ext, data in parts.items()})
    write_geojson(out_dir / "key_sites.geojson", "key_sites", [
        ({k: s[k] for k, _ in FIELDS["key_sites"]}, geojson_geometry(s["geom"])) for s in sites])

    counts = {
        "organisations": len(ORGS), "cable_routes": len(net.routes), "stations": len(net.stations),
        "key_sites": len(sites), "incidents": len(incidents),
    }
    return {"counts": counts, "hotspots": model.hotspots}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/demo)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    parser.add_argument("--data", type=Path, default=DATA_DIR,
                        help="folder with cantho_districts.geojson, cantho_boundary.geojson and the facts CSV")
    args = parser.parse_args(argv)
    result = generate(args.out, args.seed, args.data)
    for kind, n in result["counts"].items():
        print(f"{kind:14s} {n:6d}")
    for key, name, (lon, lat) in result["hotspots"]:
        print(f"hot spot  {lon:.4f} {lat:.4f}  {name}")
    total = sum(p.stat().st_size for p in Path(args.out).iterdir() if p.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
