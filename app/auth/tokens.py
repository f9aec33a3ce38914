"""Who is calling: bearer token first, then the session cookie (whose writes need the CSRF header)."""
from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from litestar import Request

from ..server.errors import ApiError

SESSION_COOKIE = "dl_session"
CSRF_COOKIE = "dl_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
API_KEY = re.compile(r"^dl_[a-z0-9]{8}_[a-z0-9]{32}$")  # a partner key (auth.api_key), not a JWT
ROLE_ORDER = ("admin", "reviewer", "annotator", "analyst", "member")  # member: anyone signed in


@dataclass(frozen=True)
class Caller:
    """Who the token says is calling. What they may do is not in the token: SQL reads it from the membership
    tables at every request (auth.request_role), so a role granted or revoked applies at once."""
    user_id: int | None
    session: str | None = None  # the sign-in session the token belongs to (SQL checks it is live)
    key: str | None = None  # a partner's API key, "dl_<prefix>_<secret>" (SQL proves it at every request)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None and self.key is None


ANONYMOUS = Caller(None)


def load_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret (DL_JWT_SECRET, checked by config.load), else a random secret generated once into
    data_dir (readable by the owner only)."""
    if configured:
        return configured
    path = data_dir / "jwt_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Tokens:
    CACHE_SIZE = 4096

    def __init__(self, secret: str, ttl_seconds: int):
        self.secret = secret
        self.ttl = ttl_seconds
        # token -> (caller, exp): a signature checked once need not be checked on every request (a tenth of the
        # app's CPU under load). Expiry is still checked each time; revocation is checked in SQL per request.
        self._verified: dict[str, tuple[Caller, int]] = {}

    def issue(self, user: dict, session: str) -> str:
        now = int(time.time())
        claims = {"sub": str(user["id"]), "sid": session, "iat": now, "exp": now + self.ttl,
                  "jti": secrets.token_urlsafe(12)}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def verify(self, token: str) -> Caller:
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        caller, exp = self._decode(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # simple and bounded; it refills with the tokens in use
        self._verified[token] = (caller, exp)
        return caller

    def _decode(self, token: str) -> tuple[Caller, int]:
        try:
            # algorithms pinned: "none" and any other algorithm are rejected
            c = jwt.decode(token, self.secret, algorithms=["HS256"], options={"require": ["sub", "sid", "exp", "iat"]})
            return Caller(int(c["sub"]), str(c["sid"])), int(c["exp"])
        except (jwt.PyJWTError, ValueError, TypeError):
            raise ApiError(401, "PT401", "invalid or expired token", hint="Sign in again.",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def identify(request: Request, tokens: Tokens) -> Caller:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "PT401", "the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        if API_KEY.match(token):
            return Caller(None, key=token)
        return tokens.verify(token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return ANONYMOUS
    caller = tokens.verify(cookie)
    if request.method not in SAFE_METHODS:
        # double-submit: a page of ours can read the CSRF cookie and echo it; another site cannot
        sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            raise ApiError(403, "PT403", "missing or wrong CSRF token",
                           hint=f"Send the {CSRF_COOKIE} cookie's value in the X-CSRF-Token header.")
    return caller
