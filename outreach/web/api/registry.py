"""Registry imports over the API: an upload (size-limited, streamed to a temporary file) goes through the
same importer as `outreach registry import`, with the same errors, rejects and guarantees."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from audiences.importer import import_registry
from audiences.models import RegistryImport
from outreach.accounts import audit
from outreach.errors import InputError, NotFound
from outreach.i18n import _
from outreach.settings import get_settings
from outreach.web import idempotency
from outreach.web.dependencies import DbSession, Principal, require

router = APIRouter(prefix="/registry/imports", tags=["registry"])
SAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff]+")
SUFFIXES = (".csv", ".xlsx", ".txt")


class ImportOut(BaseModel):
    """一次名址导入的结果。"""

    id: int = Field(description="导入编号")
    filename: str = Field(description="文件名")
    sha256: str = Field(description="文件的 SHA-256")
    encoding: str | None = Field(description="识别出的编码或格式")
    inserted: int = Field(description="新增职工")
    updated: int = Field(description="更新职工")
    unchanged: int = Field(description="未变职工")
    rejected: int = Field(description="拒收行数（原因见 rejects 文件）")
    units_inserted: int = Field(description="新增单位")
    units_updated: int = Field(description="更新单位")
    started_at: datetime
    finished_at: datetime | None
    rejects_url: str | None = Field(description="拒收行（行号、列、原因）的 CSV 下载地址")


def _rejects_path(import_id: int) -> Path:
    return get_settings().data_dir / "rejects" / f"import-{import_id}.csv"


def _out(row: RegistryImport) -> ImportOut:
    rejects = _rejects_path(row.id)
    return ImportOut(
        id=row.id,
        filename=row.filename,
        sha256=row.sha256,
        encoding=row.encoding,
        inserted=row.inserted,
        updated=row.updated,
        unchanged=row.unchanged,
        rejected=row.rejected,
        units_inserted=row.units_inserted,
        units_updated=row.units_updated,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rejects_url=f"/api/v1/registry/imports/{row.id}/rejects" if rejects.is_file() else None,
    )


def _safe_name(name: str | None) -> str:
    # Only the last part of the client's name, reduced to letters, digits, Chinese, dot, dash: the file is
    # written in our own temporary folder, and the name is what the import record shows.
    base = SAFE_NAME.sub("_", Path(name or "").name).strip("._")[:100] or "registry"
    if not base.lower().endswith(SUFFIXES):
        raise InputError(_("a registry file is a .csv or .xlsx file, not {name}", name=base))
    return base


def _receive(upload: UploadFile, target: Path) -> None:
    limit = get_settings().upload_limit_mb * 1024 * 1024
    written = 0
    with target.open("wb") as out:
        while block := upload.file.read(1 << 20):
            written += len(block)
            if written > limit:
                raise InputError(_("uploads may be at most {mb} MB", mb=limit // (1024 * 1024)))
            out.write(block)


@router.post(
    "",
    response_model=ImportOut,
    status_code=201,
    summary="导入名址文件",
    description=(
        "上传 CSV（UTF-8/GBK/GB18030/Big5）或 XLSX，经与命令行相同的导入程序：新增、更新、逐行说明拒收原因。"
        "strict=true 时有任何拒收行则什么都不导入。可带 Idempotency-Key。"
    ),
)
def create_import(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("registry.import"))],
    file: Annotated[UploadFile, File(description="名址文件")],
    strict: Annotated[bool, Form(description="有拒收行则不导入")] = False,
) -> JSONResponse:
    name = _safe_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="outreach-upload-") as folder:
        path = Path(folder) / name
        _receive(file, path)
        from outreach.storage import sha256_of

        with path.open("rb") as fh:
            digest = sha256_of(fh)

        def run() -> tuple[int, ImportOut]:
            return 201, _import(session, principal, path, strict=strict)

        return idempotency.answer(
            request=request,
            session=session,
            principal=principal,
            body={"file_sha256": digest, "name": name, "strict": strict},
            compute=run,
        )


def _import(session: Session, principal: Principal, path: Path, *, strict: bool) -> ImportOut:
    rejects = path.with_suffix(".rejects.csv")
    summary = import_registry(session=session, path=path, strict=strict, rejects=rejects)
    assert summary.import_id is not None
    if rejects.is_file() and summary.rejected:
        target = _rejects_path(summary.import_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(rejects, target)
    row = session.get(RegistryImport, summary.import_id)
    assert row is not None
    audit.record(
        session=session,
        actor=principal.actor,
        action="registry.import",
        object_type="registry_import",
        object_id=row.id,
        after={
            "sha256": row.sha256,
            "inserted": row.inserted,
            "updated": row.updated,
            "rejected": row.rejected,
        },
        detail=row.filename,
    )
    return _out(row)


@router.get("/{import_id}", response_model=ImportOut, summary="一次导入的结果")
def get_import(
    import_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("registry.read"))]
) -> ImportOut:
    row = session.get(RegistryImport, import_id)
    if row is None:
        raise NotFound(_("no registry import {id}", id=import_id))
    return _out(row)


@router.get("/{import_id}/rejects", summary="拒收行（CSV）", response_class=FileResponse)
def get_rejects(
    import_id: int, session: DbSession, principal: Annotated[Principal, Depends(require("registry.read"))]
) -> FileResponse:
    path = _rejects_path(import_id)
    if session.get(RegistryImport, import_id) is None or not path.is_file():
        raise NotFound(_("registry import {id} has no rejected rows", id=import_id))
    return FileResponse(
        path, media_type="text/csv; charset=utf-8", filename=f"import-{import_id}-rejects.csv"
    )
