"""Batch-file storage: a local folder and an S3-compatible bucket (moto's server on loopback), atomic puts,
no temporary file left on failure, typed errors by kind, a whole run stored in a bucket and downloaded."""

from __future__ import annotations

import errno
import hashlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.errors import NotFound, StorageError
from outreach.runs import printshop
from outreach.runs import service as runs
from outreach.runs.models import Batch
from outreach.settings import Settings, get_settings
from outreach.spreadsheet import safe_cell, write_csv
from outreach.storage import LocalStorage, S3Storage, get_storage, sha256_of
from tests.runs.world import committed_world
from workers.local import run_locally

KEY = "run-000001/batch-0001/envelopes.pdf"


def test_local_storage_puts_atomically_and_replaces(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "batches")
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4 one")
    storage.put(KEY, src)
    assert storage.exists(KEY)
    src.write_bytes(b"%PDF-1.4 two")
    storage.put(KEY, src)
    with storage.open(KEY) as f:
        assert f.read() == b"%PDF-1.4 two"
    # No temporary file is left beside the real one.
    assert [p.name for p in (tmp_path / "batches/run-000001/batch-0001").iterdir()] == ["envelopes.pdf"]
    with storage.open(KEY) as f:
        assert len(sha256_of(f)) == 64
    storage.delete(KEY)
    assert not storage.exists(KEY)
    with pytest.raises(NotFound):
        storage.open(KEY)


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (errno.ENOSPC, "disk_full", "磁盘已满"),
        (errno.EROFS, "read_only", "只读"),
        (errno.EACCES, "permission", "无权限"),
    ],
)
def test_a_failed_local_write_leaves_no_temporary_file_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, kind: str, words: str
) -> None:
    storage = LocalStorage(tmp_path / "batches")
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4 " + b"x" * 10_000)

    def half_then_fail(source: Path, target: Path) -> None:
        Path(target).write_bytes(Path(source).read_bytes()[:100])  # a half-written temporary file
        raise OSError(code, "simulated")

    monkeypatch.setattr(shutil, "copyfile", half_then_fail)
    with pytest.raises(StorageError) as caught:
        storage.put(KEY, src)
    assert caught.value.kind == kind and caught.value.key == KEY
    assert words in str(caught.value)
    assert list((tmp_path / "batches/run-000001/batch-0001").iterdir()) == []


def test_a_write_interrupted_by_anything_removes_its_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / "batches")
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4")

    def interrupted(source: Path, target: Path) -> None:
        Path(target).write_bytes(b"%PDF")
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        storage.put(KEY, src)
    assert list((tmp_path / "batches/run-000001/batch-0001").iterdir()) == []


def test_listing_never_shows_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "batches")
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4")
    storage.put(KEY, src)
    # What a writer killed by SIGKILL leaves behind: no code of ours ran to remove it.
    (tmp_path / "batches/run-000001/batch-0001/.letters.pdf.4242.tmp").write_bytes(b"%PDF")
    assert storage.list("run-000001") == [KEY]
    assert storage.list("run-000001/batch-0001/") == [KEY]
    assert storage.list("run-000999") == []


def test_exists_says_no_only_for_an_absent_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / "batches")
    assert storage.exists(KEY) is False

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "simulated", str(self))

    monkeypatch.setattr(Path, "stat", denied)
    with pytest.raises(StorageError) as caught:
        storage.exists(KEY)
    assert caught.value.kind == "permission"


def test_safe_cells_neutralise_formulas() -> None:
    assert safe_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert safe_cell("+86 138") == "'+86 138"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-1+2") == "'-1+2"
    assert safe_cell("-12.50") == "-12.50"
    assert safe_cell("王秀英") == "王秀英"
    assert safe_cell(None) == ""


def test_write_csv_is_spreadsheet_safe(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    assert write_csv(path, ["name", "unit"], [["=1+1", "尤溪县纺织厂"]]) == 1
    text = path.read_text(encoding="utf-8-sig")
    assert "'=1+1" in text and "尤溪县纺织厂" in text


# --- S3, for real: moto's S3 server on a loopback port ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto in server mode) on 127.0.0.1, for this module's tests."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _s3_settings(endpoint: str, bucket: str, prefix: str = "batches") -> Settings:
    return Settings(
        storage_url=f"s3://{bucket}/{prefix}",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )


def _bucket(endpoint: str, name: str) -> str:
    storage = get_storage(_s3_settings(endpoint, name))
    assert isinstance(storage, S3Storage)
    storage.client.create_bucket(Bucket=name)
    return name


def test_s3_storage_puts_reads_lists_and_deletes(s3_endpoint: str, tmp_path: Path) -> None:
    storage = get_storage(_s3_settings(s3_endpoint, _bucket(s3_endpoint, "outreach-basic")))
    assert isinstance(storage, S3Storage)
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4 one")
    assert storage.exists(KEY) is False
    storage.put(KEY, src)
    assert storage.exists(KEY) is True
    with storage.open(KEY) as f:
        assert f.read() == b"%PDF-1.4 one"
    assert storage.list("run-000001") == [KEY]
    assert storage.locate(KEY) == f"s3://outreach-basic/batches/{KEY}"
    # Stored under the prefix, as the settings say.
    listed = storage.client.list_objects_v2(Bucket="outreach-basic")["Contents"]
    assert [o["Key"] for o in listed] == [f"batches/{KEY}"]
    storage.delete(KEY)
    assert storage.exists(KEY) is False
    with pytest.raises(NotFound):
        storage.open(KEY)


def test_s3_errors_are_typed_not_swallowed(s3_endpoint: str, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped, unused-ignore]

    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4")
    # A bucket that does not exist: a write fails loudly instead of vanishing.
    missing = get_storage(_s3_settings(s3_endpoint, "no-such-bucket"))
    with pytest.raises(StorageError) as caught:
        missing.put(KEY, src)
    assert caught.value.kind == "unavailable"
    # A store nobody answers at.
    down = get_storage(_s3_settings(f"http://127.0.0.1:{_free_port()}", "outreach-down"))
    with pytest.raises(StorageError) as caught:
        down.exists(KEY)
    assert caught.value.kind == "unavailable"

    class Denied:
        def head_object(self, **kwargs: object) -> None:
            raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    # Access denied is an error, never "not there".
    with pytest.raises(StorageError) as caught:
        S3Storage("outreach", "", Denied()).exists(KEY)
    assert caught.value.kind == "permission" and "无权限" in str(caught.value)


def test_a_whole_run_stores_its_batches_in_the_bucket_and_a_print_shop_downloads_one(
    s3_endpoint: str, committed_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = _bucket(s3_endpoint, "outreach-run")
    for name, value in {
        "OUTREACH_STORAGE_URL": f"s3://{bucket}/prod",
        "OUTREACH_S3_ENDPOINT_URL": s3_endpoint,
        "OUTREACH_S3_REGION": "us-east-1",
        "OUTREACH_S3_ACCESS_KEY_ID": "testing",
        "OUTREACH_S3_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        world = committed_world(committed_engine, women=12, batch_size=5)
        with Session(committed_engine) as session, session.begin():
            campaign = campaigns.get_by_name(session=session, name=world.campaign)
            run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
        local = get_settings().resolved_batch_dir
        before = sorted(local.rglob("*")) if local.exists() else []
        run_locally(run_id)
        storage = get_storage()
        assert isinstance(storage, S3Storage)
        with Session(committed_engine) as session, session.begin():
            batches = session.scalars(select(Batch).where(Batch.run_id == run_id).order_by(Batch.seq)).all()
            assert [b.pieces for b in batches] == [5, 5, 2]
            # Every file each batch records is in the bucket, and nothing else is.
            recorded = sorted(str(m["key"]) for b in batches for m in b.files.values())
            assert storage.list(f"run-{run_id:06d}") == recorded
            assert (sorted(local.rglob("*")) if local.exists() else []) == before  # nothing written locally
            second = batches[1]
            files = printshop.download(
                session=session,
                storage=storage,
                batch_id=second.id,
                dest=tmp_path / "shop",
                print_shop="尤溪县邮政商函印制中心",
            )
            assert sorted(p.name for p in files) == sorted(second.files)
            for path in files:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                assert digest == second.files[path.name]["sha256"]
            assert second.state == "downloaded"
            assert (tmp_path / "shop/envelopes.pdf").read_bytes().startswith(b"%PDF")
    finally:
        get_settings.cache_clear()
