"""Processes and loopback servers for the AI pipeline tests: the reference service, the worker, and small HTTP
servers that fail, hang, or speak the chat-completions protocol (each records what it was sent)."""
from __future__ import annotations

import io
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from conftest import ROOT, free_port


def wait_port(port: int, proc: subprocess.Popen | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else "(see its log)"
            raise RuntimeError(f"process exited: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_reference() -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app", "ai-reference"], cwd=ROOT,
                            env={**os.environ, "DL_AI_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, proc)
    return f"http://127.0.0.1:{port}", proc


def start_worker(database_url: str, data_dir: str, env: dict[str, str]) -> subprocess.Popen:
    # stderr to a file: a pipe nobody drains would block the worker once its log fills the pipe's buffer
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": database_url, "DL_DATA_DIR": data_dir,
                                 "DL_LOG_FORMAT": "text", "DL_AI_POLL_SECONDS": "0.5", **env},
                            stdout=subprocess.DEVNULL, stderr=log)
    proc.logfile = log
    return proc


def stop(proc: subprocess.Popen, seconds: float = 30) -> str:
    """Stops the process; returns its log when it went to a file."""
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log = getattr(proc, "logfile", None)
    if log is None:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")


class Loopback:
    """A tiny HTTP server on loopback: `answer(handler, body) -> (status, json)`; records each request."""

    def __init__(self, answer):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append({"path": self.path, "body": body,
                                       "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, doc = answer(len(outer.requests), body)
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _skin(size: int, grain: bool = True) -> Image.Image:
    base = Image.new("RGB", (size, size), (228, 196, 172))
    if grain:
        noise = Image.effect_noise((size, size), 40).convert("RGB").point(lambda v: 215 + v // 6)
        base = Image.blend(base, ImageChops.multiply(base, noise), 0.6)
    return base


def round_lesion(size: int = 600, radius: int = 90) -> tuple[bytes, tuple[int, int, int, int]]:
    """A symmetric round lesion of one colour with a soft edge; returns PNG bytes and its bounding box."""
    mask = Image.new("L", (size, size), 0)
    c = size // 2
    ImageDraw.Draw(mask).ellipse((c - radius, c - radius, c + radius, c + radius), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius * 0.12))
    img = Image.composite(Image.new("RGB", (size, size), (150, 100, 66)), _skin(size), mask)
    return _png(img), (c - radius, c - radius, c + radius, c + radius)


def irregular_lesion(size: int = 600) -> tuple[bytes, tuple[int, int, int, int]]:
    """A lopsided, ragged, sharp-edged lesion with four colours (dark brown, black, blue-grey, red)."""
    c = size / 2
    pts = []
    for i in range(240):
        t = 2 * math.pi * i / 240
        r = 110 * (1 + 0.22 * math.sin(7 * t) + 0.12 * math.sin(13 * t + 1)) * (1 + 0.6 * max(0.0, math.cos(t)))
        pts.append((c - 40 + r * math.cos(t), c + r * math.sin(t)))
    img = _skin(size)
    d = ImageDraw.Draw(img)
    d.polygon(pts, fill=(92, 56, 34))
    d.ellipse((c - 60, c - 50, c + 10, c + 20), fill=(36, 26, 24))
    d.ellipse((c + 10, c - 35, c + 70, c + 25), fill=(92, 102, 122))
    d.ellipse((c - 20, c + 40, c + 40, c + 90), fill=(170, 62, 58))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return _png(img), (int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def blurred(png: bytes, radius: float = 6) -> bytes:
    return _png(Image.open(io.BytesIO(png)).convert("RGB").filter(ImageFilter.GaussianBlur(radius)))
