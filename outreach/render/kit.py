"""Campaign kits: a folder with `kit.toml`, Jinja2 templates and artwork, loaded and checked in one go.

What the installation adds to every kit (fonts tried first, the union's own details, the SMS opt-out text)
comes in as `KitOptions` from the caller: the renderer never reads settings. Templates run in the bounded
sandbox of outreach.render.sandbox; every file a kit names must lie inside the kit folder."""

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

from jinja2 import Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from outreach.errors import KitError
from outreach.i18n import _
from outreach.render.fonts import FontChain, resolve_chain
from outreach.render.sandbox import KitEnvironment, render
from outreach.settings import DEFAULT_SMS_OPT_OUT, Settings, UnionProfile

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
        "code",
    }
)
# "qr": the piece's redemption code as a QR code (outreach.offers), beside the piece number's barcode.
ELEMENT_KINDS = ("image", "text", "rect", "ellipse", "line", "number", "qr")
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


@dataclass(frozen=True, slots=True)
class KitOptions:
    """What this installation adds to every kit; the caller passes it (the renderer reads no settings).

    fonts: tried first, before the kit's own (OUTREACH_FONTS); union: the union's own details, which fill
    every kit's sender block, signature and hotline (OUTREACH_UNION__*); sms_opt_out: appended to every SMS.
    """

    fonts: tuple[Path, ...] = ()
    union: UnionProfile = field(default_factory=UnionProfile)
    sms_opt_out: str = DEFAULT_SMS_OPT_OUT

    @classmethod
    def from_settings(cls, settings: Settings) -> KitOptions:
        """The options of an installation's settings object (the caller's, passed in)."""
        return cls(fonts=tuple(settings.fonts), union=settings.union, sms_opt_out=settings.sms_opt_out_text)


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
    sms_opt_out: str = DEFAULT_SMS_OPT_OUT
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


def _within(root: Path, path: Path) -> bool:
    """True when path (symlinks followed) lies inside root."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def kit_digest(path: Path) -> str:
    """sha256 over the kit's relative file names and contents, in a stable order.

    Files that resolve outside the kit (a symlink out) are left out; load_kit refuses them when named."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if any(part in rel for part in IGNORED_FILES) or not _within(path, file):
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
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    error = f"{type(exc).__name__}: {msg}"
    if line:
        return KitError(
            _("kit {kit}: {file}, line {line}: {error}", kit=kit, file=template_file, line=line, error=error)
        )
    return KitError(_("kit {kit}: {file}: {error}", kit=kit, file=template_file, error=error))


def run_template(kit: str, template: Template, variables: Mapping[str, Any], *, template_file: str) -> str:
    """Renders a kit template in the bounded sandbox; any failure is a KitError naming kit, file and line."""
    try:
        return render(template, variables)
    except Exception as exc:  # a template is the kit author's code: whatever it raises is a kit error
        raise template_error(kit, exc, template_file=template_file) from exc


class _Loader:
    """Builds a Kit from a parsed manifest, collecting the location of every element for errors."""

    def __init__(self, path: Path, raw: str, data: dict[str, Any], options: KitOptions) -> None:
        self.path = path
        self.root = path.resolve()
        self.name = path.name
        self.data = data
        self.options = options
        self.headers = _header_lines(raw)
        self.env = KitEnvironment(str(self.root))

    def fail(self, where: str, msg: str) -> KitError:
        return KitError(_("kit {kit}: {where}: {problem}", kit=self.name, where=where, problem=msg))

    def kit_file(self, where: str, rel: object, what: str) -> Path:
        """A file named in the manifest, which must exist inside the kit folder."""
        name = str(rel)
        candidate = Path(name)
        path = self.path / candidate
        if candidate.is_absolute() or not _within(self.root, path):
            raise self.fail(where, _("{what} {file!r} lies outside the kit folder", what=what, file=name))
        if not path.is_file():
            raise self.fail(where, _("{what} {file!r} not found in the kit", what=what, file=name))
        return path

    def read_template(self, where: str, rel: object) -> tuple[str, str]:
        """(file name, source) of a template file of the kit."""
        path = self.kit_file(where, rel, _("template"))
        try:
            return str(rel), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(
                where, _("template {file!r} cannot be read as UTF-8 text ({error})", file=str(rel), error=exc)
            ) from exc

    def compile(self, source: str, filename: str) -> tuple[Template, bool]:
        """Compiles a template; returns it and whether it uses per-piece variables."""
        try:
            ast = self.env.parse(source, filename=filename)
            code = self.env.compile(source, filename=filename)
            used = meta.find_undeclared_variables(ast)
            # Templates pulled in by {% include %} are not analysed; treat them as per piece to be safe.
            refs = list(meta.find_referenced_templates(ast))
            template = self.env.template_class.from_code(self.env, code, self.env.make_globals(None))
        except (
            Exception
        ) as exc:  # whatever compiling a kit's template raises is a kit error, never a traceback
            raise template_error(self.name, exc, template_file=filename) from exc
        return template, bool(used & PIECE_VARS) or bool(refs)

    def element(self, table: str, index: int, raw: Mapping[str, Any]) -> Element:
        lines = self.headers.get(table, [])
        if index < len(lines):
            where = _(
                "{manifest} line {line} ({table} item {item})",
                manifest=MANIFEST,
                line=lines[index],
                table=table,
                item=index + 1,
            )
        else:
            where = _("{manifest} ({table} item {item})", manifest=MANIFEST, table=table, item=index + 1)
        kind = raw.get("kind")
        if kind not in ELEMENT_KINDS:
            raise self.fail(
                where,
                _("kind must be one of {kinds}, not {kind!r}", kinds=", ".join(ELEMENT_KINDS), kind=kind),
            )
        known = set(Element.__slots__) | {"text", "template"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise self.fail(where, _("unknown key(s) {keys}", keys=", ".join(unknown)))
        try:
            box = {k: float(raw[k]) for k in ("x", "y", "w", "h")}
        except KeyError as exc:
            raise self.fail(where, _("missing {key!r} (position and size in mm)", key=exc.args[0])) from exc
        except (TypeError, ValueError) as exc:
            raise self.fail(where, _("x, y, w, h must be numbers in mm ({error})", error=exc)) from exc
        if box["w"] <= 0 or box["h"] <= 0:
            raise self.fail(where, _("w and h must be positive"))
        opts: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("kind", "text", "template", "file")}
        opts.update(box)
        file = None
        if "file" in raw:
            file = self.kit_file(where, raw["file"], _("artwork"))
        template = None
        template_file = None
        variable = False
        if kind == "text":
            if "template" in raw:
                template_file, source = self.read_template(where, raw["template"])
            elif "text" in raw:
                template_file = f"{MANIFEST}:{table}[{index + 1}]"
                source = str(raw["text"])
            else:
                raise self.fail(where, _("a text block needs `text` or `template`"))
            template, variable = self.compile(source, template_file)
        for colour_key in ("colour", "fill", "stroke", "heading_colour"):
            value = opts.get(colour_key)
            if value is not None and value not in self.colours:
                raise self.fail(where, _("{key} {value!r} is not in [colours]", key=colour_key, value=value))
        for font_key in ("font", "heading_font"):
            value = opts.get(font_key)
            if value is not None and value not in self.fonts:
                raise self.fail(where, _("{key} {value!r} is not in [fonts]", key=font_key, value=value))
        if kind in ("number", "qr"):
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
            raise self.fail(MANIFEST, _("{table} must be a list of [[{table}]] tables", table=table))
        return tuple(self.element(table, i, raw) for i, raw in enumerate(items))

    def union_variables(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The sender block (the union profile plus the kit's department) and the kit's template variables."""
        union = self.options.union
        sender_raw = {k: str(v) for k, v in dict(self.data.get("sender", {})).items()}
        own = sorted(set(sender_raw) - {"department"})
        if own:
            raise self.fail(
                f"{MANIFEST} [sender]",
                _(
                    "{keys}: the sender's name, address and postcode come from the union profile "
                    "(OUTREACH_UNION__NAME, OUTREACH_UNION__ADDRESS, OUTREACH_UNION__POSTCODE); "
                    "a kit may only set `department`",
                    keys=", ".join(own),
                ),
            )
        department = sender_raw.get("department", "")
        sender = {
            "name": union.name + department,
            "union": union.name,
            "department": department,
            "address": union.address,
            "postcode": union.postcode,
            "phone": union.phone,
        }
        variables: dict[str, Any] = {"union": union.model_dump(), "hotline": union.hotline}
        variables.update(dict(self.data.get("variables", {})))
        return sender, variables

    def load(self) -> Kit:
        data = self.data
        channel = data.get("channel", "letter")
        if channel not in ("letter", "sms"):
            raise self.fail(
                MANIFEST, _("channel must be 'letter' or 'sms', not {channel!r}", channel=channel)
            )
        colours: dict[str, tuple[float, float, float, float]] = {
            "black": (0, 0, 0, 100),
            "white": (0, 0, 0, 0),
        }
        for key, value in dict(data.get("colours", {})).items():
            try:
                ok = isinstance(value, list) and len(value) == 4 and all(0 <= float(v) <= 100 for v in value)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise self.fail(
                    f"{MANIFEST} [colours]", _("{key} must be CMYK percentages [c, m, y, k]", key=key)
                )
            c, m, y, k = (float(v) for v in value)
            colours[key] = (c, m, y, k)
        colours.setdefault("postcode", (0, 100, 100, 0))
        self.colours = colours
        font_names = dict(data.get("fonts", {}))
        font_names.setdefault("sans", ["wqy-microhei"])
        self.fonts = {
            role: resolve_chain(
                role,
                [names] if isinstance(names, str) else list(names),
                settings_fonts=self.options.fonts,
                kit_dir=self.path,
            )
            for role, names in font_names.items()
        }
        sender, variables = self.union_variables()
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
            "sender": sender,
            "sms_opt_out": self.options.sms_opt_out,
        }
        if channel == "sms":
            sms = dict(data.get("sms", {}))
            for key in ("template", "max_length"):
                if key not in sms:
                    raise self.fail(f"{MANIFEST} [sms]", _("missing {key!r}", key=key))
            tfile, source = self.read_template(f"{MANIFEST} [sms]", sms["template"])
            template, _variable = self.compile(source, tfile)
            union = self.options.union
            try:
                max_length = int(sms["max_length"])
            except (TypeError, ValueError) as exc:
                raise self.fail(f"{MANIFEST} [sms]", _("max_length must be a whole number")) from exc
            return Kit(
                **common,
                sms_signature=str(sms.get("signature") or union.sms_signature or union.name),
                sms_max_length=max_length,
                sms_template=template,
                sms_where=tfile,
            )
        envelope = dict(data.get("envelope", {}))
        size = str(envelope.get("size", "DL")).upper()
        if size not in ENVELOPES:
            raise self.fail(
                f"{MANIFEST} [envelope]",
                _("size {size!r} is not one of {sizes}", size=size, sizes=", ".join(ENVELOPES)),
            )
        letter = dict(data.get("letter", {}))
        paper = str(letter.get("paper", "A4")).upper()
        if paper not in PAPERS:
            raise self.fail(
                f"{MANIFEST} [letter]",
                _("paper {paper!r} is not one of {papers}", paper=paper, papers=", ".join(PAPERS)),
            )
        pages = letter.get("page", [])
        if not pages:
            raise self.fail(f"{MANIFEST} [letter]", _("a letter kit needs at least one [[letter.page]]"))
        return Kit(
            **common,
            envelope_size=size,
            envelope_mm=ENVELOPES[size],
            flap_depth=float(envelope.get("flap_depth", 35.0)),
            paper=paper,
            paper_mm=PAPERS[paper],
            postage=self.postage(sender, variables),
            front=self.elements("envelope.front", envelope.get("front")),
            back=self.elements("envelope.back", envelope.get("back")),
            flap=self.elements("envelope.flap", envelope.get("flap")),
            pages=tuple(self._page_items(i, page) for i, page in enumerate(pages)),
        )

    def postage(self, sender: Mapping[str, str], variables: Mapping[str, Any]) -> tuple[str, ...]:
        """The postage mark's lines, which may name the union (`{{ union.name }}`)."""
        lines = dict(self.data.get("postage", {})).get("lines", ["商 函", "邮资已付"])
        out = []
        for i, line in enumerate(lines):
            where = f"{MANIFEST}:postage.lines[{i + 1}]"
            template, _variable = self.compile(str(line), where)
            context = {
                "kit_title": str(self.data.get("title", self.name)),
                "sender": dict(sender),
                **variables,
            }
            out.append(run_template(self.name, template, context, template_file=where))
        return tuple(out)

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
    raise KitError(
        _("kit {kit}: no such kit folder (shipped kits: {known})", kit=str(kit), known=", ".join(known))
    )


def load_kit_cached(kit: str | Path, options: KitOptions | None = None) -> Kit:
    """load_kit once per process for the same files and options; a kit whose files changed is loaded anew."""
    path = resolve_kit_path(kit)
    return _load_kit_version(path, kit_digest(path), options or KitOptions())


@lru_cache(maxsize=16)
def _load_kit_version(path: Path, digest: str, options: KitOptions) -> Kit:
    return load_kit(path, options)


def load_kit(kit: str | Path, options: KitOptions | None = None) -> Kit:
    """Loads a kit by name or folder and checks it all now: manifest, fonts, artwork, templates, layout.

    `options` carries what the installation adds (KitOptions.from_settings(get_settings()) in the
    application); without it, no extra fonts and the default union profile."""
    path = resolve_kit_path(kit)
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise KitError(
            _("kit {kit}: {manifest} not found in {path}", kit=path.name, manifest=MANIFEST, path=str(path))
        )
    try:
        raw = manifest.read_text(encoding="utf-8")
        data = tomllib.loads(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KitError(
            _("kit {kit}: {manifest}: {error}", kit=path.name, manifest=MANIFEST, error=exc)
        ) from exc
    loaded = _Loader(path, raw, data, options or KitOptions()).load()
    from outreach.render.preflight import preflight

    preflight(loaded)
    return loaded
