"""A synthetic registry of a county like 尤溪县, for demos, tests and benchmarks; streamed to CSV or XLSX."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from stdnum.cn import uscc

from audiences.columns import ALL_COLUMNS
from outreach.errors import InputError
from outreach.i18n import _
from outreach.periods import local_date

COUNTY = "尤溪县"
COUNTY_CODE = "350426"  # 尤溪县's administrative division code, the 3rd-8th characters of a local credit code
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "big5")
WORKERS_PER_UNIT = 20
# (township, postcode, villages or streets)
TOWNSHIPS = (
    ("城关镇", "365100", ("水南路", "沈郎路", "紫阳大道", "开山路", "城西路", "解放路", "滨江路", "工业路")),
    ("梅仙镇", "365101", ("坪寨村", "通仙村", "半山村", "梅营村")),
    ("西滨镇", "365102", ("西滨村", "彩洋村", "溪滨村", "高地村")),
    ("洋中镇", "365103", ("洋中村", "后楼村", "桂峰村", "东坑村")),
    ("新阳镇", "365104", ("新阳村", "池田村", "龙上村", "双鲤村")),
    ("管前镇", "365105", ("管前村", "建设村", "文井村", "鸭墓村")),
    ("西城镇", "365106", ("西城村", "麻洋村", "玉池村", "大布村")),
    ("尤溪口镇", "365107", ("尤溪口村", "仙峰村", "渡头村", "坑头村")),
    ("坂面镇", "365108", ("坂面村", "京口村", "上地村", "高才村")),
    ("联合镇", "365109", ("联合村", "东边村", "连云村", "云山村")),
    ("汤川乡", "365110", ("汤川村", "溪坪村", "光明村", "汤三村")),
    ("溪尾乡", "365111", ("溪尾村", "埔宁村", "纪洋村", "上洋村")),
    ("中仙镇", "365112", ("中仙村", "西华村", "善邻村", "龙门村")),
    ("台溪乡", "365113", ("台溪村", "书京村", "盖竹村", "福长村")),
    ("八字桥乡", "365114", ("八字桥村", "坪头村", "际头村", "后坪村")),
)
SURNAMES = (
    "林陈黄张李王刘吴郑杨叶许蔡谢罗周徐肖邱詹苏朱何胡郭高梁宋唐韩冯邓曹彭曾田董潘蒋余杜程魏丁沈卢江"
    "赖廖钟范范傅严颜柯洪翁"
)
FEMALE_CHARS = "芳丽娟敏静秀英华慧巧美娜玲燕霞红梅琳婷雪倩颖琴云莉兰凤洁萍艳丹晶欣怡佳蓉月莹春桂"
MALE_CHARS = "伟强磊军洋勇杰涛明超斌辉刚平鹏华飞鑫波宇浩凯健俊帆旭宁龙林峰建国文志海东亮晨荣清"
BRANDS = (
    "华兴",
    "宏达",
    "鑫源",
    "金山",
    "闽中",
    "朱子",
    "新兴",
    "恒丰",
    "永泰",
    "顺昌",
    "天成",
    "利民",
    "兴业",
    "富源",
    "鸿运",
    "盛达",
    "佳美",
    "嘉禾",
    "汇丰",
    "万家",
    "联发",
    "信诚",
    "博远",
    "长青",
    "青山",
    "绿源",
    "福林",
    "瑞丰",
    "德丰",
    "泰和",
    "广源",
    "正大",
    "大田",
    "双龙",
    "紫阳",
    "南方",
    "东升",
    "福泉",
    "安达",
    "建兴",
)
INDUSTRIES = (
    ("纺织", "纺织业"),
    ("竹木制品", "木材加工"),
    ("食品", "食品制造"),
    ("茶业", "农业"),
    ("机械", "机械制造"),
    ("建材", "建筑材料"),
    ("水电", "电力"),
    ("矿业", "采矿业"),
    ("化工", "化学工业"),
    ("物流", "交通运输"),
    ("商贸", "批发零售"),
    ("建筑工程", "建筑业"),
    ("电子", "电子制造"),
    ("服装", "服装制造"),
    ("纸业", "造纸业"),
    ("医药", "医药制造"),
    ("酒店管理", "住宿餐饮"),
    ("农业开发", "农业"),
    ("汽车运输", "交通运输"),
    ("笋业", "食品制造"),
)
COMPANY_FORMS = ("有限公司", "有限公司", "有限责任公司", "股份有限公司")
BUREAUS = (
    "人民政府办公室",
    "教育局",
    "财政局",
    "公安局",
    "人力资源和社会保障局",
    "自然资源局",
    "住房和城乡建设局",
    "交通运输局",
    "农业农村局",
    "水利局",
    "商务局",
    "文化体育和旅游局",
    "卫生健康局",
    "市场监督管理局",
    "统计局",
    "林业局",
    "医疗保障局",
    "应急管理局",
    "民政局",
    "司法局",
    "审计局",
    "税务局",
    "总工会",
    "人民法院",
    "人民检察院",
)
INSTITUTIONS = (
    ("人民医院", "卫生"),
    ("中医院", "卫生"),
    ("妇幼保健院", "卫生"),
    ("疾病预防控制中心", "卫生"),
    ("广播电视台", "文化传媒"),
    ("图书馆", "文化"),
    ("文化馆", "文化"),
    ("博物馆", "文化"),
    ("气象局", "气象"),
    ("水文站", "水利"),
    ("不动产登记中心", "公共管理"),
    ("公共资源交易中心", "公共管理"),
)
TOWNSHIP_INSTITUTIONS = (("卫生院", "卫生"), ("农业服务中心", "农业"), ("文化站", "文化"), ("林业站", "林业"))
SCHOOLS = (
    "第一中学",
    "第二中学",
    "第三中学",
    "第四中学",
    "第五中学",
    "第六中学",
    "第七中学",
    "实验小学",
    "第二实验小学",
    "城关小学",
    "职业中专学校",
    "特殊教育学校",
    "实验幼儿园",
    "城关幼儿园",
)
TOWNSHIP_SCHOOLS = ("中心小学", "中学", "中心幼儿园")
OTHERS = ("农民专业合作社", "个体劳动者协会", "茶叶协会", "竹业协会", "物业服务中心")
KIND_WEIGHTS = (("企业", 60), ("事业单位", 14), ("机关", 10), ("学校", 11), ("其他", 5))
# Registration authority + organisation type, the first two characters of a credit code.
CREDIT_PREFIX = {"企业": "91", "事业单位": "12", "机关": "11", "学校": "12", "其他": "93"}
CATEGORY_BY_KIND = {
    "企业": (("企业职工", 80), ("白领", 20)),
    "事业单位": (("白领", 60), ("医护人员", 40)),
    "机关": (("公务员", 90), ("白领", 10)),
    "学校": (("教师", 85), ("白领", 15)),
    "其他": (("企业职工", 60), ("白领", 40)),
}
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)
MALFORMED_KINDS = (
    "home_postcode_5_digits",
    "mobile_12_digits",
    "mobile_starts_2",
    "credit_code_check_digit",
    "unknown_gender",
    "name_missing",
    "unit_name_missing",
    "birth_not_a_date",
    "flag_not_yes_no",
)
_ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Simplified characters of this generator's vocabulary that Big5 lacks, and their traditional forms.
_TRADITIONAL = str.maketrans(
    "号别类机码庭编难职来务单统社会信代型业乡镇县关滨阳层宁门桥汤园场东书长丽娟敏静红凤洁艳丹刚鹏飞鑫涛浩凯"
    "帅龙峰国亮荣兴达源闽丰顺盛佳汇万联发诚远长绿广双南泰纺织竹制品机电矿贸筑汽运输笋医药农开贸实验"
    "业厅费钟赖廖许郑叶苏杨黄刘吴陈罗谢邓蒋刘韩冯邱詹颜严傅柯洪翁卢肖杜程魏沈江梁宋唐曹彭曾田董潘"
    "员护领师农纸酒店管总审计应急险统资产记资产卫妇疾预控广电视图书馆学幼儿专协会个劳动者茶叶业服"
    "伟传兰军办华坂头张强恒检楼疗监盖称税纪组莹营装设财责车辉边连邮邻际颖饮鲤鸭鸿",
    "號別類機碼庭編難職來務單統社會信代型業鄉鎮縣關濱陽層寧門橋湯園場東書長麗娟敏靜紅鳳潔艷丹剛鵬飛鑫濤浩凱"
    "帥龍峰國亮榮興達源閩豐順盛佳匯萬聯發誠遠長綠廣雙南泰紡織竹製品機電礦貿築汽運輸筍醫藥農開貿實驗"
    "業廳費鍾賴廖許鄭葉蘇楊黃劉吳陳羅謝鄧蔣劉韓馮邱詹顏嚴傅柯洪翁盧肖杜程魏沈江梁宋唐曹彭曾田董潘"
    "員護領師農紙酒店管總審計應急險統資產記資產衛婦疾預控廣電視圖書館學幼兒專協會個勞動者茶葉業服"
    "偉傳蘭軍辦華阪頭張強恆檢樓療監蓋稱稅紀組瑩營裝設財責車輝邊連郵鄰際穎飲鯉鴨鴻",
)


@dataclass(frozen=True)
class SampleUnit:
    """A generated work unit."""

    name: str
    credit_code: str
    kind: str
    industry: str
    township: str
    address: str
    postcode: str


@dataclass(frozen=True)
class SampleStats:
    """What a sample file holds."""

    path: Path
    workers: int
    units: int
    malformed: int
    encoding: str | None


def org_check_digit(code8: str) -> str:
    """The check character of a 9-character organisation code (GB 11714)."""
    # Digits count as themselves, letters A=10 ... Z=35.
    total = sum(int(c, 36) * w for c, w in zip(code8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def credit_code(rng: random.Random, kind: str) -> str:
    """A valid unified social credit code of a unit registered in 尤溪县."""
    while True:
        body = "".join(rng.choice("0123456789") for _ in range(8))
        org = body + org_check_digit(body)
        base = CREDIT_PREFIX[kind] + COUNTY_CODE + org
        check = str(uscc.calc_check_digit(base))
        if check in _ORG_ALPHABET:
            return base + check


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _unit_name(rng: random.Random, kind: str, township: str) -> tuple[str, str]:
    """A plausible name of a unit of `kind` in `township`, and its industry."""
    short = township[:-1]
    if kind == "企业":
        word, industry = rng.choice(INDUSTRIES)
        place = rng.choice(("", "", short, "福建"))
        prefix = "福建" if place == "福建" else COUNTY + place
        return f"{prefix}{rng.choice(BRANDS)}{word}{rng.choice(COMPANY_FORMS)}", industry
    if kind == "事业单位":
        if rng.random() < 0.4:
            what, industry = rng.choice(INSTITUTIONS)
            return f"{COUNTY}{what}", industry
        what, industry = rng.choice(TOWNSHIP_INSTITUTIONS)
        return f"{COUNTY}{township}{what}", industry
    if kind == "机关":
        return (
            f"{COUNTY}{rng.choice(BUREAUS)}" if rng.random() < 0.5 else f"{COUNTY}{township}人民政府"
        ), "公共管理"
    if kind == "学校":
        if rng.random() < 0.3:
            return f"{COUNTY}{rng.choice(SCHOOLS)}", "教育"
        return f"{COUNTY}{township}{rng.choice(TOWNSHIP_SCHOOLS)}", "教育"
    return f"{COUNTY}{short}{rng.choice(BRANDS)}{rng.choice(OTHERS)}", "社会组织"


def generate_units(rng: random.Random, count: int) -> list[SampleUnit]:
    """`count` units of every kind with distinct names spread over the townships."""
    units: list[SampleUnit] = []
    names: set[str] = set()
    codes: set[str] = {""}
    for _unit in range(count):
        kind = _pick(rng, KIND_WEIGHTS)
        township, postcode, places = rng.choice(TOWNSHIPS)
        for _attempt in range(5):
            name, industry = _unit_name(rng, kind, township)
            if name not in names:
                break
        else:
            # A county has one 第一中学; a registry bigger than its pools of such names gets more enterprises,
            # and enterprises sharing a name are branches (分公司) as in real registers.
            kind = "企业"
            name, industry = _unit_name(rng, kind, township)
            base, branch = name, 2
            while name in names:
                name, branch = f"{base}第{branch}分公司", branch + 1
        names.add(name)
        address = f"{COUNTY}{township}{rng.choice(places)}{rng.randint(1, 300)}号"
        code = credit_code(rng, kind) if kind != "其他" or rng.random() < 0.7 else ""
        while code in codes and code:
            # A credit code identifies one unit; a repeat (rare, but certain among 50,000) is drawn again.
            code = credit_code(rng, kind)
        codes.add(code)
        units.append(SampleUnit(name, code, kind, industry, township, address, postcode))
    return units


def _person_name(rng: random.Random, female: bool) -> str:
    chars = FEMALE_CHARS if female else MALE_CHARS
    given = rng.choice(chars) if rng.random() < 0.35 else rng.choice(chars) + rng.choice(chars)
    return rng.choice(SURNAMES) + given


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"


def _yes(value: bool) -> str:
    return "是" if value else "否"


def header_row(*, traditional: bool = False) -> list[str]:
    """The sample's header row, simplified or (for Big5) traditional."""
    headers = [c.header for c in ALL_COLUMNS]
    return [h.translate(_TRADITIONAL) for h in headers] if traditional else headers


def _worker_row(rng: random.Random, unit: SampleUnit, number: int, as_of: date) -> list[str]:
    female = rng.random() < 0.5
    name = _person_name(rng, female)
    gender = (
        ("女" if female else "男")
        if rng.random() < 0.97
        else rng.choice(("女性", "F") if female else ("男性", "M"))
    )
    born = as_of - timedelta(days=rng.randint(18 * 365 + 5, 65 * 365 - 5))
    birth = born.isoformat() if rng.random() < 0.8 else str(born.year)
    category = _pick(rng, CATEGORY_BY_KIND[unit.kind])
    worker_no = f"YX{number:07d}" if rng.random() < 0.85 else ""
    has_mobile = not worker_no or rng.random() < 0.95
    mobile = _mobile(rng) if has_mobile else ""
    if mobile and rng.random() < 0.03:
        mobile = f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    home_address = home_postcode = ""
    if rng.random() < 0.15:
        township, postcode, places = rng.choice(TOWNSHIPS)
        home_address = f"{COUNTY}{township}{rng.choice(places)}{rng.randint(1, 200)}号"
        home_postcode = postcode
    hardship = rng.random() < 0.04
    migrant = rng.random() < (0.15 if unit.kind == "企业" else 0.02)
    consent = has_mobile and rng.random() < 0.85
    opt_out = rng.random() < 0.02
    return [
        worker_no, name, gender, birth, category, mobile, home_address, home_postcode,
        _yes(hardship), _yes(migrant), _yes(consent), _yes(opt_out),
        unit.name, unit.credit_code, unit.kind, unit.industry, unit.township, unit.address, unit.postcode,
    ]  # fmt: skip


def _malform(row: list[str], kind: str, position: int) -> list[str]:
    """The row with one value broken in the way `kind` names; numbered YX9... so that it is easy to find."""
    bad = list(row)
    bad[0] = f"YX{9_000_000 + position:07d}"
    index = {c.name: i for i, c in enumerate(ALL_COLUMNS)}
    if kind == "home_postcode_5_digits":
        bad[index["home_postcode"]] = "36510"
    elif kind == "mobile_12_digits":
        bad[index["mobile"]] = "138123456789"
    elif kind == "mobile_starts_2":
        bad[index["mobile"]] = "23812345678"
    elif kind == "credit_code_check_digit":
        code = row[index["unit_code"]] or "91350426MA2Y1234A"
        bad[index["unit_code"]] = code[:-1] + ("1" if code[-1] != "1" else "2")
    elif kind == "unknown_gender":
        bad[index["gender"]] = "未知"
    elif kind == "name_missing":
        bad[index["name"]] = ""
    elif kind == "unit_name_missing":
        bad[index["unit_name"]] = ""
    elif kind == "birth_not_a_date":
        bad[index["birth"]] = "1985-13-40"
    else:
        bad[index["hardship"]] = "也许"
    return bad


def sample_rows(
    *, workers: int, seed: int, malformed: int = 0, as_of: date | None = None
) -> Iterator[list[str]]:
    """The data rows of a sample registry, grouped by unit; deterministic for a seed (and `as_of` date)."""
    rng = random.Random(seed)
    as_of = as_of or local_date()
    unit_count = max(1, min(workers, round(workers / WORKERS_PER_UNIT))) if workers else 0
    units = generate_units(rng, unit_count)
    # Enterprises and schools are bigger than a township office; sizes are drawn, then scaled to `workers`.
    weights = [rng.lognormvariate(0, 0.8) * (2.0 if u.kind in ("企业", "学校") else 1.0) for u in units]
    total = sum(weights)
    sizes = [max(1, int(workers * w / total)) for w in weights]
    excess = sum(sizes) - workers
    order = sorted(range(len(units)), key=lambda i: -sizes[i])
    step = 0
    while excess != 0 and order:
        i = order[step % len(order)]
        if excess > 0 and sizes[i] > 1:
            sizes[i] -= 1
            excess -= 1
        elif excess < 0:
            sizes[i] += 1
            excess += 1
        step += 1
    bad_at = sorted(rng.sample(range(workers + malformed), malformed)) if malformed else []
    position = number = 0
    for unit, size in zip(units, sizes, strict=True):
        for _worker in range(size):
            while bad_at and bad_at[0] == position:
                kind = MALFORMED_KINDS[(len(bad_at) - 1) % len(MALFORMED_KINDS)]
                bad_at.pop(0)
                yield _malform(_worker_row(rng, unit, 0, as_of), kind, position)
                position += 1
            number += 1
            yield _worker_row(rng, unit, number, as_of)
            position += 1
    while bad_at:
        bad_at.pop(0)
        kind = MALFORMED_KINDS[len(bad_at) % len(MALFORMED_KINDS)]
        yield _malform(_worker_row(rng, units[0], 0, as_of), kind, position)
        position += 1


def write_sample(
    path: Path,
    *,
    workers: int,
    seed: int,
    malformed: int = 0,
    encoding: str = "utf-8",
    as_of: date | None = None,
) -> SampleStats:
    """Writes a sample registry to `path` (.csv in `encoding`, or .xlsx), streaming row by row."""
    if workers < 0 or malformed < 0:
        raise InputError(_("--size and --malformed must not be negative"))
    if encoding not in ENCODINGS:
        raise InputError(
            _(
                "encoding '{encoding}' is not one of {choices}",
                encoding=encoding,
                choices=", ".join(ENCODINGS),
            )
        )
    suffix = path.suffix.lower()
    traditional = encoding == "big5"
    rows = sample_rows(workers=workers, seed=seed, malformed=malformed, as_of=as_of)
    units = max(1, min(workers, round(workers / WORKERS_PER_UNIT))) if workers else 0
    if suffix == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("职工名册")
        sheet.append(header_row())
        for row in rows:
            sheet.append(row)
        book.save(path)
        return SampleStats(path=path, workers=workers, units=units, malformed=malformed, encoding=None)
    if suffix != ".csv":
        raise InputError(
            _("{file}: the sample is written as .csv or .xlsx, not '{suffix}'", file=path.name, suffix=suffix)
        )
    with path.open("w", encoding=encoding, errors="strict", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header_row(traditional=traditional))
        for row in rows:
            writer.writerow([c.translate(_TRADITIONAL) for c in row] if traditional else row)
    return SampleStats(path=path, workers=workers, units=units, malformed=malformed, encoding=encoding)
