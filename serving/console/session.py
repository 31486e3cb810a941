"""Console sign-in: an API key exchanged for a signed, expiring session cookie.

The cookie holds the role, a short fingerprint of the key (never the key) and the session's
CSRF token, signed with the console secret (``itsdangerous``, HMAC-SHA1 over a timestamped
payload). Each request re-checks that the fingerprint still belongs to a configured key of
that role, so removing a key from the settings ends its sessions at the next restart.
Repeated failed sign-ins from one address are refused for a doubling delay.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

from serving.settings import Role

SESSION_COOKIE: Final[str] = "fairshelf_console"
#: Double-submit token of the sign-in form (there is no session yet to hold one).
SIGNIN_COOKIE: Final[str] = "fairshelf_console_signin"


def key_fingerprint(api_key: str) -> str:
    """A short, non-reversible name for a key (SHA-256, 16 hex digits)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Session:
    """A signed-in console user."""

    role: Role
    key_id: str
    csrf: str


class SessionSigner:
    """Issues and reads session cookies.

    Parameters
    ----------
    secret:
        The signing key (the console secret of the settings).
    max_age_seconds:
        How long a session lasts; older cookies are refused.
    api_keys:
        The configured keys and roles (a session stays valid only while its key does).
    auth_enabled:
        When false every session is admin, as every API call is.
    """

    def __init__(
        self,
        secret: bytes,
        max_age_seconds: int,
        api_keys: Mapping[str, Role],
        *,
        auth_enabled: bool = True,
    ) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="fairshelf-console-session")
        self.max_age_seconds = max_age_seconds
        self._roles = {key_fingerprint(k): Role(r) for k, r in api_keys.items()}
        self._auth_enabled = auth_enabled

    def issue(self, role: Role, api_key: str) -> tuple[str, Session]:
        """A cookie value for a user who just signed in with ``api_key``."""
        session = Session(
            role=role, key_id=key_fingerprint(api_key), csrf=secrets.token_urlsafe(24)
        )
        value = self._serializer.dumps({"r": role.value, "k": session.key_id, "c": session.csrf})
        return value, session

    def read(self, value: str | None) -> Session | None:
        """The session of a cookie, or ``None`` when absent, forged, expired or revoked."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        try:
            role, key_id, csrf = Role(data["r"]), str(data["k"]), str(data["c"])
        except (KeyError, ValueError):
            return None
        if self._auth_enabled and self._roles.get(key_id) is not role:
            return None
        return Session(role=role, key_id=key_id, csrf=csrf)


def same_token(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


class SignInThrottle:
    """Slows down guessing: after ``free`` failures from one address, each further attempt
    must wait ``base * 2**extra`` seconds (at most ``cap``) after the last failure.

    Parameters
    ----------
    free:
        Failures allowed without delay.
    base, cap:
        First delay and the longest delay, in seconds.
    tracked:
        Addresses remembered (the oldest are forgotten first).
    """

    def __init__(
        self, free: int = 3, base: float = 1.0, cap: float = 300.0, tracked: int = 10_000
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self._tracked = tracked
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_for(self, address: str, now: float | None = None) -> float:
        """Seconds ``address`` must still wait before its next attempt (0 when it may try)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, last = self._failures.get(address, (0, 0.0))
        if count < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** (count - self.free))
        return max(0.0, last + delay - now)

    def failed(self, address: str, now: float | None = None) -> None:
        """Count a failed attempt."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, _ = self._failures.pop(address, (0, 0.0))
            self._failures[address] = (count + 1, now)
            while len(self._failures) > self._tracked:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """Forget the failures of an address that signed in."""
        with self._lock:
            self._failures.pop(address, None)
