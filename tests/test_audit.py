"""The audit log on real SQLite files: the chain, the append-only triggers, tampering at file level (each kind
found at the right entry), appends from two processes at once, filters, and ``webmap audit`` as a process."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from webmap.audit import GENESIS_HASH, AuditLog, cli_actor, entry_hash, parse_anchor

ACTIONS = ("login", "read_key_sites", "export", "print", "login_failed")


def fill(log: AuditLog, count: int, start: int = 0):
    for i in range(start, start + count):
        log.record(f"user{i % 3}", ACTIONS[i % len(ACTIONS)], f"key_sites/KS-{i:04d}",
                   {"i": i, "tên": "Trạm Ninh Kiều", "bbox": [105.1, 10.0, 105.2, 10.1]}, f"10.0.0.{i % 7}")


def tamper(path, *statements):
    """What someone with write access to the file can do: drop the triggers, then change rows at will."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for name in ("entries_no_update", "entries_no_delete", "entries_chain"):
            con.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in statements:
            if isinstance(statement, tuple):
                con.execute(*statement)
            else:
                con.execute(statement)
    finally:
        con.close()


def row(path, seq):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT seq, at, actor, action, target, detail, source, prev_hash, hash FROM entries "
                           "WHERE seq = ?", (seq,)).fetchone()
    finally:
        con.close()


def documented_hash(seq, at, actor, action, target, detail, source, prev_hash):
    """The hash as the module docstring defines it, computed here without the module."""
    text = json.dumps([seq, at, actor, action, target, detail, source, prev_hash], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def log_path(tmp_path):
    return str(tmp_path / "audit.sqlite")


@pytest.fixture
def log(log_path):
    log = AuditLog(log_path)
    yield log
    log.close()


def test_chain_verifies_after_many_records_and_hashes_are_the_documented_ones(log, log_path):
    assert log.verify().ok and log.verify().checked == 0 and log.export_anchor() == (0, GENESIS_HASH)
    fill(log, 300)
    result = log.verify()
    assert result.ok and result.checked == 300 and result.first_bad_seq is None
    assert result.last == log.export_anchor() and result.last[0] == 300 and result.last[1] in result.reason
    prev = GENESIS_HASH
    con = sqlite3.connect(log_path)
    for values in con.execute("SELECT seq, at, actor, action, target, detail, source, prev_hash, hash "
                              "FROM entries ORDER BY seq"):
        assert values[7] == prev and values[8] == documented_hash(*values[:8]) == entry_hash(*values[:8])
        prev = values[8]
    con.close()
    seq, at, actor, action, target, detail, source, _, _ = row(log_path, 1)
    assert (actor, action, target, source) == ("user0", "login", "key_sites/KS-0000", "10.0.0.0")
    assert detail == '{"bbox":[105.1,10.0,105.2,10.1],"i":0,"tên":"Trạm Ninh Kiều"}'  # sorted keys, not escaped
    moment = datetime.fromisoformat(at)
    assert moment.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=5)
    assert len(at.split(".")[1].split("+")[0]) == 6  # microseconds
    # a new object on the same file continues the chain
    with AuditLog(log_path) as again:
        assert again.record("anonymous", "login_failed", "admin", source="192.0.2.1") == 301
        assert again.verify(anchor=f"300:{result.last[1]}").ok and again.verify().checked == 301


def test_record_checks_its_arguments(log):
    for bad in ({"actor": ""}, {"action": "Login"}, {"action": "drop table"}, {"detail": ["x"]},
                {"detail": {"x": float("nan")}}, {"detail": {"x": object()}}):
        args = {"actor": "an", "action": "login", **bad}
        with pytest.raises((ValueError, TypeError)):
            log.record(**args)
    assert log.verify().checked == 0
    assert log.record("an", "login") == 1 and log.entries()[0].detail == {} and log.entries()[0].target == ""
    assert cli_actor().startswith("cli:") and len(cli_actor()) > 4


def test_update_delete_and_out_of_chain_inserts_are_refused_by_the_database(log, log_path):
    fill(log, 5)
    con = sqlite3.connect(log_path)
    for sql in ("UPDATE entries SET detail = '{}' WHERE seq = 3", "DELETE FROM entries WHERE seq = 5",
                "DELETE FROM entries",
                "INSERT INTO entries VALUES (9, 'x', 'a', 'login', '', '{}', '', 'p', 'h')",
                f"INSERT INTO entries VALUES (6, 'x', 'a', 'login', '', '{{}}', '', '{GENESIS_HASH}', 'h')"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
        con.rollback()
    con.close()
    assert log.verify().ok and log.verify().checked == 5 and log.record("an", "logout") == 6


def _swap_rows(path, a, b):
    ra, rb = row(path, a), row(path, b)
    cols = "at = ?, actor = ?, action = ?, target = ?, detail = ?, source = ?, prev_hash = ?, hash = ?"
    return [(f"UPDATE entries SET {cols} WHERE seq = ?", (*rb[1:], a)),
            (f"UPDATE entries SET {cols} WHERE seq = ?", (*ra[1:], b))]


def _rehash_one(path, seq, detail):
    values = list(row(path, seq))
    values[5] = detail
    return [("UPDATE entries SET detail = ?, hash = ? WHERE seq = ?", (detail, entry_hash(*values[:8]), seq))]


@pytest.mark.parametrize("case, bad_seq, reason", [
    ("edit_detail", 12, "does not match its hash"),
    ("edit_actor", 1, "does not match its hash"),
    ("delete_middle", 12, "missing (entry 13 follows entry 11)"),
    ("delete_two", 12, "entries 12 to 13 are missing"),
    ("delete_first", 1, "missing"),
    ("swap_rows", 12, "does not match its hash"),
    ("rehash_one", 12, "rewritten and its hash recomputed (entry 13 is chained"),
    ("rehash_last", 20, None),  # found only with an anchor
    ("forge_prev_hash", 12, "does not match its hash"),
])
def test_tampering_at_file_level_is_found_at_the_right_entry(log, log_path, case, bad_seq, reason):
    fill(log, 20)
    anchor = log.export_anchor()
    assert log.verify(anchor=anchor).ok
    statements = {
        "edit_detail": ["UPDATE entries SET detail = '{\"i\":999}' WHERE seq = 12"],
        "edit_actor": ["UPDATE entries SET actor = 'someone_else' WHERE seq = 1"],
        "delete_middle": ["DELETE FROM entries WHERE seq = 12"],
        "delete_two": ["DELETE FROM entries WHERE seq IN (12, 13)"],
        "delete_first": ["DELETE FROM entries WHERE seq = 1"],
        "swap_rows": lambda: _swap_rows(log_path, 12, 13),
        "rehash_one": lambda: _rehash_one(log_path, 12, '{"i":999}'),
        "rehash_last": lambda: _rehash_one(log_path, 20, '{"i":999}'),
        "forge_prev_hash": [f"UPDATE entries SET prev_hash = '{'1' * 64}' WHERE seq = 12"],
    }[case]
    tamper(log_path, *(statements() if callable(statements) else statements))
    with AuditLog(log_path) as reopened:  # reopening restores the triggers; the chain still shows the damage
        result = reopened.verify()
        if reason is None:
            assert result.ok  # the last entry has nothing chained to it yet: only the anchor can tell
            result = reopened.verify(anchor=anchor)
            assert not result.ok and result.first_bad_seq == bad_seq and "differs from the anchor" in result.reason
            return
        assert not result.ok and result.first_bad_seq == bad_seq, result
        assert reason in result.reason, result.reason
        assert reopened.verify(anchor=anchor).first_bad_seq == bad_seq  # the first problem is still this one
        # appending goes on after tampering (losing audit entries would be worse), and the damage stays visible
        reopened.record("an", "login")
        assert reopened.verify().first_bad_seq == bad_seq


def test_an_anchor_catches_a_truncated_tail_and_a_rewritten_rehashed_tail(log, log_path):
    fill(log, 20)
    anchor = log.export_anchor()
    assert anchor == (20, row(log_path, 20)[8]) and parse_anchor(f"{anchor[0]}:{anchor[1]}") == anchor
    assert log.verify(anchor=anchor).ok and log.verify(anchor=f"20:{anchor[1].upper()}").ok
    assert log.verify(anchor=(20, "0" * 63 + "1")).first_bad_seq == 20

    # cut the last 4 entries: the chain alone still holds, the anchor does not
    tamper(log_path, "DELETE FROM entries WHERE seq > 16")
    assert log.verify().ok and log.verify().checked == 16
    result = log.verify(anchor=anchor)
    assert not result.ok and result.first_bad_seq == 17 and "cut short" in result.reason

    # ... then append 4 new entries (a fresh, valid chain to seq 20): the anchor's hash no longer matches
    fill(log, 4, start=100)
    assert log.verify().ok and log.export_anchor()[0] == 20
    result = log.verify(anchor=anchor)
    assert not result.ok and result.first_bad_seq == 20 and "differs from the anchor" in result.reason

    # an older anchor still holds for the untouched part
    earlier = (10, row(log_path, 10)[8])
    assert log.verify(anchor=earlier).ok

    with pytest.raises(ValueError):
        parse_anchor("20-abc")
    with pytest.raises(ValueError):
        parse_anchor((0, "1" * 64))


def _append_from_a_process(path, actor, count, start):
    start.wait(60)  # a barrier: both processes are up before either starts
    log = AuditLog(path)  # both processes create the schema of the new file at the same moment
    seqs = []
    for i in range(count):
        seqs.append(log.record(actor, "read_key_sites", f"KS-{i}", {"i": i}, "10.1.1.1"))
        time.sleep(0.002)  # callers do some work between entries (in a tight loop SQLite lets one process starve the other)
    log.close()
    return seqs


def _worker(path, actor, count, start, results):
    try:
        results.put((actor, _append_from_a_process(path, actor, count, start)))
    except Exception as exc:  # noqa: BLE001 - reported to the test rather than lost in the child
        results.put((actor, repr(exc)))


def test_two_processes_appending_at_once_keep_the_chain_and_seq_contiguous(log_path):
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(log_path, actor, 200, start, results)) for actor in ("p1", "p2")]
    for proc in procs:
        proc.start()
    got = dict(results.get(timeout=120) for _ in procs)
    assert all(isinstance(seqs, list) for seqs in got.values()), got
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert sorted(got["p1"] + got["p2"]) == list(range(1, 401))
    assert got["p1"] == sorted(got["p1"]) and got["p2"] == sorted(got["p2"])
    with AuditLog(log_path) as log:
        result = log.verify()
        assert result.ok and result.checked == 400, result
        actors = [e.actor for e in reversed(log.entries(limit=400))]
        assert [e.seq for e in log.entries(limit=400)] == list(range(400, 0, -1))
        times = [e.at for e in reversed(log.entries(limit=400))]
        assert times == sorted(times)  # taken inside the write transaction
    switches = sum(1 for a, b in zip(actors, actors[1:]) if a != b)
    assert switches >= 2, "the two processes did not append at the same time"


def test_threads_sharing_one_log_keep_the_chain(log):
    import threading

    def work(n):
        for i in range(50):
            log.record(f"t{n}", "print", f"map-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok and result.checked == 200


def test_filters(log):
    fill(log, 30)  # user0/1/2 in turn, actions cycling through ACTIONS
    newest = log.entries(limit=5)
    assert [e.seq for e in newest] == [30, 29, 28, 27, 26]
    assert [e.seq for e in log.entries(limit=5, offset=5)] == [25, 24, 23, 22, 21]
    assert newest[0].detail == {"i": 29, "tên": "Trạm Ninh Kiều", "bbox": [105.1, 10.0, 105.2, 10.1]}
    assert {e.actor for e in log.entries(actor="user1")} == {"user1"} and len(log.entries(actor="user1")) == 10
    assert [e.seq for e in log.entries(action="export")] == [28, 23, 18, 13, 8, 3]
    assert [e.seq for e in log.entries(actor="user0", action="login")] == [16, 1]
    assert [e.seq for e in log.entries(target_contains="KS-001")] == list(range(20, 10, -1))
    assert log.entries(target_contains="ks-001") == []  # case-sensitive, like the ids
    assert log.entries(actor="nobody") == []
    today = datetime.fromisoformat(newest[0].at).date()
    assert len(log.entries(since=today, until=today)) == 30
    assert len(log.entries(since=today.isoformat(), until=today.isoformat())) == 30
    assert log.entries(since=today + timedelta(days=1)) == [] and log.entries(until=today - timedelta(days=1)) == []
    tenth = log.entries(limit=1, offset=20)[0]
    assert tenth.seq == 10
    at = datetime.fromisoformat(tenth.at)
    assert [e.seq for e in log.entries(since=at, limit=100)][-1] == 10
    assert [e.seq for e in log.entries(until=at, limit=100)][0] == 10
    assert [e.seq for e in log.entries(since=tenth.at, until=tenth.at)] == [10]
    for bad in ({"limit": 0}, {"offset": -1}, {"since": "yesterday"}, {"until": 5}):
        with pytest.raises(ValueError):
            log.entries(**bad)


def assert_one_line(code, out, err, exit_code=2):
    assert code == exit_code, (code, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_cli_lists_filters_prints_json_and_verifies(run_cli, instance):
    code, out, err = run_cli("audit")
    assert code == 0 and "no audit entries yet" in out, err
    path = os.path.join(str(instance), "audit.sqlite")
    with AuditLog(path) as log:
        fill(log, 12)
        log.record("cli:an", "import", "stations", {"file": "trạm.geojson", "features": 3}, "cli")
        anchor = log.export_anchor()

    code, out, err = run_cli("audit", "--limit", "5")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["seq", "at", "(UTC)", "actor"] and len(lines) == 6
    assert lines[1].split()[0] == "13" and "cli:an" in lines[1] and "trạm.geojson" in lines[1]
    assert "import" in lines[1] and "stations" in lines[1]

    code, out, err = run_cli("audit", "--actor", "user1", "--action", "read_key_sites", "--json")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in rows] == [2]  # i = 1: user1, read_key_sites (i = 16 would be the next)
    assert rows[0]["detail"]["tên"] == "Trạm Ninh Kiều" and len(rows[0]["hash"]) == 64
    today = rows[0]["at"][:10]
    code, out, _ = run_cli("audit", "--since", today, "--until", today, "--json")
    assert code == 0 and len(out.splitlines()) == 13

    code, out, err = run_cli("audit", "--verify")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"audit log intact: 13 entries, last hash {anchor[1]}"
    assert f"{anchor[0]}:{anchor[1]}" in out
    code, out, err = run_cli("audit", "--verify", "--anchor", f"{anchor[0]}:{anchor[1]}")
    assert code == 0 and "intact" in out

    # bad usage: one line, exit 2
    assert "SEQ:HASH" in assert_one_line(*run_cli("audit", "--verify", "--anchor", "13"))
    assert "--verify" in assert_one_line(*run_cli("audit", "--anchor", f"13:{anchor[1]}"))
    assert "--since" in assert_one_line(*run_cli("audit", "--since", "29/11/2026"))

    # altered: exit 2, one line naming the entry, no traceback
    tamper(path, "UPDATE entries SET detail = '{}' WHERE seq = 7")
    line = assert_one_line(*run_cli("audit", "--verify"))
    assert "audit log altered at entry 7: its content does not match its hash" in line

    tamper(path, "DELETE FROM entries WHERE seq >= 7")  # cut the altered part off: only the anchor tells
    code, out, _ = run_cli("audit", "--verify")
    assert code == 0 and "intact: 6 entries" in out
    line = assert_one_line(*run_cli("audit", "--verify", "--anchor", f"{anchor[0]}:{anchor[1]}"))
    assert "audit log altered at entry 7: missing" in line and "cut short" in line
