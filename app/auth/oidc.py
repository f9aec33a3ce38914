"""OIDC sign-in (authorization code + PKCE) with any issuer found from its discovery document; the ID token is
verified against the issuer's JWKS, then the verified email is mapped to an existing active user in SQL."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

import httpx
import jwt
import msgspec
from litestar import Request, Response, get
from litestar.datastructures import Cookie, State

from .. import config
from ..server.errors import JSON, ApiError
from ..server.request import request_id
from .routes import session_cookies

FLOW_COOKIE = "dl_oidc"


class OidcConfig:
    def __init__(self, s: config.Oidc) -> None:
        self.issuer = s.issuer.rstrip("/")
        self.client_id = s.client_id
        self.client_secret = s.client_secret
        self.redirect_url = s.redirect_url
        self._discovery: dict | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id and self.redirect_url)

    async def discovery(self) -> dict:
        if self._discovery is None:
            async with httpx.AsyncClient(timeout=10) as client:
                doc = (await client.get(f"{self.issuer}/.well-known/openid-configuration")).raise_for_status().json()
            if doc.get("issuer", "").rstrip("/") != self.issuer:
                raise ApiError(502, "PT502", "the OIDC discovery document names another issuer")
            self._discovery = doc
        return self._discovery


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@get("/auth/oidc/login")
async def oidc_login(state: State) -> Response[bytes]:
    cfg: OidcConfig = state.oidc
    if not cfg.enabled:
        raise ApiError(404, "PT404", "OIDC sign-in is not configured here")
    doc = await cfg.discovery()
    flow = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48), "exp": int(time.time()) + 600}
    challenge = _b64(hashlib.sha256(flow["verifier"].encode()).digest())
    query = urlencode({"response_type": "code", "client_id": cfg.client_id, "redirect_uri": cfg.redirect_url,
                       "scope": "openid email profile", "state": flow["state"], "nonce": flow["nonce"],
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    cookie = Cookie(key=FLOW_COOKIE, value=jwt.encode(flow, state.tokens.secret, algorithm="HS256"), httponly=True,
                    samesite="lax", secure=state.settings.auth.secure_cookies, path="/auth/oidc", max_age=600)
    return Response(b"", status_code=302, headers={"Location": f"{doc['authorization_endpoint']}?{query}"},
                    cookies=[cookie])


def _fail(status: int, message: str) -> ApiError:
    return ApiError(status, "oidc_failed", message, hint="Start again from the sign-in page.")


@get("/auth/oidc/callback")
async def oidc_callback(request: Request, state: State) -> Response[bytes]:
    cfg: OidcConfig = state.oidc
    if not cfg.enabled:
        raise ApiError(404, "PT404", "OIDC sign-in is not configured here")
    if request.query_params.get("error"):
        raise _fail(401, f"the identity provider refused: {request.query_params.get('error')}")
    try:
        flow = jwt.decode(request.cookies.get(FLOW_COOKIE, ""), state.tokens.secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise _fail(400, "no sign-in in progress (or it expired)") from None
    if not secrets.compare_digest(request.query_params.get("state", ""), flow["state"]):
        raise _fail(400, "state mismatch: this response does not belong to your sign-in")
    doc = await cfg.discovery()
    form = {"grant_type": "authorization_code", "code": request.query_params.get("code", ""),
            "redirect_uri": cfg.redirect_url, "client_id": cfg.client_id, "code_verifier": flow["verifier"]}
    if cfg.client_secret:
        form["client_secret"] = cfg.client_secret
    async with httpx.AsyncClient(timeout=10) as client:
        token_response = await client.post(doc["token_endpoint"], data=form)
        if token_response.status_code != 200:
            raise _fail(401, "the identity provider did not accept the code")
        jwks = (await client.get(doc["jwks_uri"])).raise_for_status().json()
    try:
        id_token = token_response.json()["id_token"]
        kid = jwt.get_unverified_header(id_token).get("kid")
        keys = jwt.PyJWKSet.from_dict(jwks)
        key = next(k for k in keys.keys if kid is None or k.key_id == kid)
        claims = jwt.decode(id_token, key.key, algorithms=["RS256", "ES256"], audience=cfg.client_id,
                            issuer=doc["issuer"], options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except (KeyError, StopIteration, ValueError, jwt.PyJWTError):
        raise _fail(401, "the ID token could not be verified") from None
    if not secrets.compare_digest(str(claims.get("nonce", "")), flow["nonce"]):
        raise _fail(401, "the ID token was not issued for this sign-in (nonce)")
    if claims.get("email_verified") is not True or not claims.get("email"):
        raise _fail(401, "the identity provider has not verified this email")
    rid = request_id(request)
    async with state.pool.connection() as conn:
        await conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps({"request_id": rid}),))
        cur = await conn.execute("SELECT auth.oidc_sign_in(%s, %s, %s)::text",
                                 (claims["email"], doc["issuer"], claims["sub"]))
        result = msgspec.json.decode((await cur.fetchone())[0])
        await conn.commit()
    if not result["ok"]:
        raise ApiError(401, result["error"], result["message"])
    gone = Cookie(key=FLOW_COOKIE, value="", max_age=0, path="/auth/oidc")
    token, cookies = session_cookies(state, result["user"], result["session"])
    return Response(b"", status_code=303, headers={"Location": "/", "Content-Type": JSON},
                    cookies=[*cookies, gone])
