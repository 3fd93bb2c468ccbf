"""API keys (pure): roles, what a key may do, generating a key, hashing and checking its secret.

A key is `pl_<id>_<secret>`. The id (16 hex digits) is public: it names the key in `pulse keys
list` and `revoke` and finds its record. The secret (32 random bytes, base64url) is shown once,
at creation; only a salted scrypt digest of it is stored.

Hash cost: scrypt n=2**14, r=8, p=1 (16 MiB, about 50-80 ms on one core), a fresh 16-byte salt
per key. The secret already has 256 bits of entropy, so the KDF only protects a leaked key table
against offline guessing; the cost is kept moderate because an online caller who knows a key id
can make the server pay it once per wrong secret (verified keys are cached, see access.verifier).
The parameters are stored with each digest, so they can be raised for new keys later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kernel.errors import Invalid

PREFIX = "pl"
_ID = re.compile(r"^[0-9a-f]{16}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
_TENANT = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_NAME_MAX = 200

SCRYPT_N, SCRYPT_R, SCRYPT_P, DIGEST_BYTES = 2**14, 8, 1, 32


class Role(StrEnum):
    TENANT = "tenant"  # reads its own tenants over HTTP
    OPERATOR = "operator"  # reads every tenant over HTTP
    PRODUCER = "producer"  # calls gRPC Ingest, for any tenant or a listed set


@dataclass(frozen=True)
class KeyRecord:
    """What the key store holds: never the secret, only its salted digest (`secret_hash`)."""

    key_id: str
    role: Role
    tenants: frozenset[str]  # tenant: the ones it reads; producer: empty means any
    name: str
    created: datetime
    secret_hash: str
    revoked: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """A verified key: who is calling and what it may do."""

    key_id: str
    role: Role
    tenants: frozenset[str]

    def may_read(self, tenant_id: str) -> bool:
        if self.role is Role.OPERATOR:
            return True
        return self.role is Role.TENANT and tenant_id in self.tenants

    def may_send_for(self, tenant_id: str) -> bool:
        return self.role is Role.PRODUCER and (not self.tenants or tenant_id in self.tenants)


@dataclass(frozen=True)
class NewKey:
    """A key just made: the record to store and the full key to show once."""

    record: KeyRecord
    token: str


def new_key(
    role: Role, tenants: Iterable[str], name: str, now: datetime, *, cost: int = SCRYPT_N
) -> NewKey:
    """A fresh key for `role`; Invalid when the tenants do not fit the role."""
    chosen = frozenset(tenants)
    bad = sorted(t for t in chosen if not _TENANT.match(t))
    if bad:
        raise Invalid(f"tenant: {bad[0]!r} is not 1-128 characters of [A-Za-z0-9._:-]")
    if role is Role.TENANT and not chosen:
        raise Invalid("tenant: a tenant key needs at least one --tenant")
    if role is Role.OPERATOR and chosen:
        raise Invalid("tenant: an operator key reads every tenant; --tenant does not apply")
    if len(name) > _NAME_MAX or any(not ch.isprintable() for ch in name):
        raise Invalid(f"name: at most {_NAME_MAX} printable characters")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = KeyRecord(key_id, role, chosen, name, to_ms(now), hash_secret(secret, cost=cost))
    return NewKey(record, f"{PREFIX}_{key_id}_{secret}")


def parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not _ID.match(key_id) or not _SECRET.match(secret):
        return None
    return key_id, secret


def hash_secret(secret: str, *, cost: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$digest` (base64url), with a fresh salt unless one is given."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=cost, r=SCRYPT_R, p=SCRYPT_P, dklen=DIGEST_BYTES
    )
    return f"scrypt${cost}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """True when `secret` hashes to `stored` (constant-time comparison of the digests)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def to_ms(moment: datetime) -> datetime:
    """`moment` at millisecond precision, what a CQL timestamp keeps (both stores agree)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def principal_of(record: KeyRecord) -> Principal:
    return Principal(record.key_id, record.role, record.tenants)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
