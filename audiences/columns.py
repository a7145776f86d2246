"""Registry columns: their canonical names, the headers (simplified, traditional, English) that mean them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from outreach.errors import ImportFileError
from outreach.i18n import _


@dataclass(frozen=True)
class Column:
    """A registry column: canonical name, the simplified header the template uses, other accepted headers."""

    name: str
    header: str
    aliases: tuple[str, ...]
    about: str
    allowed: str = ""


WORKER_COLUMNS = (
    Column("worker_no", "工号", ("工號", "职工编号", "職工編號"), "工号，可空；有工号时以工号识别职工"),
    Column("name", "姓名", ("职工姓名", "職工姓名"), "职工姓名，必填"),
    Column("gender", "性别", ("性別",), "性别，必填", "女/男（也可写 女性/男性、F/M、female/male）"),
    Column(
        "birth",
        "出生日期",
        ("出生年份", "出生年月日", "birth_year", "birth_date", "birthday"),
        "出生年份或出生日期，可空",
        "1985 或 1985-03-12、1985/3/12、1985年3月12日",
    ),
    Column(
        "category",
        "职工类别",
        ("職工類別", "类别", "類別"),
        "职工类别，可空",
        "公务员/白领/企业职工/教师/医护人员等",
    ),
    Column(
        "mobile",
        "手机号码",
        ("手機號碼", "手机", "手機", "手机号", "手機號"),
        "手机号码，可空",
        "11位，1[3-9]开头；可带+86、空格或横线",
    ),
    Column("home_address", "家庭地址", ("家庭住址",), "家庭地址，可空；填写后信件寄往家庭地址"),
    Column("home_postcode", "家庭邮编", ("家庭郵編",), "家庭邮编，可空", "6位数字"),
    Column("hardship", "困难职工", ("困難職工",), "是否困难职工", "是/否（空为否）"),
    Column("migrant", "外来务工", ("外來務工",), "是否外来务工人员", "是/否（空为否）"),
    Column("consent_sms", "短信同意", ("同意短信",), "是否同意接收短信", "是/否（空为否）"),
    Column("mail_opt_out", "拒收邮件", ("拒收郵件", "拒收信件"), "是否拒收信件", "是/否（空为否）"),
)
UNIT_COLUMNS = (
    Column("unit_name", "单位名称", ("單位名稱", "工作单位", "工作單位"), "单位名称，必填"),
    Column(
        "unit_code",
        "统一社会信用代码",
        ("統一社會信用代碼", "信用代码", "信用代碼", "credit_code"),
        "统一社会信用代码，可空；有代码时以代码识别单位",
        "18位，末位为校验码",
    ),
    Column(
        "unit_kind",
        "单位类型",
        ("單位類型", "单位性质", "單位性質"),
        "单位类型，空为其他",
        "企业/事业单位/机关/学校/其他",
    ),
    Column("industry", "行业", ("行業", "所属行业", "所屬行業"), "行业，可空"),
    Column("township", "乡镇", ("鄉鎮", "所属乡镇", "所屬鄉鎮", "乡镇街道", "鄉鎮街道"), "所在乡镇，可空"),
    Column("unit_address", "单位地址", ("單位地址",), "单位地址，可空"),
    Column("unit_postcode", "单位邮编", ("單位郵編",), "单位邮编，可空", "6位数字"),
)
ALL_COLUMNS = WORKER_COLUMNS + UNIT_COLUMNS
YES_NO_COLUMNS = ("hardship", "migrant", "consent_sms", "mail_opt_out")


def _fold_header(header: str) -> str:
    return "".join(unicodedata.normalize("NFKC", header).split()).lower()


# A refusal lists this many of the headers it found.
MAX_HEADERS_LISTED = 30
# Each column's name -> the header the template gives it, for messages about a column a file lacks.
HEADER_OF = {column.name: column.header for column in ALL_COLUMNS}
_BY_HEADER: dict[str, str] = {}
for _column in ALL_COLUMNS:
    for _alias in (_column.name, _column.header, *_column.aliases):
        _BY_HEADER[_fold_header(_alias)] = _column.name


@dataclass(frozen=True)
class HeaderMap:
    """Which position of a file's header row holds which column, and the headers no column claims."""

    positions: dict[str, int]
    unknown: list[str]
    width: int

    @property
    def has_workers(self) -> bool:
        """Whether the file carries workers (a name column), not only units."""
        return "name" in self.positions


def known_columns(headers: list[str]) -> int:
    """How many cells of a header row name a registry column."""
    return sum(_fold_header(header) in _BY_HEADER for header in headers)


def resolve_headers(headers: list[str], *, where: str) -> HeaderMap:
    """Maps a header row to columns; a column given twice, or no unit name, is an ImportFileError."""
    positions: dict[str, int] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        folded = _fold_header(header)
        if not folded:
            continue
        column = _BY_HEADER.get(folded)
        if column is None:
            unknown.append(header.strip())
            continue
        if column in positions:
            raise ImportFileError(
                _(
                    "{where}: columns {first} ({first_header}) and {second} ({second_header}) both mean "
                    "{column}",
                    where=where,
                    first=positions[column] + 1,
                    first_header=headers[positions[column]].strip(),
                    second=index + 1,
                    second_header=header.strip(),
                    column=HEADER_OF[column],
                )
            )
        positions[column] = index
    if "unit_name" not in positions:
        found = ", ".join(h.strip() for h in headers[:MAX_HEADERS_LISTED] if h.strip())
        if len(headers) > MAX_HEADERS_LISTED:
            found += " …"
        raise ImportFileError(
            _(
                "{where}: the header row has no unit name column (单位名称/單位名稱/unit_name); "
                "headers found: {headers}",
                where=where,
                headers=found or _("none"),
            )
        )
    if "name" not in positions and any(c.name in positions for c in WORKER_COLUMNS):
        raise ImportFileError(
            _("{where}: worker columns are present but the name column (姓名/name) is missing", where=where)
        )
    return HeaderMap(positions=positions, unknown=unknown, width=len(headers))
