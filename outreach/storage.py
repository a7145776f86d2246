"""Where batch files live: a folder every worker shares (default) or an S3-compatible bucket.

Files are written whole under a temporary name and then moved into place, so a reader (the print shop, the
assembler) never sees half a file, and a task that runs twice simply replaces a file with identical bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlparse

from outreach.settings import Settings, get_settings


class Storage(Protocol):
    """The narrow interface batch writing needs."""

    def put(self, key: str, source: Path) -> None:
        """Stores the local file `source` under `key`, atomically."""

    def open(self, key: str) -> BinaryIO:
        """Opens a stored file for reading."""

    def exists(self, key: str) -> bool:
        """Whether `key` is stored."""

    def delete(self, key: str) -> None:
        """Deletes `key` if stored."""

    def locate(self, key: str) -> str:
        """A path or URL that names the stored file for people."""


def sha256_of(stream: BinaryIO) -> str:
    """The SHA-256 of a stream, read in blocks."""
    return digest_and_size(stream)[0]


def digest_and_size(stream: BinaryIO) -> tuple[str, int]:
    """The SHA-256 and the length in bytes of a stream, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


class LocalStorage:
    """A folder, local or on a shared volume."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        return self.root / key

    def put(self, key: str, source: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def locate(self, key: str) -> str:
        return str(self.path(key))


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph); needs the `s3` extra (boto3)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            import boto3  # type: ignore[import-not-found, unused-ignore]

            client = boto3.client("s3", endpoint_url=os.environ.get("OUTREACH_S3_ENDPOINT_URL") or None)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, source: Path) -> None:
        # An S3 PUT is atomic: readers see the old object or the whole new one.
        self.client.upload_file(str(source), self.bucket, self._key(key))

    def open(self, key: str) -> BinaryIO:
        body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        return body

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def locate(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def get_storage(settings: Settings | None = None) -> Storage:
    """The storage the settings name: OUTREACH_STORAGE_URL=s3://bucket/prefix, else the batch folder."""
    settings = settings or get_settings()
    if settings.storage_url:
        url = urlparse(settings.storage_url)
        if url.scheme != "s3":
            raise ValueError(f"OUTREACH_STORAGE_URL must be s3://bucket/prefix, not {settings.storage_url!r}")
        return S3Storage(url.netloc, url.path)
    return LocalStorage(settings.resolved_batch_dir)
