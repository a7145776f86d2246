"""Renderer benchmark: 俏佳人 envelope + letter for 6,000 and 100,000 pieces in one process, and 100 pieces
the web-to-print way (one HTML page per piece through WeasyPrint) for comparison.

Run: flock /tmp/outreach-heavy.lock .venv/bin/python benchmarks/bench_render.py [--big 100000] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from outreach.render import Kit, Recipient, load_kit, render_letters

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "秀英桂兰丽娟芳美玲淑珍红梅晓燕玉兰静敏慧婷雪琴霞萍娜莉颖佳欣怡倩雅琳洁月凤翠春燕华云"
TOWNS = ("城关镇", "桃源镇", "河西乡", "开发区", "长岭镇", "龙口镇", "梅林乡", "新塘镇")
KINDS = (
    "人民医院",
    "纺织有限公司",
    "实验小学",
    "卫生院",
    "电子科技股份有限公司",
    "供销合作社",
    "农商银行支行",
)


def recipients(n: int, *, start: int = 0, seed: int = 42) -> Iterator[Recipient]:
    """Plausible women workers at ~600 units (units repeat, as they do in the registry)."""
    for i in range(start, start + n):
        rnd = random.Random(seed * 1_000_003 + i)
        unit = rnd.randrange(600)
        town = TOWNS[unit % len(TOWNS)]
        yield Recipient(
            number=f"R000001-{i + 1:06d}",
            seq=i + 1,
            name=rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2)))),
            gender="F",
            unit_name=f"{town}{KINDS[unit % len(KINDS)]}"
            if unit % 3
            else f"某某县{town}第{unit}号{KINDS[unit % 7]}",
            address=f"{town}{'人民路' if unit % 2 else '工业园区纬二路'}{unit % 300 + 1}号",
            postcode=f"3410{unit % 100:02d}",
            township=town,
        )


def rss_mib() -> float:
    """Current resident set size in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(kit: Kit, n: int, chunk: int, out: Path, label: str) -> None:
    dt = 0.0
    cpu = 0.0
    pages = 0
    size = 0
    done = 0
    samples = []
    for first in range(0, n, chunk):
        count = min(chunk, n - first)
        env, let = out / f"{label}-env.pdf", out / f"{label}-let.pdf"
        # Only rendering is timed: making up the synthetic recipients is the benchmark's own cost.
        batch = list(recipients(count, start=first))
        started, started_cpu = time.perf_counter(), time.process_time()
        result = render_letters(kit, batch, envelopes=env, letters=let)
        dt += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        assert not result.failed, result.failed[:3]
        pages += count * (2 + kit.letter_pages)
        size += env.stat().st_size + let.stat().st_size
        done += count
        if first // chunk in (0, 9, 49, n // chunk - 1):
            samples.append(f"{done}:{rss_mib():.0f}")
    print(
        f"{label}: {n} pieces ({pages} pages, {n // chunk or 1} file pair(s) of {min(n, chunk)} pieces) "
        f"in {dt:.1f} s: {n / dt:,.0f} pieces/s, {pages / dt:,.0f} pages/s, {size / pages:,.0f} bytes/page, "
        f"{size / n:,.0f} bytes/piece;\n  CPU time {cpu:.1f} s: {n / cpu:,.0f} pieces/s (less skewed by "
        f"other load on the machine); RSS MiB after pieces {', '.join(samples)}; "
        f"peak RSS {peak_mib():.0f} MiB"
    )


def weasyprint_run(kit: Kit, n: int, out: Path) -> None:
    from weasyprint import HTML  # the comparison only; not a dependency of the renderer

    body = (kit.path / "letter_body.j2").read_text(encoding="utf-8")
    art = (kit.path / "artwork" / "letterhead.jpg").as_uri()
    start = time.perf_counter()
    size = 0
    for r in recipients(n):
        html = f"""<html><head><style>@page {{ size: A4; margin: 18mm; }} body {{ font-family: 'LXGW WenKai';
        font-size: 11.5pt; line-height: 1.7 }} img {{ width: 100%; }}</style></head><body>
        <img src="{art}"><p>{r.unit_name}<br>{r.address}</p><p>{r.number}</p><h3>尊敬的{r.name}女士：</h3>
        {"".join(f"<p>{line}</p>" for line in body.splitlines() if line.strip())}</body></html>"""
        target = out / "weasy.pdf"
        HTML(string=html).write_pdf(target)
        size += target.stat().st_size
    dt = time.perf_counter() - start
    print(
        f"weasyprint: {n} pieces (letter page only, one HTML page per piece) in {dt:.1f} s: "
        f"{n / dt:,.1f} pieces/s, "
        f"{size / n:,.0f} bytes/piece"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=6000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000, help="pieces per file pair in the big run")
    parser.add_argument("--weasy", type=int, default=100)
    args = parser.parse_args()
    t = time.perf_counter()
    kit = load_kit("qiaojiaren")
    print(
        f"kit load + preflight + font parsing: {time.perf_counter() - t:.2f} s; peak RSS {peak_mib():.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(kit, args.small, args.small, out, "single file")
        run(kit, args.big, args.chunk, out, "chunked")
        if args.weasy:
            weasyprint_run(kit, args.weasy, out)


if __name__ == "__main__":
    main()
