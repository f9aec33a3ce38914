"""The web UI's pages: sign-in, the annotator and reviewer workspaces, the admin page, a 403 page. Server-rendered shells; the
workspaces then talk to /rpc/* with the session cookie and the CSRF header (web/static/js). Which pages a person
sees follows their roles; what they may do is decided in SQL on every call."""
from __future__ import annotations

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Redirect, Template

from .chrome import NAV
from .chrome import caller_of as _caller
from .chrome import me_of as _me
from .chrome import nav as _nav
from .chrome import roles_of as _roles
from .chrome import to_login as _to_login


async def _page(request: Request, state: State, template: str, role: str, title: str) -> Response:
    caller = _caller(request, state)
    if caller.anonymous:
        return _to_login(request)
    me = await _me(request, state, caller)
    if me is None:
        return _to_login(request)
    roles = _roles(me)
    # the projects where the person holds this page's role (roles are per project)
    projects = [p["project_id"] for p in me.get("project_roles", []) if role in p["roles"]]
    project = request.query_params.get("project")
    project_id = int(project) if project and project.isdigit() else (projects[0] if projects else None)
    context = {"me": me, "nav": _nav(roles, project_id), "project": project_id, "projects": projects,
               "title": title, "active": request.url.path}
    if role not in roles:
        return Template(template_name="forbidden.html", status_code=403,
                        context={**context, "title": "Not for your role",
                                 "reason": f"This page is for people with the {role} role."})
    if project_id not in projects:
        return Template(template_name="forbidden.html", status_code=403,
                        context={**context, "title": "Not your project",
                                 "reason": f"You have no {role} role in that project (or it does not exist)."})
    return Template(template_name=template, context=context)


@get("/", include_in_schema=False)
async def home(request: Request, state: State) -> Response:
    caller = _caller(request, state)
    if caller.anonymous:
        return Redirect("/login")
    me = await _me(request, state, caller)
    if me is None:
        return _to_login(request)
    roles = _roles(me)
    for path, _, need in NAV:
        if need and roles & need:
            return Redirect(path)
    return Redirect("/schema")


@get("/login", include_in_schema=False)
async def login_page(request: Request, state: State) -> Template:
    nxt = request.query_params.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//"):  # only our own pages: no open redirect
        nxt = "/"
    return Template(template_name="login.html",
                    context={"next": nxt, "sso": state.oidc.enabled, "title": "Sign in",
                             "nav": [], "me": None})


@get("/work", include_in_schema=False)
async def work_page(request: Request, state: State) -> Response:
    return await _page(request, state, "work.html", "annotator", "Annotate")


@get("/review", include_in_schema=False)
async def review_page(request: Request, state: State) -> Response:
    return await _page(request, state, "review.html", "reviewer", "Review")


@get("/organizations", include_in_schema=False)
async def organizations_page(request: Request, state: State) -> Response:
    """The operator's page: organizations, and who administers them (SQL refuses anyone else's calls anyway)."""
    caller = _caller(request, state)
    if caller.anonymous:
        return _to_login(request)
    me = await _me(request, state, caller)
    if me is None:
        return _to_login(request)
    context = {"me": me, "nav": _nav(_roles(me), None), "project": None, "projects": [],
               "title": "Organizations", "active": request.url.path}
    if not me.get("operator"):
        return Template(template_name="forbidden.html", status_code=403,
                        context={**context, "title": "Not for your role",
                                 "reason": "This page is for the installation's operator."})
    return Template(template_name="organizations.html", context=context)


@get("/admin", include_in_schema=False)
async def admin_page(request: Request, state: State) -> Response:
    return await _page(request, state, "admin.html", "admin", "Admin")
