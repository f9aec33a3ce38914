"""The mixed load of the reliability suite: annotators, reviewers and uploaders as real HTTP clients, one thread
and one keep-alive connection each. Every answer is classified; every write the server acknowledged (a 200) is
written down, so the invariants can check afterwards that each one is in the database."""
from __future__ import annotations

import io
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg
from PIL import Image

from sqlcall import PASSWORD, join, make_project, make_user


@dataclass
class Team:
    project: int
    cls: int
    admin: int
    annotators: list[str]  # emails
    reviewers: list[str]
    uploaders: list[str]


def make_load_team(conn: psycopg.Connection, tag: str, annotators: int, reviewers: int, uploaders: int,
                   images: int) -> Team:
    """sqlcall.make_project's project (one review stage, `images` items ready), plus admins who upload."""
    w = make_project(conn, tag, n_images=images, annotators=annotators, reviewers=reviewers)
    emails = [f"up{i}-{tag}@t.org" for i in range(uploaders)]
    for email in emails:
        join(conn, w["admin"], w["project"], make_user(conn, email, ["admin"]))
    return Team(w["project"], w["class"], w["admin"], w["annotator_emails"], w["reviewer_emails"], emails)


@dataclass
class Outcomes:
    """What the clients saw, shared by all of them (a lock around every update)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    status: Counter = field(default_factory=Counter)          # (op, status or 'conn') -> count
    submits: list[tuple[int, int, str]] = field(default_factory=list)   # acknowledged (item, revision_seq, email)
    decisions: list[tuple[int, str]] = field(default_factory=list)      # acknowledged (item, approve|request_changes)
    uploads: list[int] = field(default_factory=list)                    # acknowledged image ids
    unexpected: list[str] = field(default_factory=list)                 # any answer outside the contract
    timeline: list[tuple[float, str, int | str]] = field(default_factory=list)  # (monotonic, op, status)

    def saw(self, op: str, status: int | str) -> None:
        with self.lock:
            self.status[(op, status)] += 1
            self.timeline.append((time.monotonic(), op, status))


# What each call may rightly answer besides 200 under load and faults: 409 when a lock was lost or a retried
# write had already landed, 404 when an expired lock's item was taken over (it is no longer the caller's to see),
# 503 while the database or the storage is down.
EXPECTED = {404, 409, 503}


def _is_error_body(r: httpx.Response) -> bool:
    """The one JSON error shape every failure has: code, message, details, hint."""
    if r.headers.get("content-type", "").split(";")[0] != "application/json":
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and {"code", "message", "details", "hint"} <= body.keys()


class Client(threading.Thread):
    """One person working until `stop` is set. Subclasses define one unit of work in `step`."""

    def __init__(self, base_url: str, email: str, team: Team, out: Outcomes, stop: threading.Event, seed: int):
        super().__init__(daemon=True, name=email)
        self.base_url, self.email, self.team, self.out, self.stop = base_url, email, team, out, stop
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.token: str | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                if self.token is None and not self.sign_in():
                    continue
                self.step()
        except Exception as exc:  # a bug in the harness must fail the test, not vanish with the thread
            with self.out.lock:
                self.out.unexpected.append(f"{self.email}: harness error {exc!r}")
        finally:
            self.http.close()

    def sign_in(self) -> bool:
        r = self.request("login", "POST", "/auth/login", json={"email": self.email, "password": PASSWORD})
        if r is not None and r.status_code == 200:
            self.token = r.json()["token"]
            return True
        time.sleep(0.2)
        return False

    def request(self, op: str, method: str, path: str, **kw) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            r = self.http.request(method, path, headers=headers, **kw)
        except httpx.TransportError:  # the app is down (killed, restarting): not an answer at all
            self.out.saw(op, "conn")
            time.sleep(0.2)
            return None
        self.out.saw(op, r.status_code)
        if r.status_code != 200:
            if r.status_code not in EXPECTED:
                with self.out.lock:
                    self.out.unexpected.append(f"{self.email} {op}: {r.status_code} {r.text[:300]}")
            elif r.status_code == 503:
                time.sleep(float(r.headers.get("retry-after", "1")) / 4)
            if not _is_error_body(r):
                with self.out.lock:
                    self.out.unexpected.append(f"{self.email} {op}: {r.status_code} without the JSON error body")
        return r

    def rpc(self, fn: str, **args) -> dict | None:
        """The decoded result of a 200, else None (the status was recorded)."""
        r = self.request(fn, "POST", f"/rpc/{fn}", json=args)
        return r.json() if r is not None and r.status_code == 200 else None

    def step(self) -> None:
        raise NotImplementedError


class Annotator(Client):
    def step(self) -> None:
        got = self.rpc("next_item", project_id=self.team.project)
        item = got and got.get("item")
        if not item:
            time.sleep(0.3)  # the queue is empty for me, or the call failed
            return
        content = {"class": self.team.cls, "description": f"by {self.email} at {time.time():.3f}"}
        roll = self.rng.random()
        if roll < 0.3:
            self.rpc("save_draft", item_id=item["id"], content=content)
        if roll < 0.03:
            self.rpc("reject_image", item_id=item["id"], reason="bad_quality", comment="load test")
        elif roll < 0.07:
            self.rpc("release_item", item_id=item["id"])
        else:
            done = self.rpc("submit_annotation", item_id=item["id"], content=content)
            if done is not None:
                with self.out.lock:
                    self.out.submits.append((item["id"], done["revision_seq"], self.email))


class Reviewer(Client):
    def step(self) -> None:
        got = self.rpc("next_review", project_id=self.team.project)
        item = got and got.get("item")
        if not item:
            time.sleep(0.3)
            return
        if self.rng.random() < 0.7:
            op, args = "approve", {"comment": ""}
        else:
            op, args = "request_changes", {"comment": "please look again at the border"}
        if self.rpc(op, item_id=item["id"], **args) is not None:
            with self.out.lock:
                self.out.decisions.append((item["id"], op))


def tiny_png(rng: random.Random) -> bytes:
    """A small PNG no other upload has (random pixels): every upload is a new image."""
    img = Image.frombytes("RGB", (48, 48), rng.randbytes(48 * 48 * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class Uploader(Client):
    def step(self) -> None:
        data = tiny_png(self.rng)
        r = self.request("upload", "POST", f"/projects/{self.team.project}/images",
                         files={"files": ("lesion.png", data, "image/png")})
        if r is not None and r.status_code == 200:
            for f in r.json()["files"]:
                with self.out.lock:
                    self.out.uploads.append(f["id"])
        time.sleep(0.1)


def start_clients(base_url: str, team: Team, out: Outcomes, stop: threading.Event) -> list[Client]:
    clients: list[Client] = []
    for i, email in enumerate(team.annotators):
        clients.append(Annotator(base_url, email, team, out, stop, seed=i))
    for i, email in enumerate(team.reviewers):
        clients.append(Reviewer(base_url, email, team, out, stop, seed=1000 + i))
    for i, email in enumerate(team.uploaders):
        clients.append(Uploader(base_url, email, team, out, stop, seed=2000 + i))
    for c in clients:
        c.start()
    return clients


def summary(out: Outcomes) -> str:
    """A table of what the clients saw, for the test log and the closing note."""
    ops = sorted({op for op, _ in out.status})
    shown = (200, 404, 409, 503, "conn")
    lines = [f"{'call':18} " + " ".join(f"{s:>6}" for s in (*map(str, shown), "other"))]
    for op in ops:
        row = [out.status[(op, s)] for s in shown]
        other = sum(n for (o, s), n in out.status.items() if o == op and s not in shown)
        lines.append(f"{op:18} " + " ".join(f"{n:>6}" for n in (*row, other)))
    return "\n".join(lines)
