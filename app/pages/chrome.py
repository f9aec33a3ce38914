"""What every page's top bar needs: who is signed in (api.me), the role-aware navigation, the project switch. The
pages of this package and the API reference (/schema, app/rpc/routes.py) share it."""
from __future__ import annotations

from urllib.parse import quote

import msgspec
import psycopg
from litestar import Request
from litestar.datastructures import State
from litestar.response import Redirect

from ..auth.tokens import ANONYMOUS, Caller, identify
from ..rpc import calls as rpc
from ..server.errors import ApiError
from ..server.request import request_id

# (path, label, roles that see it) - the navigation, role-aware
NAV = [("/work", "Annotate", {"annotator"}), ("/review", "Review", {"reviewer"}), ("/admin", "Admin", {"admin"}),
       ("/dashboard", "Metrics", {"admin", "analyst"}), ("/organizations", "Organizations", {"operator"}),
       ("/schema", "API", None)]


def roles_of(me: dict) -> set[str]:
    """The kinds of work the person does somewhere (from api.me), and operator for the installation's operator."""
    return set(me["roles"]) | ({"operator"} if me.get("operator") else set())


def caller_of(request: Request, state: State) -> Caller:
    try:
        return identify(request, state.tokens)
    except ApiError:
        return ANONYMOUS


async def me_of(request: Request, state: State, caller: Caller) -> dict | None:
    try:
        out = await rpc.call(state.pool, state.catalog.get("me"), caller, {}, request_id(request))
    except psycopg.Error:
        return None  # a revoked session, a deactivated account: sign in again
    return msgspec.json.decode(out)


def to_login(request: Request) -> Redirect:
    return Redirect(f"/login?next={quote(request.url.path + ('?' + request.url.query if request.url.query else ''))}")


def nav(roles: set[str], project: int | None) -> list[dict]:
    items = []
    for path, label, need in NAV:
        if need is None or roles & need:
            href = f"{path}?project={project}" if project and path != "/schema" else path
            items.append({"href": href, "label": label})
    return items


async def top_bar(request: Request, state: State) -> dict:
    """The base template's context for a page anyone may open (the API reference): the navigation and sign-out for
    a signed-in person, a sign-in link for anyone else."""
    caller = caller_of(request, state)
    me = None if caller.anonymous else await me_of(request, state, caller)
    return {"me": me, "nav": nav(roles_of(me), None) if me else [], "project": None, "projects": [],
            "active": request.url.path, "signin": me is None}
