"""Where batch files live: a folder every worker shares (default) or an S3-compatible bucket.

Files are written whole under a temporary name and then moved into place, so a reader (the print shop, the
assembler) never sees half a file, and a task that runs twice simply replaces a file with identical bytes.
A failed write removes its temporary file, and listings never show one. Every failure is a StorageError whose
`kind` (disk_full, read_only, permission, unavailable, other) tells the run's retry logic what to report.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlparse

from outreach.errors import InputError, NotFound, StorageError
from outreach.i18n import _
from outreach.settings import Settings, get_settings

TMP_SUFFIX = ".tmp"
# errno -> StorageError kind; anything else is "other".
ERRNO_KINDS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "permission",
    errno.EPERM: "permission",
}
# S3 error codes -> kind. NoSuchKey / 404 are not errors here: they mean "absent".
S3_CODE_KINDS = {
    "AccessDenied": "permission",
    "403": "permission",
    "Forbidden": "permission",
    "InvalidAccessKeyId": "permission",
    "SignatureDoesNotMatch": "permission",
    "NoSuchBucket": "unavailable",
    "SlowDown": "unavailable",
    "ServiceUnavailable": "unavailable",
    "503": "unavailable",
    "EntityTooLarge": "disk_full",
    "QuotaExceeded": "disk_full",
}
S3_ABSENT_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class Storage(Protocol):
    """The narrow interface batch writing and print-shop downloads need."""

    def put(self, key: str, source: Path) -> None:
        """Stores the local file `source` under `key`, atomically."""

    def open(self, key: str) -> BinaryIO:
        """Opens a stored file for reading; NotFound if it is not stored."""

    def exists(self, key: str) -> bool:
        """Whether `key` is stored (False only when it is absent; other failures raise)."""

    def delete(self, key: str) -> None:
        """Deletes `key` if stored."""

    def list(self, prefix: str) -> list[str]:
        """The keys stored under `prefix` (a folder), sorted; never a temporary file."""

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


def is_temporary(name: str) -> bool:
    """Whether a file name is one of storage's own temporary names (`.letters.pdf.<pid>.tmp`)."""
    base = name.rsplit("/", 1)[-1]
    return base.startswith(".") and base.endswith(TMP_SUFFIX)


def kind_message(kind: str) -> str:
    """What a storage failure of `kind` means, in words a person acts on."""
    return {
        "disk_full": _("the disk is full"),
        "read_only": _("the storage is read-only"),
        "permission": _("no permission to write there"),
        "unavailable": _("the object store cannot be reached"),
    }.get(kind, _("the storage failed"))


def storage_error(exc: BaseException, *, key: str, action: str) -> StorageError:
    """A StorageError for an OSError (or S3 error) met while `action`-ing `key`, with its kind."""
    kind = _kind_of(exc)
    message = _(
        "cannot {action} {key}: {what} ({detail})",
        action=action,
        key=key,
        what=kind_message(kind),
        detail=str(exc) or type(exc).__name__,
    )
    return StorageError(message, kind=kind, key=key)


def _kind_of(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in ERRNO_KINDS:
        return ERRNO_KINDS[exc.errno]
    code = _s3_code(exc)
    if code is not None:
        return S3_CODE_KINDS.get(code, "other")
    name = type(exc).__name__
    if name in (
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
    ):
        return "unavailable"
    cause = exc.__cause__ or exc.__context__
    return _kind_of(cause) if cause is not None and cause is not exc else "other"


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


class LocalStorage:
    """A folder, local or on a shared volume."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The file that holds `key`."""
        return self.root / key

    def put(self, key: str, source: Path) -> None:
        target = self.path(key)
        tmp = target.with_name(f".{target.name}.{os.getpid()}{TMP_SUFFIX}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException as exc:
            # Never leave a half-written temporary file in the print shop's folder (disk full, killed task).
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise storage_error(exc, key=key, action=_("write the file")) from exc
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(_("no stored file {key}", key=key)) from None
        except OSError as exc:
            raise storage_error(exc, key=key, action=_("read the file")) from exc

    def exists(self, key: str) -> bool:
        path = self.path(key)
        try:
            path.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise storage_error(exc, key=key, action=_("read the file")) from exc
        return path.is_file()

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(exc, key=key, action=_("delete the file")) from exc

    def list(self, prefix: str) -> list[str]:
        folder = self.path(prefix.strip("/"))
        if not folder.is_dir():
            return []
        try:
            return sorted(
                path.relative_to(self.root).as_posix()
                for path in _walk(folder)
                if not is_temporary(path.name)
            )
        except OSError as exc:
            raise storage_error(exc, key=prefix, action=_("list the folder")) from exc

    def locate(self, key: str) -> str:
        return str(self.path(key))


def _walk(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Ceph); needs boto3 (the `s3` extra)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_settings(cls, settings: Settings, bucket: str, prefix: str = "") -> S3Storage:
        """A bucket reached with the endpoint, region and credentials the settings name."""
        try:
            import boto3  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError:
            raise InputError(
                _("OUTREACH_STORAGE_URL names an S3 bucket, but boto3 is not installed (the s3 extra)")
            ) from None
        from botocore.config import Config  # type: ignore[import-not-found, import-untyped, unused-ignore]

        client = boto3.client(
            "s3",
            # A few quick retries: a store that stays down is the run's retry-then-stall logic's to report.
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
            ),
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
        )
        return cls(bucket, prefix, client)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, source: Path) -> None:
        # An S3 PUT is atomic: readers see the old object or the whole new one; nothing temporary is left.
        try:
            self.client.upload_file(str(source), self.bucket, self._key(key))
        except Exception as exc:
            raise storage_error(exc, key=self.locate(key), action=_("write the file")) from exc

    def open(self, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as exc:
            if _s3_code(exc) in S3_ABSENT_CODES:
                raise NotFound(_("no stored file {key}", key=self.locate(key))) from None
            raise storage_error(exc, key=self.locate(key), action=_("read the file")) from exc
        return body

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            # Only "not there" means absent; a denied request or a lost connection is an error, not a no.
            if _s3_code(exc) in S3_ABSENT_CODES:
                return False
            raise storage_error(exc, key=self.locate(key), action=_("read the file")) from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise storage_error(exc, key=self.locate(key), action=_("delete the file")) from exc

    def list(self, prefix: str) -> list[str]:
        folder = self._key(prefix.strip("/")) + "/"
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    keys.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        except Exception as exc:
            raise storage_error(exc, key=self.locate(prefix), action=_("list the folder")) from exc
        return sorted(k for k in keys if not is_temporary(k))

    def locate(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def get_storage(settings: Settings | None = None) -> Storage:
    """The storage the settings name: OUTREACH_STORAGE_URL=s3://bucket/prefix, else the batch folder."""
    settings = settings or get_settings()
    if settings.storage_url:
        url = urlparse(settings.storage_url)
        if url.scheme != "s3" or not url.netloc:
            raise InputError(
                _("OUTREACH_STORAGE_URL must be s3://bucket/prefix, not {url}", url=settings.storage_url)
            )
        return S3Storage.from_settings(settings, url.netloc, url.path)
    return LocalStorage(settings.resolved_batch_dir)
