"""Hostile kits: huge constants, blow-ups at render time, compile failures and files outside the kit folder
are refused with a KitError naming kit, file and line, in bounded time and memory (each load runs in a
forked child limited to 5 s and 512 MiB more memory, so a regression fails instead of eating the machine)."""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from outreach.errors import KitError
from outreach.i18n import use_language
from outreach.render import kits_dir, load_kit
from outreach.render.sandbox import MAX_TEXT, KitEnvironment, render

LIMIT_S = 5.0


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with use_language("en"):
        yield


def _copy(tmp_path: Path, kit: str = "notice") -> Path:
    dest = tmp_path / kit
    shutil.copytree(kits_dir() / kit, dest)
    return dest


def _child(kit_dir: Path, conn: multiprocessing.connection.Connection) -> None:
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    limit = pages * resource.getpagesize() + 512 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        with use_language("en"):
            load_kit(kit_dir)
        conn.send(("loaded", ""))
    except KitError as exc:
        conn.send(("KitError", str(exc)))
    except BaseException as exc:  # what must never happen: anything else escaping load_kit
        conn.send((type(exc).__name__, str(exc)[:500]))


def _refused(kit_dir: Path) -> str:
    """Loads the kit in a bounded child; returns the KitError's message (fails on anything else)."""
    load_kit("notice")  # fonts parsed in the parent, so the child starts warm
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    started = time.perf_counter()
    proc = ctx.Process(target=_child, args=(kit_dir, child))
    proc.start()
    proc.join(LIMIT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"loading the kit ran for more than {LIMIT_S} s")
    assert parent.poll(1), f"the child died (exit code {proc.exitcode})"
    kind, message = parent.recv()
    assert time.perf_counter() - started < LIMIT_S
    assert kind == "KitError", (kind, message)
    return str(message)


def _template(kit: Path, source: str, name: str = "address.j2") -> None:
    (kit / name).write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    "expr",
    [
        "10**100000000",
        "'x' * 10**10",
        "(2**64) ** 100",
        "[0] * 10**9",
        "'ab' ~ 'x' * 200000",
        "'%999999999d' % 1",
        "-(9**99999999)",
    ],
)
def test_huge_constants_are_refused_at_compile_time(tmp_path: Path, expr: str) -> None:
    kit = _copy(tmp_path)
    _template(kit, f"{{{{ address }}}}\n{{{{ unit_name }}}}\n{{{{ {expr} }}}}\n")
    message = _refused(kit)
    assert "kit notice" in message and "address.j2, line 3" in message, message
    assert "larger than a template may build" in message or "format width" in message, message


def test_huge_constant_in_the_manifest_text_names_the_element(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    manifest = kit / "kit.toml"
    text = manifest.read_text(encoding="utf-8")
    hostile = text.replace('text = "{{ sender.name }} · 职工之家"', "text = \"{{ 'x' * 10**10 }}\"")
    manifest.write_text(hostile, encoding="utf-8")
    message = _refused(kit)
    assert "kit.toml:envelope.back[" in message and "line 1" in message, message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Sizes only known when rendering: every operator, `~`, filter and the output are capped.
        ("{% set n = 10 %}{{ 'x' * (n ** 9) }}", "larger than a template may build"),
        ("{{ unit_name * 100000000 }}", "larger than a template may build"),
        ("{% set a = unit_name * 9000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b }}", "characters"),
        # (the output as a whole: its size is known only once joined, so no line is named)
        ("{% set a = unit_name * 9000 %}{% for i in range(100) %}{{ a }}{% endfor %}", "100,000 characters"),
        ("{{ ([unit_name * 9000] * 12) | join }}", "larger than a template may build"),
        ("{{ name | replace('', unit_name * 9000) }}", "larger than a template may build"),
        # Loops: all loops of one rendering together have a budget.
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop steps"),
        ("{{ range(100000) | list | map('list') | list | length }}", "loop steps"),
        # Padding and formatting methods of str take unbounded sizes: not available.
        ("{{ name.ljust(10**9) }}", "unsafe"),
        ("{{ '{:>999999999}'.format(name) }}", "unsafe"),
        ("{{ name.center(1000000000) }}", "unsafe"),
    ],
)
def test_blow_ups_at_render_time_are_refused(tmp_path: Path, source: str, expected: str) -> None:
    kit = _copy(tmp_path)
    _template(kit, f"{{{{ address }}}}\n{{{{ unit_name }}}}\n{source}\n")
    message = _refused(kit)
    where = "address.j2" if "range(100)" in source else "address.j2, line 3"
    assert "kit notice" in message and where in message, message
    assert expected in message, message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ name | center(1000000000) }}", "No filter named 'center'"),
        ("{{ name | format(1) }}", "No filter named 'format'"),
        ("{{ lipsum(1000000000) }}", "lipsum"),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f(name) }}", "{% macro %} is not allowed"),
        ("{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}", "recursive loops are not allowed"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "address.j2"),
        ("{{ 1" + "0" * 6000 + " }}", "address.j2"),
        ("{% include 'nosuch.j2' %}", "nosuch.j2"),
    ],
)
def test_any_compile_or_load_failure_is_a_kit_error(tmp_path: Path, source: str, expected: str) -> None:
    kit = _copy(tmp_path)
    _template(kit, f"{{{{ address }}}}\n{{{{ unit_name }}}}\n{source}\n")
    message = _refused(kit)
    assert "kit notice" in message and expected in message, message


def test_a_template_that_is_not_utf8_is_a_kit_error(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    (kit / "address.j2").write_bytes("{{ address }}\n姓名\n".encode("gb18030"))
    message = _refused(kit)
    assert "address.j2" in message and "UTF-8" in message


def test_ordinary_templates_still_work_within_the_limits() -> None:
    env = KitEnvironment(str(kits_dir() / "notice"))
    source = (
        "{% for p in people %}{{ loop.index }}.{{ p.name | upper }}{{ '，' if not loop.last }}{% endfor %}"
        "|{{ (amount * 12) // 10 }}|{{ '%05.1f' % 3.14159 }}|{{ names | join('、') }}|{{ 'ab' ~ 'cd' }}"
        "|{{ 2 ** 10 }}|{{ [1, 2, 3] | sum }}|{{ 'x' * 3 }}|{{ title | replace('县', '縣') }}|{{ -amount }}"
    )
    out = render(
        env.from_string(source),
        {
            "people": [{"name": "a"}, {"name": "b"}],
            "amount": 5000,
            "names": ["王", "李"],
            "title": "尤溪县",
        },
    )
    assert out == "1.A，2.B|6000|003.1|王、李|abcd|1024|6|xxx|尤溪縣|-5000"
    assert len(render(env.from_string("{{ 'x' * n }}"), {"n": MAX_TEXT})) == MAX_TEXT


# ---- files named in the manifest must lie inside the kit folder ----------------------------------------


def test_artwork_outside_the_kit_is_refused(tmp_path: Path) -> None:
    kit = _copy(tmp_path, "qiaojiaren")
    shutil.copy(kit / "artwork" / "ad_front.jpg", tmp_path / "outside.jpg")
    manifest = kit / "kit.toml"
    text = manifest.read_text(encoding="utf-8")
    for path in ("../outside.jpg", str(tmp_path / "outside.jpg")):
        moved = text.replace('file = "artwork/ad_front.jpg"', f'file = "{path}"')
        manifest.write_text(moved, encoding="utf-8")
        with pytest.raises(KitError) as err:
            load_kit(kit)
        assert "kit qiaojiaren" in str(err.value) and "lies outside the kit folder" in str(err.value)
        assert path in str(err.value) and "envelope.front item 6" in str(err.value)


def test_a_symlink_pointing_out_of_the_kit_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("{{ address }}\n机密内容\n", encoding="utf-8")
    kit = _copy(tmp_path)
    (kit / "address.j2").unlink()
    os.symlink(secret, kit / "address.j2")
    with pytest.raises(KitError, match=r"kit notice: .*'address.j2' lies outside the kit folder"):
        load_kit(kit)


def test_an_include_through_a_symlink_out_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("机密内容\n", encoding="utf-8")
    kit = _copy(tmp_path)
    os.symlink(secret, kit / "extra.j2")
    _template(kit, "{{ address }}\n{{ unit_name }}\n{% include 'extra.j2' %}\n")
    with pytest.raises(KitError, match=r"(?s)kit notice: .*address.j2, line 3: .*outside the kit folder"):
        load_kit(kit)
    _template(kit, "{{ address }}\n{{ unit_name }}\n{% include '../secret.txt' %}\n")
    with pytest.raises(KitError, match=r"(?s)kit notice: .*address.j2, line 3: .*secret.txt"):
        load_kit(kit)


def test_a_template_path_outside_the_kit_is_refused(tmp_path: Path) -> None:
    kit = _copy(tmp_path, "hardship_sms")
    (tmp_path / "sms.j2").write_text("外部短信\n", encoding="utf-8")
    manifest = kit / "kit.toml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace('template = "sms.j2"', 'template = "../sms.j2"'),
        encoding="utf-8",
    )
    with pytest.raises(KitError, match=r"kit hardship_sms: kit.toml \[sms\]: .*'\.\./sms\.j2' lies outside"):
        load_kit(kit)
