"""The few SQLite moves every webmap database file makes the same way (accounts, alerts, audit, reports, store).

Each of those files is opened by several threads and processes at once (waitress, the delivery worker, CLI
commands), so they all need the same three things done right once: switching a new file to WAL, a write
transaction that takes the lock at once and never stays open after an error, and a versioned schema.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time

from webmap.errors import BadInput


def set_wal(con: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch a (new) file to WAL. SQLite answers "database is locked" at once, without its busy timeout,
    when another process is switching or creating the same file (18 times in 600 openings of a new file by
    3 processes at once here), so this one statement is retried for up to ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def immediate_transaction(con: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection (``isolation_level=None``).

    IMMEDIATE takes the write lock at once, so what the block reads and the write it decides on are atomic
    across threads and processes. On any error (a failed COMMIT too) the transaction is rolled back, so a
    connection kept per thread is never left inside it; an error of the ROLLBACK itself (SQLite may already
    have rolled back) does not hide the error that caused it.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        raise


def create_schema(con: sqlite3.Connection, schema: str, version: int, path: str) -> None:
    """Run ``schema``'s statements (``CREATE ... IF NOT EXISTS``) and record ``version`` in
    ``PRAGMA user_version``, inside the caller's transaction. A file made by a newer webmap is refused
    (BadInput) rather than used with a schema this code does not know."""
    found = con.execute("PRAGMA user_version").fetchone()[0]
    if found > version:
        raise BadInput(f"{path} was made by a newer webmap (schema {found}); upgrade webmap")
    for statement in schema.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {version}")


def create_owner_only(path: str) -> None:
    """Create ``path`` (and its folder) readable and writable by the owner only, if it does not exist yet:
    SQLite would create it with the umask's mode, and these files hold password hashes, incident places and
    organisations' channels. O_EXCL: another process creating it at the same moment is no error."""
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not os.path.exists(path):
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


_PER_APP_LOCK = threading.Lock()


def per_app(app, key: str, make):
    """The app's one instance of a database (``make()`` on first use, then kept in ``app.extensions[key]``):
    every thread of a server then shares its connections' bookkeeping, and it is opened once, not per call."""
    with _PER_APP_LOCK:
        value = app.extensions.get(key)
        if value is None:
            value = app.extensions[key] = make()
    return value
