"""DICOMweb import from a PACS: search series with QIDO-RS, retrieve them with WADO-RS, and take each instance
through the same intake as an upload (de-identified, rendered, registered). The project's base URL is configured
in SQL (api.set_dicomweb_source); who may search and import is decided there too (admins of the project)."""
from __future__ import annotations

import re

import httpx
import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.datastructures import State

from ..auth.tokens import identify
from ..config import MB
from ..images.routes import Intake, upload_response
from ..rpc import calls as rpc
from ..server import errors
from ..server.errors import JSON, ApiError
from ..server.request import json_body, request_id

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
FILTERS = {  # query parameter → (QIDO attribute, allowed values)
    "date": ("StudyDate", re.compile(r"^\d{8}(-\d{8})?$|^-\d{8}$|^\d{8}-$")),
    "modality": ("Modality", re.compile(r"^[A-Z]{1,16}$")),
    "body_part": ("BodyPartExamined", re.compile(r"^[A-Z0-9 _]{1,16}$")),
    "study_uid": ("StudyInstanceUID", UID),
}
# what a search shows of each series; patient names and IDs are not asked for: they have no use here
SHOWN = {"0020000D": "study_uid", "0020000E": "series_uid", "00080020": "study_date", "00080060": "modality",
         "00180015": "body_part", "0008103E": "series_description", "00081030": "study_description",
         "00201209": "instances", "00200011": "series_number"}


class Series(msgspec.Struct, forbid_unknown_fields=True):
    study_uid: str
    series_uid: str


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    series: list[Series]
    source_class: str | None = None
    batch: str | None = None


async def _source(state: State, caller, project_id: int, rid: str) -> str:
    out = await rpc.call(state.pool, state.catalog.get("dicomweb_source"), caller, {"project_id": project_id}, rid)
    base = msgspec.json.decode(out)["base_url"]
    if not base:
        raise ApiError(404, "P0002", f"project {project_id} has no DICOMweb source: set one with set_dicomweb_source")
    return base


def _value(attr: dict | None):
    values = (attr or {}).get("Value") or []
    return values[0] if values else None


def _pacs_error(exc: Exception, url: str) -> ApiError:
    if isinstance(exc, httpx.HTTPStatusError):
        what = f"answered {exc.response.status_code}"
    else:
        what = f"could not be reached ({type(exc).__name__})"
    return ApiError(502, "PT502", f"the DICOMweb service at {url} {what}", hint="check the project's DICOMweb URL")


@get("/projects/{project_id:int}/dicomweb/series")
async def search_series(request: Request, state: State, project_id: int) -> Response[bytes]:
    """QIDO-RS: the series of the PACS matching date (YYYYMMDD or a range), modality, body part, study."""
    rid = request_id(request)
    caller = identify(request, state.tokens)
    # includefield once per attribute: the comma-separated form is not understood by every server (Orthanc 1.10)
    query = [("includefield", tag) for tag in SHOWN] + [("limit", "200")]
    for name, value in request.query_params.items():
        if name not in FILTERS:
            raise ApiError(400, "PGRST400", f"unknown filter {name!r}", details={"filters": sorted(FILTERS)})
        attribute, pattern = FILTERS[name]
        if not pattern.match(value):
            raise ApiError(400, "PGRST400", f"{name}: {value!r} is not a valid value", details={"argument": name})
        query.append((attribute, value))
    try:
        base = await _source(state, caller, project_id, rid)
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            r = await client.get(f"{base}/series", params=query, headers={"Accept": "application/dicom+json"})
            r.raise_for_status()
            found = r.json() if r.content else []
    except (httpx.HTTPError, ValueError) as exc:
        raise _pacs_error(exc, base) from None
    rows = [{name: _value(s.get(tag)) for tag, name in SHOWN.items()} for s in found]
    return Response(msgspec.json.encode({"source": base, "series": rows}), media_type=JSON,
                    headers={"X-Request-Id": rid})


def split_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a multipart/related answer (WADO-RS), each part's body only."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ValueError("no multipart boundary")
    delimiter = b"--" + m.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if sep:
            parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts


async def _retrieve(client: httpx.AsyncClient, url: str, series_uid: str, limit_mb: int) -> list[bytes]:
    """WADO-RS retrieve of one series, read as it arrives and refused once it passes the request limit
    (DL_MAX_REQUEST_MB)."""
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    async with client.stream("GET", url, headers={"Accept": accept}) as r:
        r.raise_for_status()
        body = bytearray()
        async for chunk in r.aiter_bytes():
            body += chunk
            if len(body) > limit_mb * MB:
                raise ApiError(413, "PT413", f"series {series_uid} is larger than the import limit "
                                             f"({limit_mb} MB)")
        return split_multipart(r.headers.get("content-type", ""), bytes(body))


@post("/projects/{project_id:int}/dicomweb/import", status_code=200, request_max_body_size=1 << 20)
async def import_series(request: Request, state: State, project_id: int) -> Response[bytes]:
    """WADO-RS: retrieve each chosen series and add every instance to the project like an upload."""
    rid = request_id(request)
    caller = identify(request, state.tokens)
    intake = Intake(state, caller, project_id, rid)
    body = json_body(await request.body())  # not JSON, too deep, a key named twice: 400
    try:
        wanted = msgspec.convert(body, type=ImportRequest)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "PGRST102", f"body: {exc}") from None
    if not 1 <= len(wanted.series) <= 100:
        raise ApiError(400, "PGRST400", "series: choose 1 to 100 series per import")
    for s in wanted.series:
        if not (UID.match(s.study_uid) and UID.match(s.series_uid)) or max(len(s.study_uid), len(s.series_uid)) > 64:
            raise ApiError(400, "PGRST400", "series: study_uid and series_uid must be DICOM UIDs")
    results: list[dict] = []
    try:
        base = await _source(state, caller, project_id, rid)
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            for i, s in enumerate(wanted.series, 1):
                url = f"{base}/studies/{s.study_uid}/series/{s.series_uid}"
                try:
                    instances = await _retrieve(client, url, s.series_uid, state.settings.limits.max_request_mb)
                except (httpx.HTTPError, ValueError) as exc:
                    raise _pacs_error(exc, base) from None
                for n, raw in enumerate(instances, 1):
                    # the name is the series' position, never the PACS's: UIDs are identifying
                    results.append(await intake.add(f"series {i} instance {n}", raw, wanted.source_class,
                                                    wanted.batch or "dicomweb"))
    except psycopg.Error as exc:
        return errors.from_sql(exc, caller.anonymous, rid)
    if not results:
        raise ApiError(404, "PT404", "the chosen series have no instances")
    return upload_response(results, rid)
