"""The audit log page (/admin/audit) on a real app and a real audit SQLite file: admins only (404 for
everyone else, like a page that does not exist), filters and paging, escaping, bad parameters, the chain
check (intact, then altered at file level), the page's own reads recorded; and the entries that
``webmap import`` and ``webmap export`` write."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import sqlite3

import pytest

import fixtures
from webmap import audit
from webmap.audit import GENESIS_HASH, entry_hash
from webmap.views import admin as admin_views

OTHERS = [("public", None), ("police", "CA-CT"), ("district", "916"), ("enterprise", "VTSH")]
SECRET_ACTOR = "lan.nguyen"
SECRET_TARGET = "key_sites/KS-0042"


def append_at(log, at, actor, action, target="", detail=None, source="10.0.0.9"):
    """Append one correctly chained entry with a chosen time (the app always writes 'now'): what the log
    holds after days of use. The chain trigger accepts it, so the log stays intact."""
    detail_text = json.dumps(detail or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    con = sqlite3.connect(log.path, isolation_level=None)
    try:
        last = con.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = entry_hash(seq, at, actor, action, target, detail_text, source, prev)
        con.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, at, actor, action, target, detail_text, source, prev, digest))
    finally:
        con.close()
    return seq


def rows(body: str) -> list[dict]:
    """The table of the page as dicts (text unescaped), top to bottom."""
    found = []
    for seq, cells in re.findall(r'<tr data-seq="(\d+)">(.*?)</tr>', body, flags=re.S):
        values = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                  for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, flags=re.S)]
        found.append(dict(zip(("seq", "when", "actor", "action", "target", "detail", "source"), values)))
        assert int(found[-1]["seq"]) == int(seq)
    return found


def seqs(body: str) -> list[int]:
    return [int(r["seq"]) for r in rows(body)]


@pytest.fixture
def log(app):
    return audit.for_app(app)


@pytest.fixture
def seeded(log):
    """Entries over three days of November 2026 (seq 1-7), then 120 logins today (seq 8-127)."""
    append_at(log, "2026-11-01T07:00:00.000000+00:00", SECRET_ACTOR, "login", SECRET_ACTOR, {"role": "police"})
    append_at(log, "2026-11-01T07:05:00.000000+00:00", SECRET_ACTOR, "read_key_sites", SECRET_TARGET, {"n": 1})
    append_at(log, "2026-11-15T09:00:00.000000+00:00", "cli:root", "import", "stations",
              {"source": "tram.geojson", "features": 3}, "cli")
    append_at(log, "2026-11-15T23:59:59.999999+00:00", "anonymous", "login_failed", "ghost")
    append_at(log, "2026-11-16T00:00:00.000000+00:00", SECRET_ACTOR, "export", "stations", {"format": "csv"})
    append_at(log, "2026-11-20T10:00:00.000000+00:00", "minh.tran", "print", "cable_routes", {"scale": 5000})
    append_at(log, "2026-11-20T10:01:00.000000+00:00", "minh.tran", "logout", "minh.tran")
    for i in range(120):
        log.record(f"user{i % 3}", "login", f"user{i % 3}", {"i": i}, "10.0.0.1")
    return log


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def get(client, **params):
    return client.get("/admin/audit", query_string=params)


def test_admin_sees_the_newest_entries_first_with_vietnamese_labels(admin, seeded):
    response = get(admin)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.data.decode()
    for label in ("Nhật ký truy cập", "Thời điểm", "Người thực hiện", "Hành động", "Đối tượng", "Chi tiết",
                  "Nguồn", "Kiểm tra toàn vẹn"):
        assert label in body, label
    found = rows(body)
    assert len(found) == 50
    assert [int(r["seq"]) for r in found] == list(range(128, 78, -1))  # 128: this very read, then 127, 126...
    assert found[0]["action"] == "read_audit"
    newest_login = found[1]
    assert newest_login["actor"] == "user2" and newest_login["action"] == "login"  # i = 119
    assert newest_login["detail"] == '{"i": 119}' and newest_login["source"] == "10.0.0.1"
    english = get(admin, lang="en").data.decode()
    for label in ("Audit log", "When (UTC)", "Who", "Action", "Target", "Detail", "Source", "Verify chain"):
        assert label in english, label
    assert "Nhật ký truy cập" not in english


def test_filters_by_actor_action_dates_and_target(admin, seeded):
    found = rows(get(admin, actor=SECRET_ACTOR, lang="en").data.decode())
    assert [r["seq"] for r in found] == ["5", "2", "1"]
    assert {r["actor"] for r in found} == {SECRET_ACTOR}

    found = rows(get(admin, action="export").data.decode())
    assert [(r["seq"], r["target"], r["detail"]) for r in found] == [("5", "stations", '{"format": "csv"}')]

    # the select offers the actions present in the log (and only those)
    body = get(admin).data.decode()
    select = re.search(r'<select name="action">(.*?)</select>', body, flags=re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', select) == [
        "", "export", "import", "login", "login_failed", "logout", "print", "read_audit", "read_key_sites"]
    body = get(admin, action="print").data.decode()
    assert '<option value="print" selected>' in body

    # days are UTC and both ends are included
    assert seqs(get(admin, since="2026-11-15", until="2026-11-15").data.decode()) == [4, 3]
    assert seqs(get(admin, since="2026-11-16", until="2026-11-20").data.decode()) == [7, 6, 5]
    assert seqs(get(admin, until="2026-11-01").data.decode()) == [2, 1]
    assert seqs(get(admin, since="2026-11-02", until="2026-11-30", actor=SECRET_ACTOR).data.decode()) == [5]
    assert seqs(get(admin, since="2099-01-01").data.decode()) == []
    assert "Không có mục nào." in get(admin, since="2099-01-01").data.decode()

    # text in the target, case-sensitive like the ids it looks for
    assert seqs(get(admin, target="KS-00").data.decode()) == [2]
    assert seqs(get(admin, target="stations").data.decode()) == [5, 3]
    assert seqs(get(admin, target="STATIONS").data.decode()) == []
    assert seqs(get(admin, target="stations", action="import").data.decode()) == [3]

    # the filters stay in the form
    body = get(admin, actor=SECRET_ACTOR, target="KS", since="2026-11-01", until="2026-11-30").data.decode()
    for value in (f'name="actor" value="{SECRET_ACTOR}"', 'name="target" value="KS"',
                  'name="since" type="date" value="2026-11-01"', 'name="until" type="date" value="2026-11-30"'):
        assert value in body, value


def test_paging_50_a_page_with_links_that_keep_the_filters(admin, seeded):
    first = get(admin, action="login", lang="en").data.decode()
    assert seqs(first) == list(range(127, 77, -1))
    assert 'id="wm-audit-newer"' not in first
    older = html.unescape(re.search(r'id="wm-audit-older" href="([^"]+)"', first).group(1))
    assert "action=login" in older and "lang=en" in older and "page=2" in older

    second = admin.get(older).data.decode()
    assert seqs(second) == list(range(77, 27, -1))
    newer = html.unescape(re.search(r'id="wm-audit-newer" href="([^"]+)"', second).group(1))
    assert seqs(admin.get(newer).data.decode()) == list(range(127, 77, -1))

    third = get(admin, action="login", page=3).data.decode()
    assert seqs(third) == list(range(27, 7, -1)) + [1]  # the last 20 logins of today, then the first login
    assert 'id="wm-audit-older"' not in third and 'id="wm-audit-newer"' in third
    assert seqs(get(admin, action="login", page=4).data.decode()) == []
    # all 121 logins, each once
    pages = [seqs(get(admin, action="login", page=n).data.decode()) for n in (1, 2, 3)]
    assert sorted(sum(pages, [])) == [1, *range(8, 128)]


def test_values_are_escaped(admin, log):
    log.record('"><img src=x onerror=alert(2)>', "login", "<script>alert(1)</script>",
               {"note": "</td><script>alert(3)</script>"}, "10.0.0.66")
    body = get(admin).data.decode()
    assert "<script" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in body
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in body  # in the table and in the actors' list
    entry = [r for r in rows(body) if r["source"] == "10.0.0.66"][0]
    assert entry["target"] == "<script>alert(1)</script>"
    assert entry["actor"] == '"><img src=x onerror=alert(2)>'
    # a filter value goes back into the form escaped as well
    body = get(admin, target='"><script>alert(4)</script>').data.decode()
    assert "<script" not in body and 'value="&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"' in body


@pytest.mark.parametrize("role, org", OTHERS)
def test_everyone_else_gets_the_404_of_a_page_that_does_not_exist(client_as, seeded, role, org):
    client = client_as(role, org)
    before = seeded.count()
    for params in ({}, {"actor": SECRET_ACTOR}, {"lang": "en"}, {"since": "not-a-date"}, {"verify": "1"}):
        response = get(client, **params)
        assert response.status_code == 404, params
        unknown = client.get("/admin/no-such-page")
        assert unknown.status_code == 404 and response.data == unknown.data
        assert response.data == client.get("/no-such-page").data
        body = response.data.decode()
        for word in (SECRET_ACTOR, SECRET_TARGET, "minh.tran", "user1", "read_audit", "Nhật ký", "audit",
                     GENESIS_HASH):
            assert word not in body, word
    assert seeded.count() == before  # nothing read, nothing recorded
    assert "/admin/audit" not in client.get("/").data.decode()  # no link in the map's header either


def test_the_map_header_links_to_the_page_for_admins_only(admin, client_as):
    assert 'href="/admin/audit"' in admin.get("/").data.decode()
    assert 'href="/admin/audit"' not in client_as("police", "CA-CT").get("/").data.decode()


@pytest.mark.parametrize("params, fragment", [
    ({"since": "2026-13-01"}, "YYYY-MM-DD"),
    ({"until": "29/11/2026"}, "YYYY-MM-DD"),
    ({"since": "2026-11-1"}, "YYYY-MM-DD"),
    ({"since": "2026-11-01T00:00"}, "YYYY-MM-DD"),
    ({"since": "2026-11-30", "until": "2026-11-01"}, "Từ ngày"),
    ({"page": "0"}, "Số trang"),
    ({"page": "two"}, "Số trang"),
    ({"action": "DROP TABLE entries"}, "Hành động"),
    ({"actor": "x" * 201}, "quá dài"),
])
def test_bad_parameters_are_a_400_page_with_one_line(admin, seeded, params, fragment):
    before = seeded.count()
    response = get(admin, **params)
    assert response.status_code == 400
    body = response.data.decode()
    messages = re.findall(r"<p>(.*?)</p>", body, flags=re.S)
    assert len(messages[0].splitlines()) == 1 and fragment in html.unescape(messages[0])
    assert SECRET_ACTOR not in body and 'data-seq' not in body
    assert seeded.count() == before
    english = get(admin, lang="en", **params)
    assert english.status_code == 400 and re.findall(r"<p>(.*?)</p>", english.data.decode())[0] != messages[0]


def test_the_chain_check_reports_intact_with_an_anchor_then_altered(admin, seeded):
    body = get(admin, lang="en").data.decode()
    anchor = seeded.export_anchor()  # this read (entry 128) included
    assert anchor[0] == 128
    assert f"Audit log intact: 128 entries, last hash {anchor[1]}." in body
    assert f'id="wm-audit-anchor">{anchor[0]}:{anchor[1]}</p>' in body
    assert 'id="wm-audit-altered"' not in body
    assert "Nhật ký nguyên vẹn: 129 mục" in get(admin).data.decode()

    # someone with write access to the file drops the triggers and edits entry 6
    con = sqlite3.connect(seeded.path, isolation_level=None)
    try:
        for name in ("entries_no_update", "entries_no_delete", "entries_chain"):
            con.execute(f"DROP TRIGGER {name}")
        con.execute("UPDATE entries SET detail = '{\"scale\":1}' WHERE seq = 6")
    finally:
        con.close()
    body = get(admin, lang="en").data.decode()
    assert 'class="wm-audit-altered" id="wm-audit-altered"' in body
    assert "Audit log altered at entry 6: its content does not match its hash" in body
    assert "intact" not in body and 'id="wm-audit-anchor"' not in body
    assert "Nhật ký đã bị sửa đổi tại mục 6" in get(admin).data.decode()


def test_a_big_log_is_checked_when_asked(admin, seeded, monkeypatch):
    monkeypatch.setattr(admin_views, "AUTO_VERIFY_MAX_ENTRIES", 100)
    body = get(admin, lang="en", action="login").data.decode()
    assert "The log holds 128 entries" in body and "intact" not in body
    link = html.unescape(re.search(r'href="([^"]*verify=1[^"]*)"', body).group(1))
    assert "action=login" in link and "lang=en" in link
    body = admin.get(link).data.decode()
    assert "Audit log intact: 129 entries" in body
    assert seeded.entries(action="read_audit", limit=1)[0].detail == {"action": "login", "verify": True}


def test_each_view_is_recorded_with_its_filters(admin, seeded):
    get(admin, actor=SECRET_ACTOR, since="2026-11-01", target="KS", page="2")
    entry = seeded.entries(limit=1)[0]
    assert entry.action == "read_audit" and entry.target == "audit"
    assert entry.actor.startswith("admin.") and entry.source == "127.0.0.1"
    assert entry.detail == {"actor": SECRET_ACTOR, "since": "2026-11-01", "target": "KS", "page": 2}
    assert seeded.verify().ok


def test_cli_import_and_export_are_recorded(run_cli, app, admin, tmp_path):
    source = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "tram.geojson"))
    with open(source, "rb") as fh:
        source_sha = hashlib.sha256(fh.read()).hexdigest()
    code, _, err = run_cli("import", source, "--layer", "stations", "--dry-run")
    assert code == 0, err
    code, _, err = run_cli("import", source, "--layer", "stations")
    assert code == 0, err
    output = tmp_path / "out.csv"
    code, _, err = run_cli("export", "stations", "--format", "csv", "-o", output)
    assert code == 0, err
    code, out, err = run_cli("audit", "--json")
    assert code == 0, err
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in entries] == ["export", "import"]  # the dry run stored nothing: not an import
    export, imported = entries
    assert imported["actor"] == audit.cli_actor() and imported["source"] == "cli"
    assert imported["target"] == "stations"
    assert imported["detail"] == {"source": "tram.geojson", "sha256": source_sha, "format": "geojson",
                                  "features": 3, "version": 1}
    assert export["actor"] == audit.cli_actor() and export["source"] == "cli" and export["target"] == "stations"
    with open(output, "rb") as fh:
        output_sha = hashlib.sha256(fh.read()).hexdigest()
    assert export["detail"] == {"format": "csv", "output": os.path.abspath(output), "sha256": output_sha,
                                "features": 3, "version": 1}
    # the failed export of an unknown layer records nothing
    code, _, _ = run_cli("export", "nowhere", "--format", "csv", "-o", tmp_path / "x.csv")
    assert code == 2
    log = audit.for_app(app)
    assert log.count() == 2 and log.verify().ok
    # and the admin page shows them
    found = rows(get(admin, actor=audit.cli_actor()).data.decode())
    assert [(r["action"], r["source"]) for r in found] == [("export", "cli"), ("import", "cli")]
