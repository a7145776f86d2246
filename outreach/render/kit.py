"""Campaign kits: a folder with `kit.toml`, Jinja2 templates and artwork, loaded and checked in one go."""

from __future__ import annotations

import hashlib
import re
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import KitError
from outreach.render.fonts import FontChain, resolve_chain
from outreach.settings import get_settings

MANIFEST = "kit.toml"
# GB/T 1416 domestic envelope sizes (width x height, mm) and paper sizes.
ENVELOPES: dict[str, tuple[float, float]] = {
    "B6": (176.0, 125.0),
    "DL": (220.0, 110.0),
    "ZL": (230.0, 120.0),
    "C5": (229.0, 162.0),
    "C4": (324.0, 229.0),
}
PAPERS: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A5": (148.0, 210.0), "B5": (176.0, 250.0)}
# Per-piece template variables; a block using none of them is static and drawn once per file.
PIECE_VARS = frozenset(
    {
        "name",
        "honorific",
        "unit_name",
        "address",
        "postcode",
        "township",
        "number",
        "seq",
        "mobile",
        "recipient",
    }
)
ELEMENT_KINDS = ("image", "text", "rect", "ellipse", "line", "number")
IGNORED_FILES = ("__pycache__", ".pyc", ".DS_Store")


@dataclass(frozen=True, slots=True, eq=False)
class Element:
    """One thing placed on a page: artwork, a text block, a shape, or the piece-number barcode."""

    kind: str
    where: str  # "kit.toml line 42 (envelope.front item 3)"
    x: float
    y: float
    w: float
    h: float
    file: Path | None = None
    template: Template | None = None
    template_file: str | None = None
    variable: bool = False
    font: str = "sans"
    size: float = 10.0
    leading: float = 1.5
    colour: str = "black"
    align: str = "left"
    markup: bool = False
    indent: bool = False
    heading_font: str | None = None
    heading_colour: str | None = None
    heading_scale: float = 1.3
    fit: str = "none"  # none | shrink
    min_size: float = 6.0
    fill: str | None = None
    stroke: str | None = None
    line_width: float = 0.5
    radius: float = 0.0


@dataclass(frozen=True, slots=True, eq=False)
class Kit:
    """A loaded, checked campaign kit."""

    name: str
    path: Path
    channel: Literal["letter", "sms"]
    digest: str
    title: str
    env: SandboxedEnvironment
    variables: Mapping[str, object]
    envelope_size: str = "DL"
    envelope_mm: tuple[float, float] = ENVELOPES["DL"]
    flap_depth: float = 0.0
    paper: str = "A4"
    paper_mm: tuple[float, float] = PAPERS["A4"]
    sender: Mapping[str, str] = field(default_factory=dict)
    postage: tuple[str, ...] = ()
    colours: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)
    fonts: Mapping[str, FontChain] = field(default_factory=dict)
    front: tuple[Element, ...] = ()
    back: tuple[Element, ...] = ()
    flap: tuple[Element, ...] = ()
    pages: tuple[tuple[Element, ...], ...] = ()
    sms_signature: str = ""
    sms_max_length: int = 0
    sms_template: Template | None = None
    sms_where: str = ""

    @property
    def letter_pages(self) -> int:
        """Letter pages per piece."""
        return len(self.pages)

    @property
    def envelope_pages(self) -> int:
        """Envelope pages per piece (front, and back with flap)."""
        return 2 if self.channel == "letter" else 0


def kits_dir() -> Path:
    """The folder of the kits shipped with Outreach."""
    return Path(__file__).resolve().parents[2] / "templates"


def kit_digest(path: Path) -> str:
    """sha256 over the kit's relative file names and contents, in a stable order."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part in rel for part in IGNORED_FILES):
            continue
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def _header_lines(text: str) -> dict[str, list[int]]:
    """Table-array header name -> the line numbers of its occurrences, so errors can name a line."""
    found: dict[str, list[int]] = {}
    for no, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"\s*\[\[\s*([\w.]+)\s*\]\]", line)
        if m:
            found.setdefault(m.group(1), []).append(no)
    return found


def template_error(kit: str, exc: BaseException, *, template_file: str) -> KitError:
    """A KitError naming kit, file and line for an exception raised while compiling or running a template."""
    line: int | None = None
    if isinstance(exc, TemplateSyntaxError):
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == template_file:
                line = frame.lineno
    at = f", line {line}" if line else ""
    msg = getattr(exc, "message", None) or str(exc)
    return KitError(f"kit {kit}: {template_file}{at}: {type(exc).__name__}: {msg}")


class _Loader:
    """Builds a Kit from a parsed manifest, collecting the location of every element for errors."""

    def __init__(self, path: Path, raw: str, data: dict[str, Any]) -> None:
        self.path = path
        self.name = path.name
        self.data = data
        self.headers = _header_lines(raw)
        self.env = SandboxedEnvironment(
            undefined=StrictUndefined,
            loader=FileSystemLoader(str(path)),
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def fail(self, where: str, msg: str) -> KitError:
        return KitError(f"kit {self.name}: {where}: {msg}")

    def compile(self, source: str, filename: str) -> tuple[Template, bool]:
        """Compiles a template; returns it and whether it uses per-piece variables."""
        try:
            ast = self.env.parse(source, filename=filename)
            code = self.env.compile(ast, filename=filename)
        except TemplateSyntaxError as exc:
            raise template_error(self.name, exc, template_file=filename) from exc
        used = meta.find_undeclared_variables(ast)
        # Templates pulled in by {% include %} are not analysed; treat them as per piece to be safe.
        refs = list(meta.find_referenced_templates(ast))
        template = self.env.template_class.from_code(self.env, code, self.env.make_globals(None))
        return template, bool(used & PIECE_VARS) or bool(refs)

    def element(self, table: str, index: int, raw: Mapping[str, Any]) -> Element:
        lines = self.headers.get(table, [])
        line = f" line {lines[index]}" if index < len(lines) else ""
        where = f"{MANIFEST}{line} ({table} item {index + 1})"
        kind = raw.get("kind")
        if kind not in ELEMENT_KINDS:
            raise self.fail(where, f"kind must be one of {', '.join(ELEMENT_KINDS)}, not {kind!r}")
        known = set(Element.__slots__) | {"text", "template"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(unknown)}")
        try:
            box = {k: float(raw[k]) for k in ("x", "y", "w", "h")}
        except KeyError as exc:
            raise self.fail(where, f"missing {exc.args[0]!r} (position and size in mm)") from exc
        except (TypeError, ValueError) as exc:
            raise self.fail(where, f"x, y, w, h must be numbers in mm ({exc})") from exc
        if box["w"] <= 0 or box["h"] <= 0:
            raise self.fail(where, "w and h must be positive")
        opts: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("kind", "text", "template", "file")}
        opts.update(box)
        file = None
        if "file" in raw:
            file = self.path / str(raw["file"])
            if not file.is_file():
                raise self.fail(where, f"artwork {raw['file']!r} not found in the kit")
        template = None
        template_file = None
        variable = False
        if kind == "text":
            if "template" in raw:
                template_file = str(raw["template"])
                src_path = self.path / template_file
                if not src_path.is_file():
                    raise self.fail(where, f"template {template_file!r} not found in the kit")
                source = src_path.read_text(encoding="utf-8")
            elif "text" in raw:
                template_file = f"{MANIFEST}:{table}[{index + 1}]"
                source = str(raw["text"])
            else:
                raise self.fail(where, "a text block needs `text` or `template`")
            template, variable = self.compile(source, template_file)
        for colour_key in ("colour", "fill", "stroke", "heading_colour"):
            value = opts.get(colour_key)
            if value is not None and value not in self.colours:
                raise self.fail(where, f"{colour_key} {value!r} is not in [colours]")
        for font_key in ("font", "heading_font"):
            value = opts.get(font_key)
            if value is not None and value not in self.fonts:
                raise self.fail(where, f"{font_key} {value!r} is not in [fonts]")
        if kind == "number":
            variable = True
        try:
            return Element(
                kind=kind,
                where=where,
                file=file,
                template=template,
                template_file=template_file,
                variable=variable,
                **opts,
            )
        except TypeError as exc:
            raise self.fail(where, str(exc)) from exc

    def elements(self, table: str, items: Any) -> tuple[Element, ...]:
        if items is None:
            return ()
        if not isinstance(items, list):
            raise self.fail(MANIFEST, f"{table} must be a list of [[{table}]] tables")
        return tuple(self.element(table, i, raw) for i, raw in enumerate(items))

    def load(self) -> Kit:
        data = self.data
        channel = data.get("channel", "letter")
        if channel not in ("letter", "sms"):
            raise self.fail(MANIFEST, f"channel must be 'letter' or 'sms', not {channel!r}")
        colours: dict[str, tuple[float, float, float, float]] = {
            "black": (0, 0, 0, 100),
            "white": (0, 0, 0, 0),
        }
        for key, value in dict(data.get("colours", {})).items():
            if not (isinstance(value, list) and len(value) == 4 and all(0 <= float(v) <= 100 for v in value)):
                raise self.fail(f"{MANIFEST} [colours]", f"{key} must be CMYK percentages [c, m, y, k]")
            c, m, y, k = (float(v) for v in value)
            colours[key] = (c, m, y, k)
        colours.setdefault("postcode", (0, 100, 100, 0))
        self.colours = colours
        settings = get_settings()
        font_names = dict(data.get("fonts", {}))
        font_names.setdefault("sans", ["wqy-microhei"])
        self.fonts = {
            role: resolve_chain(
                role,
                [names] if isinstance(names, str) else list(names),
                settings_fonts=settings.fonts,
                kit_dir=self.path,
            )
            for role, names in font_names.items()
        }
        variables = dict(data.get("variables", {}))
        common: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "channel": channel,
            "digest": kit_digest(self.path),
            "title": str(data.get("title", self.name)),
            "env": self.env,
            "variables": variables,
            "colours": colours,
            "fonts": self.fonts,
        }
        if channel == "sms":
            sms = dict(data.get("sms", {}))
            for key in ("signature", "template", "max_length"):
                if key not in sms:
                    raise self.fail(f"{MANIFEST} [sms]", f"missing {key!r}")
            tfile = str(sms["template"])
            if not (self.path / tfile).is_file():
                raise self.fail(f"{MANIFEST} [sms]", f"template {tfile!r} not found in the kit")
            template, _ = self.compile((self.path / tfile).read_text(encoding="utf-8"), tfile)
            return Kit(
                **common,
                sms_signature=str(sms["signature"]),
                sms_max_length=int(sms["max_length"]),
                sms_template=template,
                sms_where=tfile,
            )
        envelope = dict(data.get("envelope", {}))
        size = str(envelope.get("size", "DL")).upper()
        if size not in ENVELOPES:
            raise self.fail(f"{MANIFEST} [envelope]", f"size {size!r} is not one of {', '.join(ENVELOPES)}")
        letter = dict(data.get("letter", {}))
        paper = str(letter.get("paper", "A4")).upper()
        if paper not in PAPERS:
            raise self.fail(f"{MANIFEST} [letter]", f"paper {paper!r} is not one of {', '.join(PAPERS)}")
        sender = {k: str(v) for k, v in dict(data.get("sender", {})).items()}
        for key in ("name", "address", "postcode"):
            if not sender.get(key):
                raise self.fail(f"{MANIFEST} [sender]", f"missing {key!r}")
        if not re.fullmatch(r"\d{6}", sender["postcode"]):
            raise self.fail(f"{MANIFEST} [sender]", f"postcode {sender['postcode']!r} is not 6 digits")
        postage = tuple(str(s) for s in dict(data.get("postage", {})).get("lines", ["商 函", "邮资已付"]))
        pages = letter.get("page", [])
        if not pages:
            raise self.fail(f"{MANIFEST} [letter]", "a letter kit needs at least one [[letter.page]]")
        return Kit(
            **common,
            envelope_size=size,
            envelope_mm=ENVELOPES[size],
            flap_depth=float(envelope.get("flap_depth", 35.0)),
            paper=paper,
            paper_mm=PAPERS[paper],
            sender=sender,
            postage=postage,
            front=self.elements("envelope.front", envelope.get("front")),
            back=self.elements("envelope.back", envelope.get("back")),
            flap=self.elements("envelope.flap", envelope.get("flap")),
            pages=tuple(self._page_items(i, page) for i, page in enumerate(pages)),
        )

    def _page_items(self, page_index: int, page: Mapping[str, Any]) -> tuple[Element, ...]:
        # Header lines of later pages' items follow those of earlier pages in the same list.
        items = page.get("items") or []
        offset = sum(len(p.get("items") or []) for p in self.data["letter"]["page"][:page_index])
        lines = self.headers.get("letter.page.items", [])
        saved = self.headers.get("letter.page.items")
        self.headers["letter.page.items"] = lines[offset:]
        try:
            return self.elements("letter.page.items", items)
        finally:
            if saved is not None:
                self.headers["letter.page.items"] = saved


def resolve_kit_path(kit: str | Path) -> Path:
    """A kit name in templates/ or a folder path -> the kit folder."""
    candidate = Path(kit)
    if candidate.is_dir():
        return candidate.resolve()
    shipped = kits_dir() / str(kit)
    if shipped.is_dir():
        return shipped
    known = sorted(p.name for p in kits_dir().iterdir() if (p / MANIFEST).is_file())
    raise KitError(f"kit {kit!s}: no such kit folder (shipped kits: {', '.join(known)})")


def load_kit_cached(kit: str | Path) -> Kit:
    """load_kit once per process for the same files; a kit whose files changed is loaded and checked anew."""
    path = resolve_kit_path(kit)
    return _load_kit_version(path, kit_digest(path))


@lru_cache(maxsize=16)
def _load_kit_version(path: Path, digest: str) -> Kit:
    return load_kit(path)


def load_kit(kit: str | Path) -> Kit:
    """Loads a kit by name or folder and checks it all now: manifest, fonts, artwork, templates, layout."""
    path = resolve_kit_path(kit)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise KitError(f"kit {path.name}: {MANIFEST} not found in {path}")
    raw = manifest.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise KitError(f"kit {path.name}: {MANIFEST}: {exc}") from exc
    loaded = _Loader(path, raw, data).load()
    from outreach.render.preflight import preflight

    preflight(loaded)
    return loaded
