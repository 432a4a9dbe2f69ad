"""Settings: defaults here, then ``instance/config.py``, then ``WEBMAP_*`` environment variables.

Every setting is documented in README.md (a test checks that). Bad values are refused with the key named.
"""

from __future__ import annotations

import os

from webmap.errors import BadInput

DEFAULTS = {
    # Where the data lives. Empty: the embedded store, folder:instance/store (an SQLite catalogue, Arrow files).
    "STORE_URL": "",
    # Language of pages when the visitor has not chosen one: vi or en.
    "DEFAULT_LANGUAGE": "vi",
    # Most features one /api/layers/<kind>/features answer may hold (the page asks for less).
    "MAX_FEATURES": 5000,
    # Features the map asks for per layer and view.
    "PAGE_FEATURES": 2000,
    # Basemap: empty for none (the default: context layers on a plain background), a tile URL template
    # on your own tile server such as http://tiles.intranet/{z}/{x}/{y}.png, or a local .mbtiles path.
    "BASEMAP": "",
    "BASEMAP_ATTRIBUTION": "",
    # Map start view (lon/lat of Cần Thơ) and zoom.
    "MAP_CENTER": (10.06, 105.62),
    "MAP_ZOOM": 11,
    # An enterprise sees the incidents within this distance (metres) of its own cables and stations.
    "INCIDENT_NEAR_ASSETS_M": 500,
    # Largest request body (bytes).
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    # Address and port of `webmap serve`.
    "HOST": "127.0.0.1",
    "PORT": 5000,
    # Session cookies: never readable by scripts, not sent on cross-site requests; set
    # SESSION_COOKIE_SECURE=1 when the app is served over HTTPS (behind a reverse proxy).
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    # Compile the priority analysis (esda + numba, about 21 s) in a background thread as the server starts.
    "PRIORITY_WARMUP": True,
    # Alerts (webmap/alerts.py, webmap/delivery.py): an enterprise is alerted to an incident within
    # ALERT_DISTANCE_M of its cables and stations (per-organisation override, never beyond
    # INCIDENT_NEAR_ASSETS_M); the police to one within KEY_SITE_ZONE_M of a key site. Imports alert only for
    # new incidents of the last ALERT_MAX_AGE_DAYS days.
    "ALERT_DISTANCE_M": 100,
    "KEY_SITE_ZONE_M": 200,
    "ALERT_DUTY_ASSETS": True,
    "ALERT_MAX_AGE_DAYS": 7,
    # Delivery by webhook and e-mail: a worker thread in `webmap serve` (DELIVERY_WORKER=0: none, use
    # `webmap alerts deliver` from cron), retries with back-off DELIVERY_BACKOFF_S x 2^(n-1) up to
    # DELIVERY_MAX_ATTEMPTS, each send bounded by DELIVERY_TIMEOUT_S and claimed for DELIVERY_LEASE_S.
    "DELIVERY_WORKER": True,
    "DELIVERY_MAX_ATTEMPTS": 8,
    "DELIVERY_BACKOFF_S": 30,
    "DELIVERY_TIMEOUT_S": 10,
    "DELIVERY_LEASE_S": 60,
    # The SMTP server alerts are e-mailed through (empty SMTP_HOST: no e-mail).
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_FROM": "webmap@localhost",
    "SMTP_STARTTLS": False,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
}

_INT_KEYS = {"MAX_FEATURES", "PAGE_FEATURES", "MAP_ZOOM", "MAX_CONTENT_LENGTH", "PORT", "INCIDENT_NEAR_ASSETS_M"}
_BOOL_KEYS = {"SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SECURE", "PRIORITY_WARMUP"}
# alerts and their delivery
_INT_KEYS |= {"ALERT_DISTANCE_M", "KEY_SITE_ZONE_M", "ALERT_MAX_AGE_DAYS", "DELIVERY_MAX_ATTEMPTS", "DELIVERY_BACKOFF_S",
              "DELIVERY_TIMEOUT_S", "DELIVERY_LEASE_S", "SMTP_PORT"}
_BOOL_KEYS |= {"DELIVERY_WORKER", "SMTP_STARTTLS", "ALERT_DUTY_ASSETS"}
SECRET_KEY_FILE = "secret_key"


def instance_secret_key(instance_path: str) -> str:
    """The key that signs sessions: WEBMAP_SECRET_KEY, else ``instance/secret_key``, made on first use.

    Never in the repository: the file is created with mode 0600 in the instance folder (gitignored).
    """
    from_env = os.environ.get("WEBMAP_SECRET_KEY")
    if from_env:
        if len(from_env) < 32:
            raise BadInput("WEBMAP_SECRET_KEY must hold at least 32 characters")
        return from_env
    path = os.path.join(instance_path, SECRET_KEY_FILE)
    try:
        with open(path, encoding="ascii") as fh:
            key = fh.read().strip()
    except FileNotFoundError:
        import secrets

        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return instance_secret_key(instance_path)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
    if len(key) < 32:
        raise BadInput(f"{path} must hold a key of at least 32 characters")
    return key


def from_environment(environ=os.environ) -> dict:
    """``WEBMAP_<KEY>`` overrides ``<KEY>``; integers are parsed, and a bad one is named."""
    out = {}
    for key in DEFAULTS:
        value = environ.get(f"WEBMAP_{key}")
        if value is None:
            continue
        if key in _BOOL_KEYS:
            if value.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise BadInput(f"WEBMAP_{key} must be 1 or 0, got {value!r}")
            value = value.lower() in ("1", "true", "yes")
        elif key in _INT_KEYS:
            try:
                value = int(value)
            except ValueError:
                raise BadInput(f"WEBMAP_{key} must be a whole number, got {value!r}") from None
        if key == "MAP_CENTER":
            try:
                lat, lon = (float(v) for v in value.split(","))
            except ValueError:
                raise BadInput(f"WEBMAP_MAP_CENTER must be 'lat,lon', got {value!r}") from None
            value = (lat, lon)
        out[key] = value
    return out


def validate(config) -> None:
    if config["DEFAULT_LANGUAGE"] not in ("vi", "en"):
        raise BadInput(f"DEFAULT_LANGUAGE must be vi or en, got {config['DEFAULT_LANGUAGE']!r}")
    for key in ("MAX_FEATURES", "PAGE_FEATURES"):
        if not 1 <= int(config[key]) <= 1_000_000:
            raise BadInput(f"{key} must be between 1 and 1000000, got {config[key]!r}")
    if int(config["PAGE_FEATURES"]) > int(config["MAX_FEATURES"]):
        raise BadInput("PAGE_FEATURES must not exceed MAX_FEATURES")
    if not 0 <= int(config["INCIDENT_NEAR_ASSETS_M"]) <= 50_000:
        raise BadInput(f"INCIDENT_NEAR_ASSETS_M must be between 0 and 50000 metres, got {config['INCIDENT_NEAR_ASSETS_M']!r}")
    if config["SESSION_COOKIE_SAMESITE"] not in ("Lax", "Strict"):
        raise BadInput(f"SESSION_COOKIE_SAMESITE must be Lax or Strict, got {config['SESSION_COOKIE_SAMESITE']!r}")
    _validate_alerts(config)
    basemap = config["BASEMAP"]
    if basemap and not (basemap.endswith(".mbtiles") or ("{z}" in basemap and "{x}" in basemap and "{y}" in basemap)):
        raise BadInput(f"BASEMAP must be a tile URL template with {{z}}/{{x}}/{{y}} or a .mbtiles file, got {basemap!r}")
    if basemap.endswith(".mbtiles") and not os.path.isfile(basemap):
        raise BadInput(f"BASEMAP file not found: {basemap}")


def _validate_alerts(config) -> None:
    """The alert and delivery settings (webmap/alerts.py, webmap/delivery.py), each checked with its key named."""
    ranges = {"ALERT_DISTANCE_M": (0, 50_000), "KEY_SITE_ZONE_M": (0, 50_000), "ALERT_MAX_AGE_DAYS": (0, 36_500),
              "DELIVERY_MAX_ATTEMPTS": (1, 100), "DELIVERY_BACKOFF_S": (0, 86_400), "DELIVERY_TIMEOUT_S": (1, 600),
              "DELIVERY_LEASE_S": (2, 86_400), "SMTP_PORT": (1, 65_535)}
    for key, (low, high) in ranges.items():
        if not low <= float(config[key]) <= high:
            raise BadInput(f"{key} must be between {low} and {high}, got {config[key]!r}")
    if float(config["DELIVERY_LEASE_S"]) < 3 * float(config["DELIVERY_TIMEOUT_S"]):
        # a send (several network round trips, each bounded by the timeout) must end before its claim runs
        # out, or a second worker could send it at the same time
        raise BadInput(f"DELIVERY_LEASE_S ({config['DELIVERY_LEASE_S']}) must be at least 3 times DELIVERY_TIMEOUT_S "
                       f"({config['DELIVERY_TIMEOUT_S']})")
