"""`webmap demo` makes one demo account per role, runs again on its own demo store, and refuses a store (or an
instance) that holds real data without changing anything. Four real CLI runs; the rest through the APIs."""

import os

import pytest

from webmap.accounts import AccountStore, check_password_rules, get_accounts
from webmap.demo import (DEMO_DIR, DEMO_FILES, DEMO_PASSWORD, DEMO_USERS, REAL_ACCOUNTS_MESSAGE, REAL_DATA_MESSAGE,
                         NotADemoStore, check_demo_store, load_demo)
from webmap.errors import BadInput
from webmap.store.embedded import EmbeddedStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# username -> (role, org code, org kind, district code)
EXPECTED = {
    "admin.demo": ("admin", None, None, None),
    "police.demo": ("police", "CA-CT", "police", None),
    "ninhkieu.demo": ("district", "916", "district", "916"),
    "vtsh.demo": ("enterprise", "VTSH", "enterprise", None),
    "mkn.demo": ("enterprise", "MKN", "enterprise", None),
}
EXPECTED_ORGS = {"VTSH": "enterprise", "MKN": "enterprise", "TCT": "enterprise", "BDTM": "enterprise",
                 "CA-CT": "police", "916": "district"}


def accounts_of(instance):
    return AccountStore(str(instance / "accounts.sqlite"))


def assert_demo_accounts(accounts):
    assert {u.username for u in accounts.list_users()} == set(EXPECTED)
    for username, (role, org_code, org_kind, district_code) in EXPECTED.items():
        user = accounts.authenticate(username, DEMO_PASSWORD)
        assert user is not None, username
        assert (user.role, user.org_code, user.org_kind, user.district_code) == (role, org_code, org_kind, district_code)
        assert not user.must_change_password and not user.disabled
    assert {o.code: o.kind for o in accounts.list_orgs()} == EXPECTED_ORGS
    assert accounts.get_org("916").district_code == "916"
    assert accounts.get_org("CA-CT").name == "Công an thành phố Cần Thơ (demo)"
    assert accounts.get_org("916").name == "UBND quận Ninh Kiều (demo)"


def test_demo_creates_one_account_per_role_and_runs_again(run_cli, instance):
    code, out, err = run_cli("demo")
    assert code == 0, err
    assert "demo only" in out and DEMO_PASSWORD in out
    for username, (role, org_code, _, _) in EXPECTED.items():
        row = next(line.split() for line in out.splitlines() if line.split()[:1] == [username])
        assert row[1] == role and row[2] == (org_code or "-")
    accounts = accounts_of(instance)
    assert_demo_accounts(accounts)
    store = EmbeddedStore(str(instance / "store"))
    assert store.get_flag("demo") == "1"
    created = {u.username: u.created_at for u in accounts.list_users()}

    # someone changed a demo password and disabled another account: the next run puts them back
    accounts.change_password("vtsh.demo", DEMO_PASSWORD, "Another-Secret-42")
    accounts.disable_user("mkn.demo")
    accounts.close()
    code, out, err = run_cli("demo")
    assert code == 0, err
    assert "incidents: 3660 features from incidents.zip (version 2)" in out and DEMO_PASSWORD in out
    accounts = accounts_of(instance)
    assert_demo_accounts(accounts)
    assert accounts.authenticate("vtsh.demo", "Another-Secret-42") is None
    assert {u.username: u.created_at for u in accounts.list_users()} == created  # kept, not made again
    assert {(v.kind, v.version) for v in store.list_versions()} == {(kind, 2) for kind, _ in DEMO_FILES}
    from webmap.audit import AuditLog

    imports = AuditLog(str(instance / "audit.sqlite")).entries(action="import", limit=50)
    assert sorted(e.target for e in imports) == sorted([kind for kind, _ in DEMO_FILES] * 2)


def test_demo_refuses_a_store_holding_real_data(run_cli, instance):
    code, _, err = run_cli("import", os.path.join(ROOT, "data", "demo", "districts.geojson"), "--layer", "districts")
    assert code == 0, err
    store = EmbeddedStore(str(instance / "store"))
    before = [(v.kind, v.version, v.active) for v in store.list_versions(active_only=False)]
    assert before == [("districts", 1, True)]

    code, out, err = run_cli("demo")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"webmap: error: {REAL_DATA_MESSAGE}"]
    assert ("this store holds real data (not a demo store): webmap demo would mix fictional data and demo accounts "
            "into it; use a fresh instance (WEBMAP_INSTANCE=...)") in err
    assert [(v.kind, v.version, v.active) for v in store.list_versions(active_only=False)] == before
    assert store.get_flag("demo") is None
    assert not (instance / "accounts.sqlite").exists()  # no account, not even an empty accounts file


def test_demo_refuses_an_instance_that_already_has_accounts(app, store):
    accounts = get_accounts(app)
    accounts.setup_admin("admin")
    with pytest.raises(NotADemoStore) as caught:
        load_demo(store, accounts)
    assert str(caught.value) == REAL_ACCOUNTS_MESSAGE and caught.value.exit_code == 2
    assert [u.username for u in accounts.list_users()] == ["admin"] and accounts.list_orgs() == []
    assert store.list_versions(active_only=False) == [] and store.get_flag("demo") is None


def test_demo_store_check(app, store, tmp_path):
    accounts = get_accounts(app)
    assert check_demo_store(store, accounts.path) is False  # empty: the demo may load (and will flag it)
    store.set_flag("demo", "1")
    assert check_demo_store(store, accounts.path) is True
    # missing demo files are reported before anything is changed
    fresh = EmbeddedStore(str(tmp_path / "other-store"))
    with pytest.raises(BadInput, match="demo file missing"):
        load_demo(fresh, accounts, data_dir=str(tmp_path))
    assert fresh.get_flag("demo") is None and fresh.list_versions(active_only=False) == []


def test_store_flags(tmp_path):
    store = EmbeddedStore(str(tmp_path / "store"))
    assert store.get_flag("demo") is None  # reading creates nothing
    store.set_flag("demo", "1")
    store.set_flag("other", "x")
    store.set_flag("other", "y")
    again = EmbeddedStore(str(tmp_path / "store"))
    assert again.get_flag("demo") == "1" and again.get_flag("other") == "y" and again.get_flag("nope") is None


def test_demo_password_passes_the_rules_and_cli_names_stay_importable():
    for username, _, _ in DEMO_USERS:
        check_password_rules(DEMO_PASSWORD, username)
    from webmap.cli import DEMO_DIR as cli_demo_dir, DEMO_FILES as cli_demo_files

    assert cli_demo_dir == DEMO_DIR and cli_demo_files == DEMO_FILES


def test_readme_documents_the_demo_accounts():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    section = readme.split("### Demo accounts", 1)[1].split("\n## ", 1)[0]
    assert DEMO_PASSWORD in section and "demo only" in section.lower()
    for username, role, org_code in DEMO_USERS:
        assert f"| `{username}` | {role} |" in section
        assert org_code is None or f"`{org_code}`" in section
    assert "`webmap demo` refuses to run on a store holding real data" in section
