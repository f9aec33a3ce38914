"""Rate limits: sign-in attempts and RPC calls answer 429 with Retry-After past their budget."""
from conftest import JWT_SECRET, start_app, stop_app


def test_login_and_rpc_are_rate_limited(database_url):
    server = start_app(database_url, {"DL_JWT_SECRET": JWT_SECRET, "DL_RATE_LOGIN": "3/60", "DL_RATE_RPC": "5/60"})
    try:
        with server.client() as c:
            codes = [c.post("/auth/login", json={"email": "x@y.org", "password": "p"}).status_code for _ in range(4)]
            assert codes == [401, 401, 401, 429]
            limited = c.post("/auth/login", json={"email": "x@y.org", "password": "p"})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert set(limited.json()) == {"code", "message", "details", "hint"}
            rpc = [c.get("/rpc/health").status_code for _ in range(6)]
            assert rpc == [200] * 5 + [429]
    finally:
        stop_app(server)
