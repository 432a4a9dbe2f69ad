"""Login throttling, per account and per address, so that guessing passwords is slow and loud.

Written here rather than with Flask-Limiter because the rule is about *failed* attempts keyed by the
account being attacked as well as by the address, and it must hold across processes and restarts: the
failures live in SQLite next to the accounts. A success clears the account's failures (not the address's).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

ACCOUNT_LIMIT = 5  # failures per account within the window
ADDRESS_LIMIT = 20  # failures per address within the window
WINDOW_S = 15 * 60

_DDL = """
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
"""


class LoginThrottle:
    """Counts failed logins in a sliding window; ``retry_after`` says how long a caller must wait."""

    def __init__(self, path: str, *, account_limit=ACCOUNT_LIMIT, address_limit=ADDRESS_LIMIT, window_s=WINDOW_S,
                 clock=time.time):
        self.path = path
        self.account_limit = account_limit
        self.address_limit = address_limit
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with self._connect() as con:
            con.executescript(_DDL)

    def _connect(self):
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{(username or '').strip().lower()}", f"addr:{address or 'unknown'}"

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before another attempt is allowed (0: go ahead)."""
        now = self.clock()
        user_key, addr_key = self._keys(username, address)
        waits = []
        con = self._connect()
        try:
            for key, limit in ((user_key, self.account_limit), (addr_key, self.address_limit)):
                rows = con.execute(
                    "SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                    (key, now - self.window_s, limit),
                ).fetchall()
                if len(rows) >= limit:
                    # blocked until the oldest of the last `limit` failures leaves the window
                    waits.append(int(rows[-1][0] + self.window_s - now) + 1)
        finally:
            con.close()
        return max(waits, default=0)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            con = self._connect()
            try:
                with con:
                    con.executemany("INSERT INTO login_failures (key, at) VALUES (?, ?)",
                                    [(key, now) for key in self._keys(username, address)])
                    con.execute("DELETE FROM login_failures WHERE at < ?", (now - 2 * self.window_s,))
            finally:
                con.close()

    def succeeded(self, username: str, address: str) -> None:
        user_key, _ = self._keys(username, address)
        con = self._connect()
        try:
            with con:
                con.execute("DELETE FROM login_failures WHERE key = ?", (user_key,))
        finally:
            con.close()
