"""The SealFlow console in Airflow's api-server, on a batch that went through the pipeline: who may see
what, what each page and API answers, the metrics a Prometheus scrape reads — and the same pages in a
real browser (Debian's Chromium driven by Playwright): a person logs in through Airflow's own login
page, opens every console page, verifies an archived package, uploads a tampered file and sees it
rejected. Screenshots go to ``test-artifacts/console/`` (or ``$SEALFLOW_TEST_ARTIFACTS/console``).

The browser test is skipped, with the reason, only where Chromium or Playwright cannot be installed
(``.ci/run`` installs Chromium when it is missing); ``playwright install`` is never used. One module,
so the batch the pages show is run through the pipeline once."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline import console_fixtures
from tests.pipeline.console_fixtures import BATCH_ID, ConsoleEnv

console_env = console_fixtures.console_env  # the fixture, registered once (in this module only)

pytestmark = pytest.mark.stack

PREFIX = "/sealflow"


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) of the console app, read from the app itself so a new route is covered too."""
    import sys

    from tests.pipeline.plugins_path import PLUGINS

    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    from sealflow_airflow.console.app import app

    out = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, PREFIX + route.path.replace("{batch_id}", BATCH_ID)
                            .replace("{archival_code}", "X")))
    return out


def test_the_plugin_registers_the_console_and_its_menu_entries(console_env: ConsoleEnv) -> None:
    with console_env.client("admin") as client:
        plugins = client.get("/api/v2/plugins").json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "sealflow")
    assert [a["url_prefix"] for a in ours["fastapi_apps"]] == [PREFIX]
    assert {v["href"] for v in ours["external_views"]} >= {f"{PREFIX}/batches", f"{PREFIX}/health"}


def test_every_console_route_refuses_an_anonymous_or_forged_request(console_env: ConsoleEnv) -> None:
    routes = _routes()
    assert len(routes) >= 15
    with console_env.client() as client:
        for method, path in routes:
            assert client.request(method, path).status_code == 401, (method, path)
            forged = client.request(method, path, headers={"Authorization": "Bearer not.a.token"})
            assert forged.status_code in (401, 403), (method, path, forged.status_code)
            cookie = client.request(method, path, cookies={"_token": "forged"})
            assert cookie.status_code in (401, 403), (method, path, cookie.status_code)


def test_a_person_without_the_role_is_refused(console_env: ConsoleEnv) -> None:
    with console_env.client("applicant") as applicant:  # registry applicant: batches only
        assert applicant.get(f"{PREFIX}/api/batches").status_code == 200
        for path in ("/archive", "/api/archive", "/health", "/api/health", "/metrics"):
            assert applicant.get(PREFIX + path).status_code == 403, path
    with console_env.client("archivist") as archivist:  # registry archivist: archive and health
        assert archivist.get(f"{PREFIX}/api/archive").status_code == 200
        assert archivist.get(f"{PREFIX}/health").status_code == 200
        for path in ("/batches", "/api/batches", "/metrics"):
            assert archivist.get(PREFIX + path).status_code == 403, path
    with console_env.client("auditor") as auditor:  # registry auditor: may read the metrics
        assert auditor.get(f"{PREFIX}/metrics").status_code == 200
    with console_env.client("visitor") as visitor:  # an Airflow viewer unknown to the registry
        for path in ("/batches", f"/batches/{BATCH_ID}", "/api/batches", "/archive", "/health", "/metrics"):
            assert visitor.get(PREFIX + path).status_code == 403, path
        assert visitor.get(f"{PREFIX}/verify").status_code == 200  # 验章 is offered to every logged-in user


def test_batches_show_the_steps_and_the_detail_puts_problems_first(console_env: ConsoleEnv) -> None:
    expected = console_env.expected
    with console_env.client("admin") as client:
        listed = {b["batch_id"]: b for b in client.get(f"{PREFIX}/api/batches").json()}
        batch = listed[BATCH_ID]
        assert batch["steps"]["verified"] == expected["good"]
        assert batch["steps"]["approved"] == "approved"
        assert batch["steps"]["archived"] == expected["good"]
        assert batch["quarantined"] == expected["bad"] and batch["alarm"]
        assert batch["keeper"] == "keeper" and batch["seal_name"]
        page = client.get(f"{PREFIX}/batches").text
        assert "/dags/stamp_batch/runs/" in page and 'class="alarm"' in page
        detail = client.get(f"{PREFIX}/api/batches/{BATCH_ID}").json()
        states = [d["state"] for d in detail["documents"]]
        assert states[:expected["bad"]] == ["quarantined"] * expected["bad"]
        assert all(d["verdict"] == "valid" and d["archival_code"] for d in detail["documents"][expected["bad"]:])
        html = client.get(f"{PREFIX}/batches/{BATCH_ID}").text
        for chinese in ("校验位不对", "找不到该文件", "文件不是 PDF/OFD"):  # the reason in Chinese, how to fix it
            assert chinese in html
        rows = list(csv.reader(io.StringIO(client.get(f"{PREFIX}/batches/{BATCH_ID}/bad-rows.csv").text)))
        assert len({r[0] for r in rows[1:]}) == expected["bad"]


def test_archive_search_finds_a_record_and_the_server_verifies_its_package(console_env: ConsoleEnv) -> None:
    with console_env.client("admin") as client:
        detail = client.get(f"{PREFIX}/api/batches/{BATCH_ID}").json()
        doc = next(d for d in detail["documents"] if d["archival_code"])
        for q in (doc["licence_number"], doc["archival_code"], doc["holder"]):
            found = client.get(f"{PREFIX}/api/archive", params={"q": q}).json()
            assert doc["archival_code"] in {r["archival_code"] for r in found}, q
        assert client.get(f"{PREFIX}/api/archive", params={"day": "not-a-day"}).status_code == 422
        checked = client.post(f"{PREFIX}/api/archive/{doc['archival_code']}/verify").json()
        assert checked["ok"], checked
        assert client.post(f"{PREFIX}/api/archive/NO-SUCH-CODE/verify").status_code == 404


def test_the_verify_api_accepts_a_sealed_file_and_rejects_a_tampered_one(console_env: ConsoleEnv) -> None:
    doc = next(d for d in console_env.verified_documents() if d.format == "pdf")
    data = Path(doc.output_path).read_bytes()
    tampered = tampered_pdf(data)
    with console_env.client("visitor") as client:
        good = client.post(f"{PREFIX}/api/verify", files={"file": ("good.pdf", data)}).json()
        bad = client.post(f"{PREFIX}/api/verify", files={"file": ("tampered.pdf", tampered)}).json()
        spec = client.get(f"{PREFIX}/openapi.json").json()
    assert good["verdict"] == "valid", good
    assert bad["verdict"] == "not_valid", bad
    assert "/api/verify" in spec["paths"]


def tampered_pdf(data: bytes) -> bytes:
    """The same PDF with one visible character of its page content changed inside the signed bytes."""
    match = re.search(rb"stream\r?\n", data)
    assert match
    at = match.end() + 1
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_metrics_answer_in_prometheus_format_after_the_batch(console_env: ConsoleEnv) -> None:
    expected = console_env.expected
    with console_env.client("admin") as client:
        response = client.get(f"{PREFIX}/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(response.text)
    es_id = console_env.env.es_id
    key = f'batch="{BATCH_ID}",seal="{es_id}"'
    assert samples[f"sealflow_documents_verified{{{key}}}"] == expected["good"]
    assert samples[f"sealflow_documents_sealed{{{key}}}"] == expected["good"]
    assert samples[f"sealflow_documents_quarantined{{{key}}}"] == expected["bad"]
    assert samples["sealflow_archive_records"] >= expected["good"]
    assert samples["sealflow_archive_bytes"] > 0
    assert samples['sealflow_seals{status="active"}'] >= 1
    assert any(k.startswith("sealflow_seal_days_to_expiry{") for k in samples)
    assert "sealflow_filing_backlog" in samples
    assert samples['sealflow_batches{status="done"}'] >= 1
    # A fixity pass (the archive_fixity DAG, as scheduled) shows in the next scrape.
    fixity = console_env.env.stack.run_dag("archive_fixity")  # red when it finds problems; recorded either way
    with console_env.client("admin") as client:
        after = parse_prometheus(client.get(f"{PREFIX}/metrics").text)
    assert "sealflow_fixity_records_checked" in after, fixity.stdout[-3000:] + fixity.stderr[-3000:]
    assert after["sealflow_fixity_records_checked"] >= expected["good"]
    assert after["sealflow_fixity_last_run_timestamp_seconds"] > time.time() - 3600


def test_the_batch_report_after_archiving_names_each_archival_code_and_is_readable_by_the_office(
        console_env: ConsoleEnv) -> None:
    import stat

    from stamping.batch.models import Batch

    with console_env.env.sessions() as session:
        batch = session.get(Batch, BATCH_ID)
        report = Path(batch.report["html"])
    html = report.read_text(encoding="utf-8")
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert f"已归档 {console_env.expected['good']} 件" in html  # written again by archive_batch
    lines = re.findall(r"<tr[^>]*><td>\d+</td>.*?</tr>", html)
    assert [('class="quar"' in line) for line in lines[:console_env.expected["bad"]]] == \
        [True] * console_env.expected["bad"]  # quarantined rows first
    codes = re.findall(r'class="valid">有效</td><td></td><td>([^<]+)</td>', html)
    assert len(codes) == console_env.expected["good"] and all("·" in c for c in codes)  # each with its 档号
    assert "同意 · keeper" in html and "（北京时间）" in html


def parse_prometheus(text: str) -> dict[str, float]:
    """Every sample line ``name{labels} value``; a malformed line fails the test."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r'([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+)', line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[match.group(1)] = float(match.group(2))
    return samples


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


@pytest.mark.browser
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
