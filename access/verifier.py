"""KeyVerifier: turns the `Authorization` value of a call into a Principal, for both edges.

Verified keys are cached for `ttl` seconds (keyed by a SHA-256 of the presented key, so the
cache holds no secret) to spare the store a read and the CPU a scrypt per call. After the TTL
the key is looked up again, so a revocation takes effect in a running process within `ttl`
seconds. Failures are not cached: an unknown key costs a store read, never a hash.

Nothing here logs the presented value or any part of it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from access.keys import Principal, parse, principal_of, secret_matches
from access.ports import KeyStore
from kernel.errors import Revoked, Unauthenticated

MAX_CACHED = 10_000


def bearer(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` value; Unauthenticated when there is none."""
    if not authorization:
        raise Unauthenticated("no API key: send the header 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header is not 'Bearer <key>'")
    return token.strip()


class KeyVerifier:
    def __init__(
        self, store: KeyStore, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    def verify(self, authorization: str | None) -> Principal:
        """The caller of a request with this Authorization value.

        Unauthenticated: missing, malformed, unknown or wrong key; Revoked: a revoked key;
        Unavailable: the store did not answer."""
        token = bearer(authorization)
        fingerprint = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(fingerprint)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = self._check(token)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[fingerprint] = (principal, now + self._ttl)
        return principal

    def cached(self, authorization: str | None) -> Principal | None:
        """The caller if this key was verified within the TTL, else None (then `verify`, which
        may read the store and hash: an event loop runs that in a thread). Unauthenticated
        when the value is not 'Bearer <key>' at all."""
        fingerprint = hashlib.sha256(bearer(authorization).encode()).digest()
        with self._lock:
            cached = self._cache.get(fingerprint)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        return None

    def _check(self, token: str) -> Principal:
        parsed = parse(token)
        if parsed is None:
            raise Unauthenticated("the API key is malformed (expected pl_<id>_<secret>)")
        key_id, secret = parsed
        record = self._store.get(key_id)
        if record is None or not secret_matches(secret, record.secret_hash):
            raise Unauthenticated("the API key is not valid")
        # Checked after the secret, so that only the key's holder learns it was revoked.
        if record.revoked is not None:
            raise Revoked(f"API key {key_id} was revoked")
        return principal_of(record)
