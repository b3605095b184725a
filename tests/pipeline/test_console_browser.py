"""The console in a real browser (Debian's Chromium driven by Playwright): a person logs in through
Airflow's own login page, opens every console page on a batch that went through the pipeline, verifies
an archived package, uploads a tampered file and sees it rejected. Screenshots go to
``test-artifacts/console/`` (or ``$SEALFLOW_TEST_ARTIFACTS/console``).

Skipped, with the reason, only where Chromium or Playwright cannot be installed (``.ci/run`` installs
Chromium when it is missing); ``playwright install`` is never used — no browser download.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline import console_fixtures
from tests.pipeline.console_fixtures import BATCH_ID, ConsoleEnv
from tests.pipeline.test_console import tampered_pdf

console_env = console_fixtures.console_env  # the session's fixture

pytestmark = [pytest.mark.stack, pytest.mark.browser]

CHROMIUM = os.environ.get("SEALFLOW_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("SEALFLOW_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM} (install it: apt-get install -y chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not installed ({exc}); pip install -e '.[dev]'")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                     args=ARGS, headless=True)
        yield launched
        launched.close()


def _shot(page, name: str) -> Path:
    folder = ARTIFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_a_person_logs_in_and_uses_every_console_page(browser, console_env: ConsoleEnv, tmp_path: Path) -> None:
    started = time.monotonic()
    base = console_env.base
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    # Nothing without logging in: the console answers 401 to the browser too.
    assert page.goto(f"{base}/sealflow/batches").status == 401
    # Airflow's own login page (SimpleAuthManager), as a person uses it.
    page.goto(f"{base}/auth/login?next={base}/sealflow/batches")
    page.locator("input").first.fill("admin")
    page.locator("input[type=password]").fill(console_env.passwords["admin"])
    _shot(page, "00-login")
    page.locator("input[type=password]").press("Enter")
    page.wait_for_function("document.cookie.includes('_token') || location.pathname !== '/auth/login'")
    page.wait_for_timeout(500)

    assert page.goto(f"{base}/sealflow/batches").status == 200
    row = page.locator("tr", has_text=BATCH_ID)
    assert row.count() == 1 and "alarm" in (row.get_attribute("class") or "")
    _shot(page, "01-batches")

    row.locator(f"a:text-is('{BATCH_ID}')").click()
    page.wait_for_url(f"**/sealflow/batches/{BATCH_ID}")
    problems = page.locator("section", has_text="有问题的行").locator("tr.alarm")
    assert problems.count() == console_env.expected["bad"]
    assert page.get_by_text("找不到该文件").count() >= 1
    _shot(page, "02-batch-detail")

    code = page.locator("table").last.locator("td:nth-child(7)").filter(has_not_text="—").first.inner_text()
    page.goto(f"{base}/sealflow/archive")
    page.fill("input[name=q]", code)
    page.click("button:has-text('查找')")
    assert page.locator("tr", has_text=code).count() == 1
    page.locator("tr", has_text=code).locator("button").click()
    page.wait_for_selector("text=档案包完整有效")
    _shot(page, "03-archive-verified")

    doc = next(d for d in console_env.verified_documents() if d.format == "pdf")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(tampered_pdf(Path(doc.output_path).read_bytes()))
    page.goto(f"{base}/sealflow/verify")
    page.set_input_files("input[type=file]", str(tampered))
    page.click("button:has-text('验章')")
    result = page.locator("#result")
    result.wait_for()
    assert "无效" in result.inner_text() and "not_valid" in result.inner_text()
    assert "盖章后文件被改动" in result.inner_text()  # the failed check, said plainly
    _shot(page, "04-verify-tampered")

    assert page.goto(f"{base}/sealflow/health").status == 200
    for heading in ("当前告警", "备案", "30 天内到期的印章", "密钥库", "最近一次完整性检查", "审计检查点"):
        assert page.get_by_role("heading", name=heading).count() == 1, heading
    _shot(page, "05-health")
    context.close()
    print(f"browser test: {time.monotonic() - started:.1f}s, screenshots in {ARTIFACTS / 'console'}")
