"""Accounts: organisations, users, scrypt passwords and their rules, on a real ``instance/accounts.sqlite``,
and the ``webmap setup``, ``orgs`` and ``users`` commands run as real processes."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.security import generate_password_hash

from webmap import accounts as acc
from webmap.accounts import AccountStore, check_password_rules, generate_password
from webmap.errors import BadInput, NotFound

STRONG = "Ruộng-lúa-Phong-Điền-7"


@pytest.fixture
def accounts(instance):
    store = AccountStore(os.path.join(instance, "accounts.sqlite"))
    yield store
    store.close()


@pytest.fixture
def orgs(accounts):
    accounts.add_org("CATP", "Công an thành phố Cần Thơ", "police")
    accounts.add_org("916", "UBND quận Ninh Kiều", "district")
    accounts.add_org("VTSH", "Viễn thông Sông Hậu (demo)", "enterprise")
    return accounts


def refused(fragment, func, *args, **kwargs):
    with pytest.raises(BadInput) as info:
        func(*args, **kwargs)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message
    return message


# -- the file -------------------------------------------------------------------------------------------------
def test_schema_is_created_on_first_use_with_wal_and_foreign_keys(accounts, instance):
    path = instance / "accounts.sqlite"
    assert not path.exists()
    assert accounts.list_users() == []
    assert path.exists() and (path.stat().st_mode & 0o077) == 0  # hashes: owner only
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"organisations", "users"} <= tables
        columns = [r[1] for r in con.execute("PRAGMA table_info(users)")]
        assert columns == ["username", "role", "org_code", "password_hash", "must_change_password", "disabled",
                           "created_at", "password_changed_at"]
    finally:
        con.close()
    assert accounts._con().execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses a user of no organisation
        accounts._con().execute("INSERT INTO users VALUES ('x', 'police', 'NOPE', 'h', 1, 0, 't', 't')")


# -- passwords ------------------------------------------------------------------------------------------------
def test_passwords_are_hashed_with_scrypt_and_verify(orgs, instance):
    user, password = orgs.add_user("lan.nguyen", "police", "CATP")
    con = sqlite3.connect(instance / "accounts.sqlite")
    try:
        (stored,) = con.execute("SELECT password_hash FROM users WHERE username = 'lan.nguyen'").fetchone()
    finally:
        con.close()
    assert stored.startswith("scrypt:") and password not in stored
    assert acc.verify_password(stored, password) and not acc.verify_password(stored, password + "x")
    assert orgs.authenticate("lan.nguyen", password) == user
    assert orgs.authenticate("LAN.Nguyen", password) == user  # usernames are folded to lower case
    # the dummy hash checked for unknown users costs what a real one does
    assert acc._DUMMY_HASH.split("$")[0] == generate_password_hash("x", method=acc.HASH_METHOD).split("$")[0]


def test_wrong_password_unknown_user_and_disabled_user_get_none(orgs):
    _, password = orgs.add_user("tuan", "enterprise", "VTSH")
    assert orgs.authenticate("tuan", "Wrong-password-42") is None
    assert orgs.authenticate("tuan", "") is None and orgs.authenticate("tuan", None) is None
    assert orgs.authenticate("nobody", password) is None
    assert orgs.authenticate("../../etc", password) is None
    orgs.disable_user("tuan")
    assert orgs.authenticate("tuan", password) is None
    assert orgs.enable_user("tuan").disabled is False
    assert orgs.authenticate("tuan", password).username == "tuan"


def test_an_unknown_user_takes_as_long_as_a_known_one(orgs):
    """A password hash is checked either way, so timing does not tell which usernames exist."""
    orgs.add_user("hoa", "police", "CATP")

    def fastest(username):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert orgs.authenticate(username, "Wrong-password-42") is None
            times.append(time.perf_counter() - start)
        return min(times)

    known, unknown = fastest("hoa"), fastest("nobody")
    assert unknown > 0.5 * known, (known, unknown)


@pytest.mark.parametrize("password, fragment", [
    ("Ab1!short", "too short (9 characters, at least 12)"),
    ("xx-Tuan.Le-2024", "contains the username"),
    ("Password2024!", "most common passwords"),
    ("P@ssw0rd-12345", "most common passwords"),
    ("qwertyuiop123", "most common passwords"),
    ("Viettel@123456", "most common passwords"),
    ("abcdefghijkmn", "at least 3 of lower case, upper case, digits and other characters (it has 1)"),
    ("abcdefgh12345", "(it has 2), or at least 20 characters"),
])
def test_weak_passwords_are_refused_with_a_clear_reason(password, fragment):
    message = refused(fragment, check_password_rules, password, "tuan.le")
    assert message.startswith("password refused: ") and password not in message


@pytest.mark.parametrize("password", [
    "Rng-mua-nuoc-noi-7",  # 18 characters, 4 classes
    "ca phe sua da buoi sang",  # 2 classes but 23 characters: a passphrase
    STRONG,
])
def test_good_passwords_pass(password):
    check_password_rules(password, "tuan.le")


def test_generated_passwords_pass_the_rules_and_differ():
    seen = set()
    for username in ["admin", "tuan.le", "abc", "xyz-123"]:
        for _ in range(50):
            password = generate_password(username)
            assert len(password) >= 16
            check_password_rules(password, username)
            seen.add(password)
    assert len(seen) == 200


def test_must_change_password_flow(orgs):
    user, initial = orgs.add_user("mai", "district", "916")
    assert user.must_change_password and user.district_code == "916" and user.org_kind == "district"
    assert orgs.authenticate("mai", initial).must_change_password
    refused("current password is wrong", orgs.change_password, "mai", "Wrong-password-42", STRONG)
    refused("same as the current one", orgs.change_password, "mai", initial, initial)
    refused("too short", orgs.change_password, "mai", initial, "Short-1")
    refused("contains the username", orgs.change_password, "mai", initial, "Mai-mai-2024-xyz")
    changed = orgs.change_password("mai", initial, STRONG)
    assert changed.must_change_password is False and changed.password_changed_at >= user.password_changed_at
    assert orgs.authenticate("mai", initial) is None
    assert orgs.authenticate("mai", STRONG).must_change_password is False
    # a reset gives a new one-time password that must be changed again
    reset = orgs.reset_password("mai")
    assert orgs.authenticate("mai", STRONG) is None
    assert orgs.authenticate("mai", reset).must_change_password is True
    orgs.disable_user("mai")
    refused("current password is wrong", orgs.change_password, "mai", reset, STRONG)


# -- users and organisations ------------------------------------------------------------------------------------
@pytest.mark.parametrize("role, org, fragment", [
    ("police", "VTSH", "role police does not fit organisation VTSH (enterprise)"),
    ("district", "CATP", "role district does not fit organisation CATP (police)"),
    ("enterprise", "916", "role enterprise does not fit organisation 916 (district)"),
    ("admin", "VTSH", "role admin does not fit organisation VTSH (enterprise)"),
    ("police", None, "role police needs an organisation of kind police"),
    ("enterprise", None, "needs an organisation of kind enterprise"),
    ("public", None, "role 'public' is not one of admin, police, district, enterprise"),
])
def test_roles_must_fit_their_organisation(orgs, role, org, fragment):
    refused(fragment, orgs.add_user, "khoa", role, org)
    assert orgs.list_users() == []


def test_admin_has_no_organisation_or_the_police(orgs):
    assert orgs.add_user("root.ops", "admin")[0].org_code is None
    assert orgs.add_user("ca.admin", "admin", "catp")[0].org_code == "CATP"


def test_users_are_unique_and_well_named(orgs):
    orgs.add_user("binh", "enterprise", "VTSH")
    refused("user binh already exists", orgs.add_user, "Binh", "police", "CATP")
    for bad in ["ab", "x" * 41, "tuấn", "a b", "../x", ""]:
        refused("is not valid", orgs.add_user, bad, "police", "CATP")
    with pytest.raises(NotFound):
        orgs.add_user("khoa", "enterprise", "NOPE")
    with pytest.raises(NotFound):
        orgs.get_user("nobody")
    assert [u.username for u in orgs.list_users()] == ["binh"]
    assert [u.username for u in orgs.list_users("vtsh")] == ["binh"] and orgs.list_users("CATP") == []


def test_organisations(accounts):
    assert accounts.add_org("vtsh", "  Viễn thông   Sông Hậu ", "enterprise") == acc.Organisation(
        "VTSH", "Viễn thông Sông Hậu", "enterprise", None)
    assert accounts.add_org("NK", "UBND quận Ninh Kiều", "district", "916").district_code == "916"
    assert accounts.add_org("917", "UBND quận Ô Môn", "district").district_code == "917"  # the code is the GSO code
    refused("organisation VTSH already exists", accounts.add_org, "VTSH", "x", "enterprise")
    refused("needs the 3-digit GSO code", accounts.add_org, "CR", "UBND quận Cái Răng", "district")
    refused("needs the 3-digit GSO code", accounts.add_org, "CR", "UBND quận Cái Răng", "district", "91")
    refused("only a district organisation has a district code", accounts.add_org, "CATP", "Công an", "police", "916")
    refused("kind 'telecom' is not one of", accounts.add_org, "MKN", "Mạng Kết Nối", "telecom")
    refused("needs a name", accounts.add_org, "MKN", " ", "enterprise")
    refused("is not valid", accounts.add_org, "a b", "x", "enterprise")
    assert [o.code for o in accounts.list_orgs()] == ["917", "NK", "VTSH"]
    assert accounts.get_org("nk").name == "UBND quận Ninh Kiều"


def test_setup_admin_only_once(accounts):
    assert not accounts.has_admin()
    admin, password = accounts.setup_admin()
    assert admin.username == "admin" and admin.role == "admin" and admin.must_change_password
    assert accounts.authenticate("admin", password) == admin
    refused("an admin already exists (admin)", accounts.setup_admin, "other")


# -- the command line -----------------------------------------------------------------------------------------
ONE_TIME = re.compile(r"^one-time password: (\S+)$", re.M)


def one_line_error(result, fragment):
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("webmap: error: "), err
    assert fragment in err, err


def one_time_password(result):
    code, out, err = result
    assert code == 0, err
    assert "must be changed at first login" in out
    (password,) = ONE_TIME.findall(out)
    return password


def test_cli_setup_orgs_users(run_cli, instance):
    """Independent commands run as parallel processes (each one starts the whole app, ~2 s)."""
    def parallel(*commands):
        with ThreadPoolExecutor(len(commands)) as pool:
            return list(pool.map(lambda args: run_cli(*args), commands))

    accounts = AccountStore(os.path.join(instance, "accounts.sqlite"))
    try:
        accounts.add_org("NK", "UBND quận Ninh Kiều", "district", "916")
        setup, vtsh = parallel(
            ["setup"], ["orgs", "add", "vtsh", "--name", "Viễn thông Sông Hậu", "--kind", "enterprise"])
        admin_password = one_time_password(setup)
        assert setup[1].startswith("admin account admin created\n")
        assert vtsh[:2] == (0, "organisation VTSH added: Viễn thông Sông Hậu (enterprise)\n"), vtsh

        again, add_bob, mismatch = parallel(
            ["setup", "--username", "root.ops"],
            ["users", "add", "Bob", "--role", "enterprise", "--org", "VTSH"],
            ["users", "add", "carol", "--role", "police", "--org", "VTSH"],
        )
        one_line_error(again, "an admin already exists")
        bob_password = one_time_password(add_bob)
        assert add_bob[1].startswith("user bob added: enterprise, organisation VTSH\n")
        one_line_error(mismatch, "role police does not fit organisation VTSH (enterprise)")
        # the passwords printed authenticate, and must be changed
        assert accounts.authenticate("bob", bob_password).must_change_password
        assert accounts.authenticate("admin", admin_password).role == "admin"

        listing, orgs_listing, disable, reset = parallel(
            ["users", "list"], ["orgs", "list"], ["users", "disable", "bob"], ["users", "reset-password", "admin"])
        code, out, err = listing
        assert code == 0, err
        assert re.search(r"^admin +admin +- +\S", out, re.M) and re.search(r"^bob +enterprise +VTSH ", out, re.M)
        assert "scrypt" not in out and "$" not in out
        stored = [row[0] for row in accounts._con().execute("SELECT password_hash FROM users")]
        assert all(value.split("$")[-1] not in out for value in stored)
        code, out, err = orgs_listing
        assert code == 0, err
        assert re.search(r"^VTSH +enterprise +1  Viễn thông Sông Hậu$", out, re.M), out
        assert re.search(r"^NK +district +916 +0  UBND quận Ninh Kiều$", out, re.M), out
        assert disable[:2] == (0, "user bob disabled\n"), disable
        new_admin_password = one_time_password(reset)

        assert accounts.authenticate("bob", bob_password) is None  # disabled
        assert accounts.authenticate("admin", admin_password) is None
        assert accounts.authenticate("admin", new_admin_password).must_change_password
    finally:
        accounts.close()


def test_cli_refuses_bad_input_in_one_line(run_cli):
    one_line_error(run_cli("users", "disable", "nobody"), "user 'nobody' does not exist")
