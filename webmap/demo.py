"""The demo instance: the fictional city of ``data/demo/`` and one demo account per role.

``webmap demo`` (see ``load_demo``) loads the demo files through the ordinary import path and creates the
demo organisations and accounts, all with ONE published password (``DEMO_PASSWORD``) that need not be
changed at sign-in. That is only acceptable on a store holding nothing but demo data, so:

- an empty store (no layer version at all) is flagged ``demo = 1`` (``Store.set_flag``) and then loaded;
- a store flagged ``demo`` is loaded again (a new version of every layer; the accounts are kept and their
  passwords reset to the demo password, re-enabled, with no change required);
- anything else is refused (``NotADemoStore``, exit 2) before anything is changed: a store holding layers
  without the flag holds real data, and an instance that already has accounts (``webmap setup`` was run)
  must not get accounts with a published password.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from webmap.errors import BadInput, NotFound

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
# (layer, file) in the order the demo loads them; owners are in the files themselves
DEMO_FILES = [
    ("districts", "districts.geojson"),
    ("key_sites", "key_sites.geojson"),
    ("cable_routes", "cable_routes.zip"),
    ("stations", "stations.geojson"),
    ("incidents", "incidents.zip"),
]
# the fictional enterprises (code, name, kind telecom|postal), written by scripts/make_demo_data.py
ORGANISATIONS_FILE = "organisations.csv"

# DEMO ONLY: published in the README, the same for every demo account, never to be used on real data.
# It passes the password rules (16 characters, four character classes, no username, not a common one).
DEMO_PASSWORD = "demo-CanTho-2026"
DEMO_FLAG = "demo"

POLICE_ORG = ("CA-CT", "Công an thành phố Cần Thơ (demo)", "police", None)
DISTRICT_ORG = ("916", "UBND quận Ninh Kiều (demo)", "district", "916")
# (username, role, organisation code): one account per role
DEMO_USERS = [
    ("admin.demo", "admin", None),
    ("police.demo", "police", "CA-CT"),
    ("ninhkieu.demo", "district", "916"),
    ("vtsh.demo", "enterprise", "VTSH"),
    ("mkn.demo", "enterprise", "MKN"),
]

REAL_DATA_MESSAGE = ("this store holds real data (not a demo store): webmap demo would mix fictional data and demo "
                     "accounts into it; use a fresh instance (WEBMAP_INSTANCE=...)")
REAL_ACCOUNTS_MESSAGE = ("this instance already has accounts (not a demo instance): webmap demo would add demo accounts "
                         "with a published password to it; use a fresh instance (WEBMAP_INSTANCE=...)")


class NotADemoStore(BadInput):
    """``webmap demo`` on a store or instance that holds real data: refused, nothing changed (exit 2)."""


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    org_code: str | None
    org_name: str | None


# -- checks, before anything is changed ---------------------------------------------------------------------
def demo_paths(data_dir=DEMO_DIR) -> dict:
    """{file name: path} of every demo file; BadInput naming the first one missing."""
    names = [name for _, name in DEMO_FILES] + [ORGANISATIONS_FILE]
    paths = {name: os.path.join(data_dir, name) for name in names}
    for path in paths.values():
        if not os.path.exists(path):
            raise BadInput(f"demo file missing: {path} (run scripts/make_demo_data.py)")
    return paths


def demo_orgs(data_dir=DEMO_DIR) -> list[tuple]:
    """The demo organisations as (code, name, kind, district_code): the enterprises of organisations.csv
    (telecom and postal alike are of kind ``enterprise``), the police and Ninh Kiều district."""
    with open(os.path.join(data_dir, ORGANISATIONS_FILE), encoding="utf-8", newline="") as fh:
        enterprises = [(row["code"], row["name"], "enterprise", None) for row in csv.DictReader(fh)]
    return [*enterprises, POLICE_ORG, DISTRICT_ORG]


def _has_accounts(accounts_path: str) -> bool:
    """Whether the accounts file holds any user or organisation; read only, and a missing file is not created."""
    if not os.path.exists(accounts_path):
        return False
    con = sqlite3.connect(f"file:{accounts_path}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return any(con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                   for table in ("users", "organisations") if table in tables)
    finally:
        con.close()


def check_demo_store(store, accounts_path: str) -> bool:
    """Whether the demo may load here: True on a store flagged demo, False on an empty store (to be flagged);
    NotADemoStore on a store with layers but no flag, or on an unflagged instance that already has accounts."""
    if store.get_flag(DEMO_FLAG) == "1":
        return True
    if store.list_versions(active_only=False):
        raise NotADemoStore(REAL_DATA_MESSAGE)
    if _has_accounts(accounts_path):
        raise NotADemoStore(REAL_ACCOUNTS_MESSAGE)
    return False


# -- accounts -----------------------------------------------------------------------------------------------
def _demo_only_reset_password(accounts, username: str, password_hash: str | None = None):
    """DEMO ONLY: one UPDATE on the accounts file that lets a demo account sign in with the published demo
    password at once (must_change_password = 0, enabled), and sets that password's hash on a re-run.

    The AccountStore API has no way to set a known password without requiring a change at first login (on
    purpose: real passwords are shown once and changed); the demo accounts are the one exception, and only
    on a store flagged demo (``check_demo_store``)."""
    sql = "UPDATE users SET must_change_password = 0, disabled = 0"
    params = []
    if password_hash is not None:
        from datetime import datetime, timezone

        sql += ", password_hash = ?, password_changed_at = ?"
        params += [password_hash, datetime.now(timezone.utc).isoformat(timespec="microseconds")]
    con = sqlite3.connect(accounts.path, timeout=30, isolation_level=None)
    try:
        con.execute(sql + " WHERE username = ?", (*params, username))
    finally:
        con.close()


def ensure_demo_accounts(accounts, orgs) -> list[DemoAccount]:
    """Create the demo organisations and accounts, or keep them and reset the passwords (idempotent)."""
    from webmap.accounts import check_password_rules, hash_password

    names = {}
    for code, name, kind, district_code in orgs:
        try:
            org = accounts.get_org(code)
        except NotFound:
            org = accounts.add_org(code, name, kind, district_code)
        names[org.code] = org.name
    created = []
    for username, role, org_code in DEMO_USERS:
        try:
            accounts.get_user(username)
        except NotFound:
            accounts.add_user(username, role, org_code, password=DEMO_PASSWORD)
            _demo_only_reset_password(accounts, username)
        else:
            check_password_rules(DEMO_PASSWORD, username)
            _demo_only_reset_password(accounts, username, hash_password(DEMO_PASSWORD))
        user = accounts.get_user(username)
        created.append(DemoAccount(user.username, user.role, user.org_code, names.get(user.org_code)))
    return created


# -- the whole demo -----------------------------------------------------------------------------------------
def load_demo(store, accounts, data_dir=DEMO_DIR, echo=print, audit_log=None) -> list[DemoAccount]:
    """``webmap demo``: check, flag the store demo, import every demo file, create the demo accounts.

    Each import is written to ``audit_log`` (when given) like any other import.
    """
    from webmap.audit import cli_actor
    from webmap.importer import import_layer

    paths = demo_paths(data_dir)
    orgs = demo_orgs(data_dir)
    if not check_demo_store(store, accounts.path):
        store.set_flag(DEMO_FLAG, "1")
    for kind, name in DEMO_FILES:
        report = import_layer(store, paths[name], kind)
        if audit_log is not None:
            audit_log.record(cli_actor(), "import", kind, {"source": name, "sha256": report.sha256, "demo": True,
                                                          "features": report.features_kept,
                                                          "version": report.version}, "cli")
        echo(f"{kind}: {report.features_kept} features from {name} (version {report.version})")
    return ensure_demo_accounts(accounts, orgs)


def account_table(demo_accounts) -> list[str]:
    """The lines that show the demo accounts and their password, marked demo only."""
    lines = ["demo accounts (demo only: one published password, no change asked at sign-in; never on real data):",
             f"  {'username':<15} {'role':<11} organisation"]
    for account in demo_accounts:
        org = f"{account.org_code} {account.org_name}" if account.org_code else "-"
        lines.append(f"  {account.username:<15} {account.role:<11} {org}")
    lines.append(f"  password of every demo account (demo only): {DEMO_PASSWORD}")
    return lines
