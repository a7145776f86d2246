"""Fixtures for the renderer tests: the shipped kits rendered once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.render import Kit, RenderResult, load_kit, render_letters, sample_recipients


@pytest.fixture(scope="session")
def qiaojiaren() -> Kit:
    return load_kit("qiaojiaren")


@pytest.fixture(scope="session")
def rendered(qiaojiaren: Kit, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RenderResult]:
    out = tmp_path_factory.mktemp("render")
    env, let = out / "env.pdf", out / "let.pdf"
    result = render_letters(qiaojiaren, sample_recipients(5), envelopes=env, letters=let)
    return env, let, result
