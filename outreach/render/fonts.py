"""Font lookup: a fallback chain of embeddable TrueType CJK fonts per kit role, and glyph coverage.

Faces are parsed and registered through outreach.render.pdfwriter, the only module that touches ReportLab's
internals. The fonts tried first (OUTREACH_FONTS) are passed in by the caller; nothing here reads settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from outreach.errors import KitError
from outreach.i18n import N_, _
from outreach.render.pdfwriter import TTFError, TTFont, load_truetype

# Family name (normalised) -> file names to look for, with the collection index for .ttc files.
FONT_CATALOGUE: dict[str, tuple[tuple[str, int], ...]] = {
    "wqy-microhei": (("wqy-microhei.ttc", 0),),
    "wqy-zenhei": (("wqy-zenhei.ttc", 0),),
    "lxgw-wenkai": (("LXGWWenKai-Regular.ttf", 0),),
    "lxgw-wenkai-bold": (("LXGWWenKai-Bold.ttf", 0),),
    "lxgw-wenkai-light": (("LXGWWenKai-Light.ttf", 0),),
    "simsun": (("simsun.ttc", 0), ("simsun.ttf", 0)),
    "simhei": (("simhei.ttf", 0),),
    "microsoft-yahei": (("msyh.ttc", 0), ("msyh.ttf", 0)),
    "microsoft-yahei-bold": (("msyhbd.ttc", 0), ("msyhbd.ttf", 0)),
    "kaiti": (("simkai.ttf", 0),),
}
# Tried after the kit's own choice, in this order, so that a rare character still finds a font.
SYSTEM_FALLBACK = ("wqy-microhei", "lxgw-wenkai", "simsun", "microsoft-yahei", "simhei", "wqy-zenhei")
INSTALL_HINT = N_(
    "install a TrueType CJK font (Debian/Ubuntu: `apt install fonts-wqy-microhei fonts-lxgw-wenkai`; "
    "Windows has SimSun and Microsoft YaHei) or name font files in OUTREACH_FONTS"
)


def normalise_name(name: str) -> str:
    """Folds 'Microsoft YaHei' and 'microsoft_yahei' to the catalogue key 'microsoft-yahei'."""
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def font_dirs() -> list[Path]:
    """The system and user font folders of Linux, macOS and Windows that exist here."""
    home = Path.home()
    candidates = [
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        home / ".local/share/fonts",
        home / ".fonts",
        Path("/Library/Fonts"),
        Path("/System/Library/Fonts"),
        home / "Library/Fonts",
    ]
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        windir = Path(os.environ.get("WINDIR", r"C:\Windows"))
        candidates += [windir / "Fonts", Path(os.environ.get("LOCALAPPDATA", "")) / "Microsoft/Windows/Fonts"]
    return [d for d in candidates if d.is_dir()]


@lru_cache(maxsize=1)
def _installed_files() -> dict[str, Path]:
    """Lower-cased file name -> path of every font file in the font folders (scanned once)."""
    found: dict[str, Path] = {}
    for folder in font_dirs():
        for root, _dirs, files in sorted(os.walk(folder)):
            for file in sorted(files):
                if file.lower().endswith((".ttf", ".ttc")):
                    found.setdefault(file.lower(), Path(root) / file)
    return found


def find_family(name: str) -> tuple[Path, int] | None:
    """The installed file of a catalogue family, or None when it is not installed."""
    for file, index in FONT_CATALOGUE[normalise_name(name)]:
        path = _installed_files().get(file.lower())
        if path is not None:
            return path, index
    return None


@dataclass(frozen=True, slots=True, eq=False)
class LoadedFont:
    """One TrueType face registered with ReportLab, with its character map and advance widths."""

    name: str
    path: Path
    ttf: TTFont
    cmap: dict[int, int]
    widths: dict[int, int]
    default_width: int

    def has(self, ch: str) -> bool:
        """True when the face has a glyph for the character."""
        return ord(ch) in self.cmap

    def width(self, text: str, size: float) -> float:
        """Advance width of the text in points."""
        w = self.widths
        d = self.default_width
        return sum(w.get(ord(c), d) for c in text) * size / 1000.0


@lru_cache(maxsize=64)
def load_font(path: Path, index: int = 0) -> LoadedFont:
    """Loads and registers a TrueType face once per process (parsing a CJK font takes ~0.2 s)."""
    try:
        ttf, cmap, widths, default_width = load_truetype(f"{path.stem}-{index}", path, index)
    except (TTFError, OSError, ValueError) as exc:
        raise KitError(
            _(
                "font {path}: cannot be embedded ({error}); {hint}",
                path=str(path),
                error=exc,
                hint=_(INSTALL_HINT),
            )
        ) from exc
    return LoadedFont(
        name=ttf.fontName, path=path, ttf=ttf, cmap=cmap, widths=widths, default_width=default_width
    )


class _Widths(dict[str, int]):
    """Character -> advance width (1/1000 em) in the font of the chain that draws it, filled on first use."""

    def __init__(self, chain: FontChain) -> None:
        super().__init__()
        self.chain = chain

    def __missing__(self, ch: str) -> int:
        font = self.chain.font_for(ch) or self.chain.fonts[0]
        width = font.widths.get(ord(ch), font.default_width)
        self[ch] = width
        return width


@dataclass(frozen=True, slots=True, eq=False)
class FontChain:
    """The fonts tried in order for one role of a kit; the first is the design font."""

    role: str
    fonts: tuple[LoadedFont, ...]
    _widths: _Widths = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_widths", _Widths(self))

    @property
    def primary(self) -> LoadedFont:
        """The font most text is set in."""
        return self.fonts[0]

    def font_for(self, ch: str) -> LoadedFont | None:
        """The first font in the chain that can draw the character."""
        code = ord(ch)
        for font in self.fonts:
            if code in font.cmap:
                return font
        return None

    def missing(self, text: str) -> str:
        """The distinct characters of text (in order) that no font of the chain can draw."""
        primary = self.fonts[0].cmap
        if all(map(primary.__contains__, map(ord, text))):
            return ""
        out: list[str] = []
        for ch in text:
            if ord(ch) in primary or ch in "\n\r\t" or ch in out:
                continue
            if self.font_for(ch) is None:
                out.append(ch)
        return "".join(out)

    def runs(self, text: str) -> list[tuple[LoadedFont, str]]:
        """Splits text into runs each set in one font (the primary wherever it has the glyph)."""
        primary = self.fonts[0]
        cmap = primary.cmap
        if all(ord(c) in cmap for c in text):
            return [(primary, text)]
        runs: list[tuple[LoadedFont, str]] = []
        for ch in text:
            font = self.font_for(ch) or primary
            if runs and runs[-1][0] is font:
                runs[-1] = (font, runs[-1][1] + ch)
            else:
                runs.append((font, ch))
        return runs

    def width(self, text: str, size: float) -> float:
        """Advance width of the text in points, each character in the font that draws it."""
        return sum(map(self._widths.__getitem__, text)) * size / 1000.0


def _font_spec(entry: str, *, kit_dir: Path | None) -> tuple[Path, int] | str | None:
    """A kit or settings font entry -> (file, index); None if a known family is not installed; str = error."""
    looks_like_file = entry.lower().endswith((".ttf", ".ttc", ".otf")) or "/" in entry or "\\" in entry
    if looks_like_file:
        path = Path(entry)
        if not path.is_absolute() and kit_dir is not None:
            path = kit_dir / path
        if not path.is_file():
            return _("font file {file!r} not found", file=entry)
        return path, 0
    key = normalise_name(entry)
    if key not in FONT_CATALOGUE:
        known = ", ".join(sorted(FONT_CATALOGUE))
        return _("unknown font {font!r} (name a .ttf/.ttc file or one of: {known})", font=entry, known=known)
    return find_family(key)


def resolve_chain(
    role: str, names: Sequence[str], *, settings_fonts: Iterable[Path] = (), kit_dir: Path | None = None
) -> FontChain:
    """Builds a role's chain: settings fonts first, then the kit's names, then the system fallbacks."""
    specs: list[tuple[Path, int]] = []
    for path in settings_fonts:
        if not Path(path).is_file():
            raise KitError(_("OUTREACH_FONTS names {path}, which does not exist", path=str(path)))
        specs.append((Path(path), 0))
    for entry in names:
        spec = _font_spec(entry, kit_dir=kit_dir)
        if isinstance(spec, str):
            raise KitError(_("fonts.{role}: {problem}", role=role, problem=spec))
        if spec is not None:
            specs.append(spec)
    for family in SYSTEM_FALLBACK:
        spec = find_family(family)
        if spec is not None:
            specs.append(spec)
    seen: set[tuple[Path, int]] = set()
    fonts: list[LoadedFont] = []
    for spec in specs:
        if spec in seen:
            continue
        seen.add(spec)
        fonts.append(load_font(*spec))
    if not fonts:
        raise KitError(
            _("no CJK TrueType font found for fonts.{role}: {hint}", role=role, hint=_(INSTALL_HINT))
        )
    return FontChain(role=role, fonts=tuple(fonts))


def document_font(fonts: Iterable[Path] = ()) -> str:
    """The registered name of the first CJK font, for plain ReportLab documents (tickets, statements).

    `fonts` are the settings' fonts (OUTREACH_FONTS), tried first."""
    return resolve_chain("document", [], settings_fonts=fonts).primary.name
