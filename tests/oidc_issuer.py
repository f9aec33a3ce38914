"""A small OIDC issuer for tests, on loopback: discovery, authorize (auto-consent), token (checks PKCE), JWKS."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class Issuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict] = {}
        # what the next sign-in asserts; tests change these
        self.email, self.email_verified, self.sign_with_wrong_key, self.nonce_override = "", True, False, None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json({"issuer": issuer.url, "authorization_endpoint": f"{issuer.url}/authorize",
                                       "token_endpoint": f"{issuer.url}/token", "jwks_uri": f"{issuer.url}/jwks",
                                       "code_challenge_methods_supported": ["S256"]})
                if url.path == "/jwks":
                    return self._json(issuer.jwks())
                if url.path == "/authorize":
                    assert q["code_challenge_method"] == "S256" and q["response_type"] == "code"
                    code = secrets.token_urlsafe(16)
                    issuer.codes[code] = q
                    self.send_response(302)
                    self.send_header("Location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
                    self.end_headers()
                    return
                self._json({"error": "not_found"}, 404)

            def do_POST(self):
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                request = issuer.codes.pop(form.get("code", ""), None)
                challenge = base64.urlsafe_b64encode(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
                if request is None or challenge.rstrip(b"=").decode() != request["code_challenge"]:
                    return self._json({"error": "invalid_grant"}, 400)
                now = int(time.time())
                claims = {"iss": issuer.url, "aud": request["client_id"], "sub": "sub-" + issuer.email,
                          "email": issuer.email, "email_verified": issuer.email_verified, "iat": now,
                          "exp": now + 300, "nonce": issuer.nonce_override or request["nonce"]}
                key = issuer.wrong_key if issuer.sign_with_wrong_key else issuer.key
                token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
                self._json({"id_token": token, "access_token": "opaque", "token_type": "Bearer"})

        return Handler
