"""Accounts: organisations and the users who sign in for them, in ``instance/accounts.sqlite``.

Roles (see DESIGN.md): ``admin`` (system operator), ``police``, ``district`` (a district People's Committee,
one district only) and ``enterprise`` (a telecom or postal enterprise, its own network only). The public
has no account. Every role but admin belongs to an organisation of the matching kind; an admin belongs to
none or to the police.

- ``organisations``: code (enterprises by their owner code such as ``VTSH``, districts by any code, the
  police e.g. ``CATP``), name, kind (police, district, enterprise), district_code (the GSO code such as
  ``916``, for districts only).
- ``users``: username, role, org_code, password_hash, must_change_password, disabled, created_at,
  password_changed_at. No password is ever stored or shown, only its scrypt hash.

The file is Python's sqlite3 only (WAL, foreign keys on), separate from the layer store: accounts change
on their own schedule and are backed up and protected on their own (the file is created readable by its
owner only). The schema is created on first use; ``PRAGMA user_version`` records its version.

Initial and reset passwords are generated here, shown once by the CLI, and must be changed at first login
(``must_change_password``); ``change_password`` clears the flag.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from werkzeug.security import check_password_hash, generate_password_hash

from webmap.errors import BadInput, NotFound
from webmap.sqlite_util import create_owner_only, create_schema, immediate_transaction

ACCOUNTS_FILE = "accounts.sqlite"
SCHEMA_VERSION = 1

ROLES = ("admin", "police", "district", "enterprise")
ORG_KINDS = ("police", "district", "enterprise")
# the organisation kinds each role may belong to (None: no organisation)
ROLE_ORG_KINDS = {
    "admin": (None, "police"),
    "police": ("police",),
    "district": ("district",),
    "enterprise": ("enterprise",),
}

# scrypt is memory-hard (here 2**15 x 8 x 128 bytes = 32 MiB per hash, ~0.1 s): guessing a stolen hash
# costs memory as well as time, which takes away most of the edge of GPUs and ASICs that make salted
# SHA-2 or PBKDF2 cheap to attack. It is in Python's hashlib (OpenSSL) and Werkzeug, so nothing more is
# installed; bcrypt and Argon2 would each need another compiled package.
HASH_METHOD = "scrypt"
# A hash of a password nobody knows, made with the same method and parameters as HASH_METHOD (a test
# checks they stay equal): checked when the username is unknown so that the answer takes as long as for
# a known user, and timing does not tell which usernames exist.
_DUMMY_HASH = (
    "scrypt:32768:8:1$zKMT8Ak7bgWDW7oi$6e703cb0868d693bccd67829dc746526154bfa426038c7069995c655e1993d"
    "24ec77cb5ff730dd1dbf9cfb6fafd1e531fcf97e7e68185842dad0c69259bd1c65"
)

USERNAME_RE = re.compile(r"[a-z0-9._-]{3,40}")
ORG_CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9_.-]{0,31}")
GSO_DISTRICT_RE = re.compile(r"[0-9]{3}")

MIN_PASSWORD_LENGTH = 12
LONG_PASSWORD_LENGTH = 20  # from this length on, the character classes do not matter
MAX_PASSWORD_LENGTH = 1024
GENERATED_GROUPS, GENERATED_GROUP_LENGTH = 4, 5  # xxxxx-xxxxx-xxxxx-xxxxx: 23 characters, ~115 bits
# letters and digits that cannot be mistaken for one another when read off a screen or paper
_GENERATED_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# The most common passwords (from the published breach top lists), with the Vietnamese ones and the names
# of this system, its city and its enterprises that people reach for first. Compared case-insensitively,
# and also after stripping digits and symbols from both ends and undoing the usual substitutions
# (p@ssw0rd), so that "Password2024!" is refused as well.
COMMON_PASSWORDS = frozenset("""
123456 123456789 12345678 12345 1234567 1234567890 123456789012 1234567890123 111111 000000 123123 654321
666666 121212 112233 123321 987654321 159753 11111111 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx 1qaz2wsx3edc
zaq12wsx zaq12wsxcde3 qazwsx qazwsxedc qazwsxedcrfv qwerty qwerty123 qwerty123456 qwertyuiop qwertyuiop123
asdfgh asdfghjkl zxcvbn zxcvbnm abc123 abcd1234 abcd1234abcd aaaaaa password password1 password123
password1234 passwordpassword passw0rd p@ssw0rd admin admin123 admin@123 admin123456 administrator root
toor changeme welcome welcome123 letmein secret login guest default test test123 iloveyou iloveyou123
monkey dragon master shadow sunshine princess football baseball soccer hockey superman batman starwars
trustno1 freedom whatever michael jennifer jordan hunter charlie thomas george computer internet access
matrix summer pokemon naruto 123qwe qwe123 matkhau matkhau123 matkhau123456 anhyeuem emyeuanh yeuem
anhyeuemnhieu iloveyouvn vietnam vietnam123 hanoi saigon cantho canthocity congan congan123 conganthanhpho
viettel vnpt mobifone vinaphone vietnamobile fpttelecom buudien webmap webmap123
""".split())
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"})


@dataclass(frozen=True)
class Organisation:
    code: str
    name: str
    kind: str
    district_code: str | None


@dataclass(frozen=True)
class User:
    """A user as the rest of the app sees it: never the password hash."""

    username: str
    role: str
    org_code: str | None
    org_kind: str | None
    district_code: str | None  # the GSO code of a district user's district
    must_change_password: bool
    disabled: bool
    created_at: str
    password_changed_at: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS organisations (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('police', 'district', 'enterprise')),
    district_code TEXT CHECK ((kind = 'district') = (district_code IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'police', 'district', 'enterprise')),
    org_code TEXT REFERENCES organisations (code),
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    CHECK (role = 'admin' OR org_code IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS users_org ON users (org_code);
-- alert delivery of an organisation (webmap/delivery.py), a table of its own made on any schema version
CREATE TABLE IF NOT EXISTS org_alert_settings (
    org_code TEXT PRIMARY KEY REFERENCES organisations (code),
    webhook_url TEXT,
    webhook_secret TEXT,
    emails TEXT NOT NULL DEFAULT '[]',
    distance_m REAL
);
-- sharing of incident reports between enterprises (opt-in: no row is no sharing), a table of its own too
CREATE TABLE IF NOT EXISTS org_incident_sharing (
    org_code TEXT PRIMARY KEY REFERENCES organisations (code),
    share_incidents INTEGER NOT NULL DEFAULT 0 CHECK (share_incidents IN (0, 1)),
    changed_at TEXT NOT NULL,
    changed_by TEXT
);
"""

_USER_SELECT = (
    "SELECT u.username, u.role, u.org_code, o.kind AS org_kind, o.district_code, u.must_change_password,"
    " u.disabled, u.created_at, u.password_changed_at FROM users u LEFT JOIN organisations o ON o.code = u.org_code"
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _user_from_row(row) -> User:
    return User(
        username=row["username"], role=row["role"], org_code=row["org_code"], org_kind=row["org_kind"],
        district_code=row["district_code"], must_change_password=bool(row["must_change_password"]),
        disabled=bool(row["disabled"]), created_at=row["created_at"], password_changed_at=row["password_changed_at"],
    )


def _org_from_row(row) -> Organisation:
    return Organisation(code=row["code"], name=row["name"], kind=row["kind"], district_code=row["district_code"])


# -- names and passwords ----------------------------------------------------------------------------------
def normalize_username(username) -> str:
    """Usernames are lower case; what people type is folded to it (logins are case-insensitive)."""
    return str(username or "").strip().lower()


def check_username(username) -> str:
    name = normalize_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise BadInput(f"username {str(username)!r} is not valid: use 3 to 40 of a-z, 0-9, '.', '_', '-'")
    return name


def check_org_code(code) -> str:
    value = str(code or "").strip().upper()
    if not ORG_CODE_RE.fullmatch(value):
        raise BadInput(f"organisation code {str(code)!r} is not valid: use 1 to 32 of A-Z, 0-9, '.', '_', '-'")
    return value


def _common_candidates(password: str):
    lowered = password.lower()
    yield lowered
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)  # digits and symbols around a word
    if core:
        yield core
        yield core.translate(_LEET)
    yield lowered.translate(_LEET)


def check_password_rules(password, username=None) -> None:
    """Refuse a weak password with a one-line reason (a BadInput); the password is never in the message.

    At least 12 characters; not containing the username; at least 3 of the 4 classes (lower case, upper
    case, digits, others) unless it has 20 characters or more (a long passphrase is strong as it is); not
    one of the most common passwords, nor one of them with digits and symbols around it.
    """
    if not isinstance(password, str) or not password:
        raise BadInput("password refused: it is empty", vi="Mật khẩu không được chấp nhận: chưa nhập mật khẩu")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(f"password refused: too short ({len(password)} characters, at least {MIN_PASSWORD_LENGTH})",
                       vi=f"Mật khẩu không được chấp nhận: quá ngắn ({len(password)} ký tự, cần ít nhất {MIN_PASSWORD_LENGTH})")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadInput(f"password refused: too long (at most {MAX_PASSWORD_LENGTH} characters)",
                       vi=f"Mật khẩu không được chấp nhận: quá dài (tối đa {MAX_PASSWORD_LENGTH} ký tự)")
    if any(candidate in COMMON_PASSWORDS for candidate in _common_candidates(password)):
        raise BadInput("password refused: it is one of the most common passwords, or one with a few characters added",
                       vi="Mật khẩu không được chấp nhận: đây là mật khẩu phổ biến (hoặc chỉ thêm vài ký tự vào mật khẩu phổ biến)")
    name = normalize_username(username)
    if name and name in password.lower():
        raise BadInput("password refused: it contains the username",
                       vi="Mật khẩu không được chấp nhận: mật khẩu chứa tên đăng nhập")
    classes = sum((
        any(ch.islower() for ch in password),
        any(ch.isupper() for ch in password),
        any(ch.isdigit() for ch in password),
        any(not (ch.islower() or ch.isupper() or ch.isdigit()) for ch in password),
    ))
    if classes < 3 and len(password) < LONG_PASSWORD_LENGTH:
        raise BadInput(f"password refused: use at least 3 of lower case, upper case, digits and other characters "
                       f"(it has {classes}), or at least {LONG_PASSWORD_LENGTH} characters",
                       vi=f"Mật khẩu không được chấp nhận: cần có ít nhất 3 trong 4 loại ký tự (chữ thường, chữ hoa, "
                          f"chữ số, ký tự khác; mật khẩu này có {classes}) hoặc dài từ {LONG_PASSWORD_LENGTH} ký tự trở lên")


def generate_password(username=None) -> str:
    """A one-time password from ``secrets``: four groups of five unambiguous letters and digits joined by
    dashes (23 characters, about 115 bits), always passing ``check_password_rules``."""
    while True:
        chars = [secrets.choice(_GENERATED_ALPHABET) for _ in range(GENERATED_GROUPS * GENERATED_GROUP_LENGTH)]
        password = "-".join("".join(chars[i:i + GENERATED_GROUP_LENGTH])
                            for i in range(0, len(chars), GENERATED_GROUP_LENGTH))
        try:
            check_password_rules(password, username)
        except BadInput:  # vanishingly rare (e.g. the username inside it): draw again
            continue
        return password


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(password_hash: str, password) -> bool:
    """Constant-time comparison (Werkzeug uses hmac.compare_digest)."""
    if not isinstance(password, str):
        password = ""
    return check_password_hash(password_hash, password)


# -- the store ----------------------------------------------------------------------------------------------
class AccountStore:
    """Organisations and users in one SQLite file, with one connection per thread."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    # -- connections ----------------------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            self._ensure_schema()
            con = self._connect()
            self._local.con = con
        return con

    def _connect(self) -> sqlite3.Connection:
        # autocommit: every change below is one statement or an explicit BEGIN IMMEDIATE ... COMMIT
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys = ON")  # per connection in SQLite
        return con

    def _ensure_schema(self):
        with self._schema_lock:
            if self._schema_ready:
                return
            create_owner_only(self.path)  # password hashes
            con = self._connect()
            try:
                con.execute("PRAGMA journal_mode = WAL")
                with immediate_transaction(con):
                    create_schema(con, _SCHEMA, SCHEMA_VERSION, self.path)
            finally:
                con.close()
            self._schema_ready = True

    def _transaction(self):
        """BEGIN IMMEDIATE takes the write lock at once, so a check and the write it decides are atomic."""
        return immediate_transaction(self._con())

    def close(self):
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- organisations --------------------------------------------------------------------------------------
    def add_org(self, code, name, kind, district_code=None) -> Organisation:
        code = check_org_code(code)
        name = " ".join(str(name or "").split())
        if not name:
            raise BadInput(f"organisation {code} needs a name")
        if kind not in ORG_KINDS:
            raise BadInput(f"organisation kind {kind!r} is not one of {', '.join(ORG_KINDS)}")
        if kind == "district":
            if district_code is None and GSO_DISTRICT_RE.fullmatch(code):
                district_code = code
            district_code = str(district_code or "").strip()
            if not GSO_DISTRICT_RE.fullmatch(district_code):
                raise BadInput(f"district organisation {code} needs the 3-digit GSO code of its district "
                               f"(--district-code, e.g. 916 for Ninh Kiều)")
        elif district_code not in (None, ""):
            raise BadInput(f"only a district organisation has a district code, and {code} is {kind}")
        else:
            district_code = None
        try:
            with self._transaction() as con:
                con.execute("INSERT INTO organisations (code, name, kind, district_code) VALUES (?, ?, ?, ?)",
                            (code, name, kind, district_code))
        except sqlite3.IntegrityError:
            raise BadInput(f"organisation {code} already exists") from None
        return self.get_org(code)

    def get_org(self, code) -> Organisation:
        value = str(code or "").strip().upper()
        row = self._con().execute("SELECT * FROM organisations WHERE code = ?", (value,)).fetchone()
        if row is None:
            raise NotFound(f"organisation {value or code!r} does not exist (see webmap orgs list)")
        return _org_from_row(row)

    def list_orgs(self) -> list[Organisation]:
        rows = self._con().execute("SELECT * FROM organisations ORDER BY kind, code").fetchall()
        return [_org_from_row(r) for r in rows]

    # -- users ----------------------------------------------------------------------------------------------
    def _check_role_and_org(self, role, org_code) -> str | None:
        if role not in ROLES:
            raise BadInput(f"role {role!r} is not one of {', '.join(ROLES)}")
        allowed = ROLE_ORG_KINDS[role]
        if org_code in (None, ""):
            if None in allowed:
                return None
            raise BadInput(f"role {role} needs an organisation of kind {' or '.join(allowed)} (--org CODE)")
        org = self.get_org(org_code)
        if org.kind not in allowed:
            wanted = " or ".join("no organisation" if k is None else f"a {k} organisation" for k in allowed)
            raise BadInput(f"role {role} does not fit organisation {org.code} ({org.kind}): "
                           f"a {role} account belongs to {wanted}")
        return org.code

    def add_user(self, username, role, org_code=None, password=None) -> tuple[User, str]:
        """Create a user with a generated one-time password (or ``password``, checked against the rules);
        either way it must be changed at first login. Returns the user and the password, shown once."""
        username = check_username(username)
        org = self._check_role_and_org(role, org_code)
        if password is None:
            password = generate_password(username)
        else:
            check_password_rules(password, username)
        password_hash = hash_password(password)  # slow on purpose: outside the write transaction
        now = _now()
        try:
            with self._transaction() as con:
                con.execute(
                    "INSERT INTO users (username, role, org_code, password_hash, must_change_password, disabled,"
                    " created_at, password_changed_at) VALUES (?, ?, ?, ?, 1, 0, ?, ?)",
                    (username, role, org, password_hash, now, now))
        except sqlite3.IntegrityError:
            if self._user_row(username) is not None:
                raise BadInput(f"user {username} already exists") from None
            raise
        return self.get_user(username), password

    def setup_admin(self, username="admin") -> tuple[User, str]:
        """The first admin, with a generated one-time password; refused once any admin exists."""
        username = check_username(username)
        password = generate_password(username)
        password_hash = hash_password(password)
        now = _now()
        with self._transaction() as con:
            existing = con.execute("SELECT username FROM users WHERE role = 'admin' ORDER BY username").fetchone()
            if existing is not None:
                raise BadInput(f"an admin already exists ({existing['username']}); use webmap users reset-password "
                               f"or webmap users enable to recover it")
            if con.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise BadInput(f"user {username} already exists; choose another --username")
            con.execute(
                "INSERT INTO users (username, role, org_code, password_hash, must_change_password, disabled,"
                " created_at, password_changed_at) VALUES (?, 'admin', NULL, ?, 1, 0, ?, ?)",
                (username, password_hash, now, now))
        return self.get_user(username), password

    def has_admin(self) -> bool:
        return self._con().execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").fetchone() is not None

    def _user_row(self, username):
        return self._con().execute(_USER_SELECT + " WHERE u.username = ?", (username,)).fetchone()

    def get_user(self, username) -> User:
        name = normalize_username(username)
        row = self._user_row(name)
        if row is None:
            raise NotFound(f"user {name or username!r} does not exist (see webmap users list)")
        return _user_from_row(row)

    def list_users(self, org_code=None) -> list[User]:
        sql, params = _USER_SELECT, []
        if org_code:
            sql += " WHERE u.org_code = ?"
            params.append(str(org_code).strip().upper())
        rows = self._con().execute(sql + " ORDER BY u.username", params).fetchall()
        return [_user_from_row(r) for r in rows]

    def _set_disabled(self, username, disabled: bool) -> User:
        user = self.get_user(username)
        with self._transaction() as con:
            con.execute("UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), user.username))
        return self.get_user(user.username)

    def disable_user(self, username) -> User:
        return self._set_disabled(username, True)

    def enable_user(self, username) -> User:
        return self._set_disabled(username, False)

    def reset_password(self, username) -> str:
        """A new generated one-time password (returned, to be shown once); it must be changed at first login."""
        user = self.get_user(username)
        password = generate_password(user.username)
        self._set_password(user.username, hash_password(password), must_change=True)
        return password

    def _set_password(self, username, password_hash, must_change: bool):
        with self._transaction() as con:
            con.execute("UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ?"
                        " WHERE username = ?", (password_hash, int(must_change), _now(), username))

    def change_password(self, username, old_password, new_password) -> User:
        """The user's own change: the current password must be right; the new one must pass the rules and
        differ from it. Clears must_change_password."""
        user = self.authenticate(username, old_password)
        if user is None:
            raise BadInput("password not changed: the username or the current password is wrong",
                           vi="Chưa đổi mật khẩu: tên đăng nhập hoặc mật khẩu hiện tại không đúng")
        if new_password == old_password:
            raise BadInput("password refused: it is the same as the current one",
                           vi="Mật khẩu không được chấp nhận: trùng với mật khẩu hiện tại")
        check_password_rules(new_password, user.username)
        self._set_password(user.username, hash_password(new_password), must_change=False)
        return self.get_user(user.username)

    def authenticate(self, username, password) -> User | None:
        """The user if the password is right and the account enabled, else None (unknown user, wrong
        password and disabled account alike). A password hash is always checked, a dummy one for an unknown
        username, so the time taken does not tell whether the username exists."""
        name = normalize_username(username)
        row = None
        if USERNAME_RE.fullmatch(name):
            row = self._con().execute("SELECT password_hash, disabled FROM users WHERE username = ?",
                                      (name,)).fetchone()
        if row is None:
            verify_password(_DUMMY_HASH, password)
            return None
        if not verify_password(row["password_hash"], password) or row["disabled"]:
            return None
        return self.get_user(name)

    # -- sharing incident reports between enterprises (webmap/access.py applies it) -------------------------
    def shares_incidents(self, code) -> bool:
        """Whether enterprise ``code`` lets other enterprises see the location, time and type of its reports."""
        org = self.get_org(code)
        row = self._con().execute("SELECT share_incidents FROM org_incident_sharing WHERE org_code = ?",
                                  (org.code,)).fetchone()
        return bool(row and row["share_incidents"])

    def set_share_incidents(self, code, on: bool, changed_by=None) -> bool:
        """Opt enterprise ``code`` in (``on``) or out of sharing its incident reports; only enterprises share."""
        org = self.get_org(code)
        if org.kind != "enterprise":
            raise BadInput(f"only an enterprise shares its incident reports, and {org.code} is {org.kind}")
        with self._transaction() as con:
            con.execute("INSERT OR REPLACE INTO org_incident_sharing (org_code, share_incidents, changed_at, changed_by)"
                        " VALUES (?, ?, ?, ?)", (org.code, int(bool(on)), _now(), changed_by))
        return self.shares_incidents(org.code)

    def incident_reporters(self) -> list[tuple[str, str, bool]]:
        """``(code, kind, shares incidents)`` of every organisation, in one query (the access rules ask often)."""
        rows = self._con().execute(
            "SELECT o.code, o.kind, COALESCE(s.share_incidents, 0) AS shares FROM organisations o"
            " LEFT JOIN org_incident_sharing s ON s.org_code = o.code ORDER BY o.code").fetchall()
        return [(row["code"], row["kind"], bool(row["shares"])) for row in rows]


    # -- alert delivery settings (webmap/delivery.py checks the values; this stores them) ---------------------
    def get_alert_settings(self, code) -> "AlertSettings":
        """The organisation's alert channels and distance; empty settings when none were ever set."""
        org = self.get_org(code)
        row = self._con().execute("SELECT * FROM org_alert_settings WHERE org_code = ?", (org.code,)).fetchone()
        return _alert_settings_from_row(row) if row is not None else AlertSettings(org.code)

    def list_alert_settings(self) -> dict:
        """``{org code: AlertSettings}`` of every organisation that has some (one query: cheap per alert)."""
        rows = self._con().execute("SELECT * FROM org_alert_settings").fetchall()
        return {row["org_code"]: _alert_settings_from_row(row) for row in rows}

    def set_alert_settings(self, code, **changes) -> "AlertSettings":
        """Change some of webhook_url, webhook_secret, emails (a list), distance_m (None clears a value)."""
        unknown = set(changes) - {"webhook_url", "webhook_secret", "emails", "distance_m"}
        if unknown:
            raise TypeError(f"unknown alert settings: {sorted(unknown)}")
        current = self.get_alert_settings(code)
        values = {"webhook_url": current.webhook_url, "webhook_secret": current.webhook_secret,
                  "emails": list(current.emails), "distance_m": current.distance_m, **changes}
        with self._transaction() as con:
            con.execute("INSERT OR REPLACE INTO org_alert_settings (org_code, webhook_url, webhook_secret, emails,"
                        " distance_m) VALUES (?, ?, ?, ?, ?)",
                        (current.org_code, values["webhook_url"], values["webhook_secret"],
                         json.dumps(list(values["emails"] or [])), values["distance_m"]))
        return self.get_alert_settings(current.org_code)


@dataclass(frozen=True)
class AlertSettings:
    """Where an organisation's alerts go (webhook, e-mail) and its own alert distance (None: the default)."""

    org_code: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    emails: tuple = ()
    distance_m: float | None = None


def _alert_settings_from_row(row) -> AlertSettings:
    return AlertSettings(row["org_code"], row["webhook_url"], row["webhook_secret"], tuple(json.loads(row["emails"])),
                         row["distance_m"])


def accounts_path(instance_path: str) -> str:
    return os.path.join(instance_path, ACCOUNTS_FILE)


def get_accounts(app=None) -> AccountStore:
    """The app's AccountStore (one per app, kept in ``app.extensions``); the current app by default."""
    if app is None:
        from flask import current_app

        app = current_app
    from webmap.sqlite_util import per_app

    return per_app(app, "webmap_accounts", lambda: AccountStore(accounts_path(app.instance_path)))
