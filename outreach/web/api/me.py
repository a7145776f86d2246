"""Who the caller is, and what it may do."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from outreach.accounts import permissions
from outreach.web.dependencies import Principal, current_principal

router = APIRouter(tags=["account"])


class MeOut(BaseModel):
    """当前调用者。"""

    username: str = Field(description="账号")
    display_name: str | None = Field(description="姓名")
    role: str = Field(
        description="角色：admin 管理员 / planner 策划 / approver 审批 / finance 财务 / printshop 印刷厂"
    )
    organisation: str = Field(description="所属单位")
    organisation_kind: str = Field(description="单位类别：union 总工会 / printshop 印刷厂 / merchant 商户")
    via: str = Field(description="认证方式：session 登录会话 / token API 令牌")
    permissions: list[str] = Field(description="该角色拥有的权限")


@router.get("/me", response_model=MeOut, summary="当前账号")
def me(principal: Annotated[Principal, Depends(current_principal)]) -> MeOut:
    return MeOut(
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        organisation=principal.organisation_name,
        organisation_kind=principal.organisation_kind,
        via=principal.via,
        permissions=permissions.permissions_of(principal.role),
    )
