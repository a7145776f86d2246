"""Regenerates the 俏佳人 kit's artwork (CMYK JPEG, 300 dpi at placed size). Run: python make_artwork.py"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 300
HERE = Path(__file__).parent
KAI_BOLD = "/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf"
KAI = "/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf"
SANS = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def px(mm: float) -> int:
    return round(mm / 25.4 * DPI)


def gradient(w: int, h: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    im = Image.new("RGB", (w, h))
    d = ImageDraw.Draw(im)
    for y in range(h):
        t = y / max(1, h - 1)
        d.line([(0, y), (w, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return im


def flower(
    d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, petal: tuple[int, ...], heart: tuple[int, ...]
) -> None:
    for k in range(5):
        a = k * 2 * math.pi / 5
        px_, py_ = cx + math.cos(a) * r * 0.55, cy + math.sin(a) * r * 0.55
        d.ellipse([px_ - r * 0.5, py_ - r * 0.5, px_ + r * 0.5, py_ + r * 0.5], fill=petal)
    d.ellipse([cx - r * 0.25, cy - r * 0.25, cx + r * 0.25, cy + r * 0.25], fill=heart)


def bokeh(im: Image.Image, n: int, seed: int, colour: tuple[int, int, int], rmax: int) -> Image.Image:
    rnd = random.Random(seed)
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for _ in range(n):
        r = rnd.randint(rmax // 4, rmax)
        x, y = rnd.randint(0, im.width), rnd.randint(0, im.height)
        d.ellipse([x - r, y - r, x + r, y + r], fill=(*colour, rnd.randint(30, 80)))
    layer = layer.filter(ImageFilter.GaussianBlur(rmax // 6))
    out = im.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")


def save(im: Image.Image, name: str) -> None:
    im.convert("CMYK").save(HERE / name, "JPEG", quality=82, dpi=(DPI, DPI), optimize=True)


def front_greeting() -> None:
    w, h = px(96), px(42)
    im = gradient(w, h, (253, 232, 238), (248, 205, 220))
    im = bokeh(im, 40, 1, (255, 255, 255), px(6))
    d = ImageDraw.Draw(im)
    rnd = random.Random(7)
    for _ in range(9):
        x, y = rnd.randint(px(50), w), rnd.randint(0, h)
        flower(d, x, y, px(rnd.uniform(2.5, 5)), (236, 120, 160), (255, 214, 102))
    save(im, "front_greeting.jpg")


def back_background() -> None:
    w, h = px(226), px(116)
    im = gradient(w, h, (252, 228, 236), (255, 246, 249))
    im = bokeh(im, 80, 2, (255, 255, 255), px(8))
    d = ImageDraw.Draw(im)
    # The flap: a deeper rose band with a scalloped edge and a row of flowers.
    flap = px(3 + 35)
    d.rectangle([0, 0, w, flap], fill=(231, 96, 140))
    for k in range(0, w, px(8)):
        d.ellipse([k - px(4), flap - px(4), k + px(4), flap + px(4)], fill=(231, 96, 140))
    rnd = random.Random(3)
    for k in range(12):
        flower(d, px(10) + k * px(19), px(8) + rnd.randint(0, px(4)), px(3), (255, 222, 233), (255, 214, 102))
    save(im, "back_background.jpg")


def ad(
    name: str,
    size: tuple[float, float],
    bg: tuple[tuple[int, int, int], tuple[int, int, int]],
    title: str,
    lines: list[str],
    tag: str,
    accent: tuple[int, int, int],
) -> None:
    w, h = px(size[0]), px(size[1])
    im = gradient(w, h, *bg)
    im = bokeh(im, 12, sum(map(ord, name)) % 100, (255, 255, 255), px(5))
    d = ImageDraw.Draw(im)
    big = ImageFont.truetype(KAI_BOLD, px(size[1] * 0.2))
    mid = ImageFont.truetype(SANS, px(size[1] * 0.085))
    small = ImageFont.truetype(SANS, px(size[1] * 0.07))
    d.text((px(4), px(3)), title, font=big, fill=accent)
    y = px(3) + big.size * 1.25
    for ln in lines:
        d.text((px(4), y), ln, font=mid, fill=(60, 40, 50))
        y += mid.size * 1.45
    tw = d.textlength(tag, font=small)
    d.rounded_rectangle(
        [w - tw - px(8), h - small.size - px(6), w - px(3), h - px(2.5)], radius=px(2), fill=accent
    )
    d.text((w - tw - px(5.5), h - small.size - px(4.6)), tag, font=small, fill=(255, 255, 255))
    save(im, name)


def letterhead() -> None:
    w, h = px(216), px(33)
    im = gradient(w, h, (214, 51, 108), (236, 110, 150))
    im = bokeh(im, 30, 4, (255, 255, 255), px(7))
    d = ImageDraw.Draw(im)
    rnd = random.Random(5)
    for _ in range(7):
        flower(
            d,
            rnd.randint(px(130), w),
            rnd.randint(px(3), h - px(3)),
            px(rnd.uniform(3, 5)),
            (255, 214, 228),
            (255, 214, 102),
        )
    save(im, "letterhead.jpg")


def main() -> None:
    front_greeting()
    back_background()
    letterhead()
    ad(
        "ad_front.jpg",
        (52, 16),
        ((255, 240, 245), (252, 218, 230)),
        "丽人坊",
        ["女神节护理套餐 8 折"],
        "凭函到店",
        (214, 51, 108),
    )
    ad(
        "ad_beauty.jpg",
        (86, 56),
        ((255, 236, 242), (250, 206, 222)),
        "丽人坊美容美发",
        ["三八女神月 · 会员护理 8 折", "凭本函到店 免费肩颈护理一次", "城关镇水南路66号 · 0598-6321888"],
        "限女职工",
        (214, 51, 108),
    )
    ad(
        "ad_market.jpg",
        (86, 56),
        ((238, 248, 236), (206, 236, 204)),
        "福满家超市",
        ["每周三“女职工日”满100减15", "粮油蔬果 · 日用百货 · 送货上门", "城关镇沈郎路8号 · 0598-6258666"],
        "周三专享",
        (46, 139, 87),
    )
    ad(
        "ad_dental.jpg",
        (86, 56),
        ((234, 244, 252), (204, 226, 246)),
        "仁和口腔门诊",
        ["免费口腔检查 · 洁牙仅需 68 元", "儿童涂氟 · 矫正咨询 · 医保定点", "紫阳大道120号 · 0598-6336120"],
        "凭函优惠",
        (30, 110, 180),
    )
    ad(
        "ad_family.jpg",
        (86, 56),
        ((255, 246, 230), (252, 226, 190)),
        "康贝母婴生活馆",
        ["孕期、哺乳期妈妈全场 9 折", "产后修复 · 育婴咨询 · 亲子乐园", "城关镇开山路58号 · 0598-6299558"],
        "妈妈专享",
        (214, 120, 30),
    )
    ad(
        "ad_back1.jpg",
        (64, 40),
        ((255, 246, 230), (252, 226, 190)),
        "巧手家政",
        ["钟点保洁 · 月嫂育婴", "首单立减 20 元"],
        "工会会员价",
        (214, 120, 30),
    )
    ad(
        "ad_back2.jpg",
        (64, 40),
        ((234, 244, 252), (204, 226, 246)),
        "悦享健身",
        ["女子瑜伽 · 普拉提", "工会会员年卡 6 折"],
        "限时",
        (30, 110, 180),
    )


if __name__ == "__main__":
    main()
