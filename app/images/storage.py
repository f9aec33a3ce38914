"""Where image bytes live: a local folder (the embedded default) or S3 (MinIO in docker-compose)."""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from .. import config

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,1000}$")


class StorageError(Exception):
    """The backend failed (down, denied): the caller answers 503 and acknowledges nothing."""


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"bad storage key {key!r}")
    return key


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...  # a missing key is not an error
    async def ping(self) -> None: ...


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # write then rename: a reader never sees half a file, a crash never leaves one under the key
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.is_file)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


class S3Storage:
    """boto3 in a worker thread; bucket, optional prefix and endpoint (MinIO) from the settings."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        full = self._key(key)  # a bad key is a bug to surface, not an outage to retry
        try:
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=full, Body=data,
                                    ContentType=content_type)
        except Exception as exc:  # botocore raises many kinds; all mean "not stored"
            raise StorageError(str(exc)) from exc

    async def get(self, key: str) -> bytes | None:
        full = self._key(key)
        try:
            obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=full)
            return await asyncio.to_thread(obj["Body"].read)
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=full)
            return True
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(str(exc)) from exc

    async def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=full)
        except Exception as exc:
            raise StorageError(str(exc)) from exc

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except Exception as exc:
            raise StorageError(str(exc)) from exc


def from_settings(s: config.Storage) -> Storage:
    """The storage DL_STORAGE names: the DL_IMAGE_DIR folder, or the DL_S3_BUCKET bucket."""
    if s.kind == "s3":
        return S3Storage(s.s3_bucket, s.s3_prefix, s.s3_endpoint_url)
    return LocalStorage(s.image_dir)
