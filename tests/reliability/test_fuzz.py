"""Schemathesis over /schema/openapi.json: every RPC endpoint (POST, and GET for the read-only ones), generated
arguments valid and invalid, anonymous and signed in as an annotator and as an admin. No answer may be a 5xx, and
every error carries the one JSON error body.

    DL_FUZZ_EXAMPLES=20 (per operation and caller)
"""
from __future__ import annotations

import os
import uuid

import httpx
import psycopg
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sqlcall import PASSWORD, make_team

EXAMPLES = int(os.environ.get("DL_FUZZ_EXAMPLES", "20"))
# Calls that end the caller's own session would leave the rest of an operation's examples testing only 401s.
SESSION_ENDERS = {"/rpc/logout", "/auth/logout", "/rpc/change_password"}


def callers_for(base_url: str, database_url: str) -> dict[str, dict[str, str]]:
    """Fresh people per operation: whatever one operation's examples do to them (deactivate, demote), the next
    starts from a working admin and annotator."""
    with psycopg.connect(database_url) as conn:
        team = make_team(conn, f"fuzz{uuid.uuid4().hex[:6]}", annotator=["annotator"])
    headers = {"anonymous": {}}
    for who in ("admin", "annotator"):
        r = httpx.post(f"{base_url}/auth/login", json={"email": team["emails"][who], "password": PASSWORD})
        headers[who] = {"Authorization": f"Bearer {r.json()['token']}"}
    return headers


def check(case, base_url: str, callers: dict[str, dict[str, str]]) -> None:
    for who, headers in callers.items():
        if who != "anonymous" and case.path in SESSION_ENDERS:
            continue
        r = case.call(base_url=base_url, headers=headers, timeout=30)
        where = f"{case.method} {case.path} as {who}: {r.status_code} {r.content[:300]!r}"
        assert r.status_code < 500, where
        if r.status_code >= 400:
            assert (r.headers.get("content-type") or [""])[0].startswith("application/json"), where
            body = r.json()
            assert isinstance(body, dict) and {"code", "message", "details", "hint"} <= body.keys(), where


def test_every_endpoint_fuzzed_no_server_error_and_one_error_shape(app_server, database_url):
    schema = schemathesis.openapi.from_url(f"{app_server.url}/schema/openapi.json")
    failures, operations = [], 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        callers = callers_for(app_server.url, database_url)
        cases = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

        @given(cases)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  phases=[Phase.generate])  # report, do not shrink: the message already names the call
        def fuzz(case) -> None:
            check(case, app_server.url, callers)

        try:
            fuzz()
        except Exception as exc:  # collected: one run reports every endpoint that misbehaves
            failures.append(f"{op.label}: {str(exc).splitlines()[0] if str(exc) else repr(exc)}")
    print(f"\nfuzzed {operations} operations, {EXAMPLES} examples each, as anonymous, annotator and admin")
    declared = sum(len(ops) for ops in schema.raw_schema["paths"].values())
    assert operations == declared > 60
    if failures:  # the app logged what the database said; the client only got a request id
        print("\n".join(line for line in app_server.read_log().splitlines() if "unexpected" in line)[-3000:])
    assert not failures, failures[:10]
