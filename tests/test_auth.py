"""Log in and out through the real app and stores: CSRF, throttling, forced change, session lifetime, audit."""

import re

import pytest

from webmap import audit
from webmap.accounts import get_accounts

STRONG = "Sóng-Hậu-2026-an-toàn"


@pytest.fixture
def accounts(app):
    store = get_accounts(app)
    store.add_org("VTSH", "Viễn thông Sông Hậu (demo)", "enterprise")
    return store


@pytest.fixture
def user(accounts):
    _, password = accounts.add_user("vtsh.ops", "enterprise", "VTSH")
    return "vtsh.ops", password


def csrf(client, path="/login"):
    html = client.get(path).data.decode()
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username, password, **extra):
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf(client), **extra})


def change(client, old, new, confirm=None):
    token = csrf(client, "/account/password")
    return client.post("/account/password", data={"old_password": old, "new_password": new,
                                                  "confirm_password": confirm or new, "csrf_token": token})


def actions(app):
    return [e.action for e in audit.for_app(app).entries(limit=50)]


def test_login_needs_the_csrf_token(client, user):
    response = client.post("/login", data={"username": user[0], "password": user[1]})
    assert response.status_code == 400 and "CSRF" in response.data.decode()


def test_wrong_password_is_refused_and_audited(app, client, user):
    response = login(client, user[0], "not-the-password")
    assert response.status_code == 401 and "không đúng" in response.data.decode()
    assert "login_failed" in actions(app)


def test_initial_password_must_be_changed_before_anything_else(app, client, user):
    response = login(client, *user)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/password")
    assert client.get("/").status_code == 302
    api = client.get("/api/layers")
    assert api.status_code == 403 and api.get_json()["error"] == "change your password first"
    assert change(client, user[1], STRONG, confirm="something else").status_code == 400
    assert change(client, user[1], "short").status_code == 400
    assert change(client, user[1], STRONG).status_code == 302
    assert client.get("/").status_code == 200 and client.get("/api/layers").status_code == 200
    assert "login" in actions(app) and "password_changed" in actions(app)


def test_page_shows_who_is_logged_in_and_logout_ends_the_session(app, client, accounts, user):
    login(client, *user)
    change(client, user[1], STRONG)
    html = client.get("/").data.decode()
    assert 'id="wm-user"' in html and "vtsh.ops" in html
    assert client.get("/logout").status_code == 405  # state changes only by POST (with CSRF)
    response = client.post("/logout", data={"csrf_token": csrf(client, "/")})
    assert response.status_code == 302
    assert 'id="wm-login"' in client.get("/").data.decode()
    assert actions(app)[0] == "logout"


def test_login_starts_a_fresh_session(client, accounts, user):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, *user)
    with client.session_transaction() as session:
        assert "planted" not in session and session["user"] == "vtsh.ops"


def test_a_reset_or_disable_ends_existing_sessions(client, accounts, user):
    login(client, *user)
    change(client, user[1], STRONG)
    assert client.get("/api/layers").status_code == 200
    accounts.reset_password("vtsh.ops")
    html = client.get("/").data.decode()
    assert 'id="wm-login"' in html  # logged out: the password changed since the session began
    _, fresh = user[0], accounts.reset_password("vtsh.ops")
    login(client, user[0], fresh)
    change(client, fresh, STRONG + "!")
    accounts.disable_user("vtsh.ops")
    assert 'id="wm-login"' in client.get("/").data.decode()


def test_brute_force_is_throttled_even_with_the_right_password(app, client, user):
    for _ in range(5):
        assert login(client, user[0], "guess-guess-guess").status_code == 401
    response = login(client, *user)
    assert response.status_code == 429 and "phút" in response.data.decode()
    assert "login_throttled" in actions(app)


def test_next_never_leaves_the_site(client, accounts, user):
    login(client, *user)
    change(client, user[1], STRONG)
    client.post("/logout", data={"csrf_token": csrf(client, "/")})
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/?lang=en", "/?lang=en")):
        response = login(client, user[0], STRONG, next=target)
        assert response.headers["Location"] == expected
        client.post("/logout", data={"csrf_token": csrf(client, "/")})


def test_password_rules_speak_the_page_language(client, user):
    """The rules' reasons are shown in Vietnamese on Vietnamese pages, in English on English ones."""
    login(client, *user)
    response = change(client, user[1], "short")
    assert response.status_code == 400 and "Mật khẩu không được chấp nhận: quá ngắn (5 ký tự" in response.data.decode()
    client.set_cookie("lang", "en")
    response = change(client, user[1], "short")
    assert response.status_code == 400 and "password refused: too short (5 characters" in response.data.decode()
    response = change(client, "not-the-password", STRONG)
    assert "the username or the current password is wrong" in response.data.decode()
