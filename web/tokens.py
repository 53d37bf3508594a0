"""Admin API tokens, stored hashed (`DATA/admin.sqlite`, beside the rules).

A token is 32 random bytes, shown once when it is made; only its SHA-256 is kept (a
random token needs no slow hash: there is nothing to guess). Roles, each allowing what
the one before does: viewer (read rules, preview), editor (change rules), admin (manage
tokens).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from indexer.state_db import StateDB

ROLES = ("viewer", "editor", "admin")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


class TokenError(ValueError):
    pass


class TokenExists(TokenError):
    pass


@dataclass(frozen=True)
class Holder:
    name: str
    role: str
    created: float = 0.0

    def may(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore(StateDB):
    def __init__(self, path: Path):
        super().__init__(path, SCHEMA)

    def add(self, name: str, role: str) -> str:
        """A new token for `name` (shown once: only its hash is stored)."""
        if not NAME.fullmatch(name):
            raise TokenError(f"name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if role not in ROLES:
            raise TokenError(f"role {role!r}: use one of {', '.join(ROLES)}")
        token = f"srk_{secrets.token_urlsafe(32)}"
        try:
            self.db.execute("INSERT INTO tokens VALUES (?,?,?,?)", (name, role, token_hash(token), time.time()))
        except sqlite3.IntegrityError:
            raise TokenExists(f"a token named {name!r} exists: revoke it first") from None
        return token

    def holders(self) -> list[Holder]:
        return [Holder(*row) for row in self.db.execute("SELECT name, role, created FROM tokens ORDER BY name")]

    def revoke(self, name: str) -> bool:
        return self.db.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0

    def holder(self, token: str) -> Holder | None:
        return self.holder_by_hash(token_hash(token))

    def holder_by_hash(self, hashed: str) -> Holder | None:
        row = self.db.execute("SELECT name, role, created FROM tokens WHERE hash = ?", (hashed,)).fetchone()
        return None if row is None else Holder(*row)

