"""Line breaking for Chinese text: character-wise wrap, Latin words kept whole, no line starting with closing
punctuation nor ending with opening punctuation (禁则), and a little markup (`# heading`, `- bullet`) for
letter bodies. Pure text measurement: no ReportLab here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from outreach.render.fonts import FontChain

# Closing punctuation never starts a line; opening punctuation never ends one (GB/T 15834 practice).
NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’…—·%,.;:?!)]}")
NO_LINE_END = frozenset("（《「『【〔〈“‘([{")
_TOKEN = re.compile(r"[A-Za-z0-9@#&._:/+\-]+|\s+|.", re.S)
BULLET = "◆"


@dataclass(frozen=True, slots=True)
class Line:
    """One set line: its text, where it starts (pt from the box's left), baseline (pt below the box's top)."""

    text: str
    x: float
    y: float
    size: float
    chain: FontChain
    colour: str  # the fill operator, e.g. "0 0 0 1 k"
    spacing: float = 0.0  # extra character spacing (Tc) for justified lines


def wrap(
    text: str, chain: FontChain, size: float, width: float, first_width: float | None = None
) -> list[str]:
    """Breaks one paragraph into lines no wider than width (the first line may have its own width).

    Line-breaking rules (禁则): where a break would put closing punctuation at the start of a line or leave
    an opening bracket or quote at the end of one, the tokens before it move down to the next line with it.
    """
    if chain.width(text, size) <= (first_width if first_width is not None else width) + 0.01:
        return [text]  # the common case for names, units and addresses: it fits on one line
    tokens = _TOKEN.findall(text)
    lines: list[str] = []
    cur: list[str] = []
    cur_w = 0.0
    limit = first_width if first_width is not None else width
    for tok in tokens:
        tw = chain.width(tok, size)
        if cur and cur_w + tw > limit + 0.01:
            limit = width
            if tok.isspace():
                lines.append("".join(cur).rstrip())
                cur, cur_w = [], 0.0
                continue
            tail = [tok]
            while len(cur) > 1 and (tail[0][0] in NO_LINE_START or cur[-1][-1] in NO_LINE_END):
                tail.insert(0, cur.pop())
            lines.append("".join(cur).rstrip())
            while len(tail) > 1 and tail[0].isspace():
                tail.pop(0)
            cur = tail
            cur_w = chain.width("".join(cur), size)
            continue
        cur.append(tok)
        cur_w += tw
    rest = "".join(cur)
    if rest.strip() or not lines:
        lines.append(rest.rstrip())
    return lines


@dataclass(frozen=True, slots=True)
class TextStyle:
    """How a text block is set."""

    chain: FontChain
    size: float
    leading: float
    colour: str
    align: str = "left"  # left | center | right | justify
    markup: bool = False
    indent: bool = False
    heading_chain: FontChain | None = None
    heading_colour: str | None = None
    heading_scale: float = 1.3
    paragraph_gap: float = 0.4  # in lines


def set_text(text: str, style: TextStyle, width: float) -> tuple[list[Line], float]:
    """Sets the text in a box of the given width; returns the lines and the height used (pt)."""
    out: list[Line] = []
    y = 0.0
    size = style.size
    lead = size * style.leading
    for raw in text.split("\n"):
        para = raw.strip()
        if not para:
            if out:
                y += lead * style.paragraph_gap
            continue
        chain, psize, colour, align = style.chain, size, style.colour, style.align
        indent_first = 0.0
        hang = 0.0
        if style.markup and para.startswith("#"):
            level = len(para) - len(para.lstrip("#"))
            para = para[level:].strip()
            chain = style.heading_chain or chain
            psize = size * (style.heading_scale if level == 1 else (1 + (style.heading_scale - 1) / 2))
            colour = style.heading_colour or colour
            align = "center" if level == 1 else "left"
        elif style.markup and para.startswith("- "):
            para = BULLET + " " + para[2:].strip()
            hang = chain.width(BULLET + " ", psize)
        elif style.indent:
            indent_first = 2 * psize
        plead = psize * style.leading
        lines = wrap(para, chain, psize, width - hang, first_width=width - indent_first)
        for i, ln in enumerate(lines):
            x0 = indent_first if i == 0 else (hang if i > 0 else 0.0)
            avail = width - x0
            lw = chain.width(ln, psize)
            spacing = 0.0
            if align == "center":
                x = x0 + (avail - lw) / 2
            elif align == "right":
                x = x0 + avail - lw
            else:
                x = x0
                last = i == len(lines) - 1
                if align == "justify" and not last and len(ln) > 1 and 0 < avail - lw < psize * 2:
                    spacing = (avail - lw) / (len(ln) - 1)
            y += plead if out or i else psize * 0.95 + (plead - psize) / 2
            out.append(Line(ln, x, y, psize, chain, colour, spacing))
    return out, y + size * 0.3 if out else 0.0
