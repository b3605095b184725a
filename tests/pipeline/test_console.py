"""The SealFlow console in Airflow's api-server, on a batch that went through the pipeline: who may see
what, what each page and API answers, the metrics a Prometheus scrape reads — and the same pages in a
real browser (Debian's Chromium driven by Playwright): the keeper logs in through Airflow's own login
page and answers a second batch's approval from the inbox (a wrong code first); an administrator opens
every console page, searches and verifies that batch's archived package, opens its page preview, gets
a share link and an EEP export, uploads a tampered file and sees it rejected; an operator retries a
dead-lettered filing from the health page and the dispatcher sends it. Screenshots go to
``test-artifacts/console/`` (or ``$SEALFLOW_TEST_ARTIFACTS/console``).

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

import httpx
import pytest

from tests.pipeline import console_fixtures
from tests.pipeline.console_fixtures import BATCH_ID, INBOX_BATCH_ID, OTHER_KEEPER, ConsoleEnv
from tests.work_bucket import read_object

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


def test_an_archived_record_gives_a_share_link_an_eep_export_and_a_page_preview(console_env: ConsoleEnv,
                                                                               tmp_path: Path) -> None:
    import tarfile

    from archive.eep import read_eep
    from archive.integration import trust_store
    from archive.offline import verify_package
    from archive.retrieve import unpack_share

    with console_env.client("admin") as client:
        detail = client.get(f"{PREFIX}/api/batches/{BATCH_ID}").json()
        code = next(d for d in detail["documents"] if d["archival_code"])["archival_code"]
        share = client.post(f"{PREFIX}/api/archive/{code}/share")
        assert share.status_code == 200, share.text
        shared = tmp_path / "shared.tar"
        shared.write_bytes(httpx.get(share.json()["url"], timeout=60).content)  # what the link's receiver gets
        eep = client.get(f"{PREFIX}/archive/{code}/eep")
        assert eep.status_code == 200, eep.text
        preview = client.get(f"{PREFIX}/archive/{code}/preview.png")
        beyond = client.get(f"{PREFIX}/archive/{code}/preview.png", params={"page": 5})
    assert tarfile.is_tarfile(shared)
    checked = verify_package(unpack_share(shared, tmp_path / "unpacked"), trust_store(console_env.env.settings))
    assert checked.ok and checked.archival_code == code, checked.problems
    (tmp_path / "x.eep.xml").write_bytes(eep.content)
    assert read_eep(tmp_path / "x.eep.xml").signature_ok is True
    assert preview.headers["content-type"] == "image/png" and preview.content.startswith(b"\x89PNG")
    assert beyond.status_code == 422 and "no page 6" in beyond.json()["detail"]
    with console_env.client("applicant") as applicant:
        assert applicant.post(f"{PREFIX}/api/archive/{code}/share").status_code == 403
        assert applicant.get(f"{PREFIX}/archive/{code}/eep").status_code == 403
        assert applicant.get(f"{PREFIX}/archive/{code}/preview.png").status_code == 403


def test_the_verify_api_accepts_a_sealed_file_and_rejects_a_tampered_one(console_env: ConsoleEnv) -> None:
    doc = next(d for d in console_env.verified_documents() if d.format == "pdf")
    data = read_object(console_env.env.settings, doc.output_path)
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


def _login(browser, base: str, user: str, password: str):
    """A new browser context logged in through Airflow's own login page (SimpleAuthManager)."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{base}/auth/login?next={base}/sealflow/batches")
    page.locator("input").first.fill(user)
    page.locator("input[type=password]").fill(password)
    return context, page


def _submit_login(page) -> None:
    page.locator("input[type=password]").press("Enter")
    page.wait_for_function("document.cookie.includes('_token') || location.pathname !== '/auth/login'")
    page.wait_for_timeout(500)


def _make_dead_letter(console_env: ConsoleEnv) -> str:
    """The inbox batch's archive registration (queued by archive_batch), put in the state a platform's 4xx
    leaves it in. Resending is safe whatever it was: the platform answers a record it holds with its receipt."""
    from sqlalchemy import select

    from filing.outbox import DEAD, OutboxRecord
    from kernel.db import transaction

    with transaction(console_env.env.sessions) as session:
        row = session.scalar(select(OutboxRecord).where(OutboxRecord.subject == INBOX_BATCH_ID).limit(1))
        assert row is not None, "archive_batch queued no filing record for the batch"
        row.state, row.attempts, row.last_error = DEAD, 12, "platform refused (HTTP 409): simulated for the test"
        return row.record_id


@pytest.mark.browser
def test_a_person_logs_in_and_uses_every_console_page(browser, console_env: ConsoleEnv, tmp_path: Path) -> None:
    started = time.monotonic()
    base = console_env.base
    env = console_env.env
    # A second batch goes through the pipeline now; the keeper answers its approval in the browser.
    proc, pending = console_env.start_batch(INBOX_BATCH_ID)
    try:
        _inbox_steps(browser, console_env, pending)
    finally:
        done = console_env.finish(proc)
    assert done.returncode == 0, done.stdout[-4000:]
    archived = env.stack.run_dag("archive_batch", {"batch_id": INBOX_BATCH_ID})
    assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]

    context, page = _login(browser, base, "admin", console_env.passwords["admin"])
    # Nothing without logging in: the console answers 401 to the browser too.
    assert page.goto(f"{base}/sealflow/batches").status == 401
    page.goto(f"{base}/auth/login?next={base}/sealflow/batches")
    page.locator("input").first.fill("admin")
    page.locator("input[type=password]").fill(console_env.passwords["admin"])
    _shot(page, "00-login")
    _submit_login(page)

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

    _archive_steps(page, console_env, tmp_path)

    doc = next(d for d in console_env.verified_documents() if d.format == "pdf")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(tampered_pdf(read_object(console_env.env.settings, doc.output_path)))
    page.goto(f"{base}/sealflow/verify")
    page.set_input_files("input[type=file]", str(tampered))
    page.click("button:has-text('验章')")
    result = page.locator("#result")
    result.wait_for()
    assert "无效" in result.inner_text() and "not_valid" in result.inner_text()
    assert "盖章后文件被改动" in result.inner_text()  # the failed check, said plainly
    _shot(page, "10-verify-tampered")
    context.close()

    _health_steps(browser, console_env)
    print(f"browser test: {time.monotonic() - started:.1f}s, screenshots in {ARTIFACTS / 'console'}")


def _inbox_steps(browser, console_env: ConsoleEnv, pending) -> None:
    """The keeper answers from the inbox: a wrong code keeps the task waiting, the right one approves.
    Another keeper and another role get nothing, and the gate refuses the other keeper's answer."""
    base, env = console_env.base, console_env.env
    code = env.last_code(INBOX_BATCH_ID)
    with console_env.client(OTHER_KEEPER) as other:
        assert other.get(f"{PREFIX}/api/inbox").json() == []  # a keeper, but not this seal's
        refused = other.patch(f"/api/v2/dags/stamp_batch/dagRuns/{pending.run_id}/taskInstances/"
                              f"{pending.task_id}/{pending.map_index}/hitlDetails",
                              json={"chosen_options": ["Approve"], "params_input": {"code": code}})
        assert refused.status_code == 403, refused.text  # the answer gate: not the keeper (costs no try)
    with console_env.client("applicant") as applicant:
        assert applicant.get(f"{PREFIX}/inbox").status_code == 403

    context, page = _login(browser, base, "keeper", console_env.passwords["keeper"])
    _submit_login(page)
    assert page.goto(f"{base}/sealflow/inbox").status == 200
    box = page.locator(f"section.approval[data-batch='{INBOX_BATCH_ID}']")
    assert box.count() == 1
    assert "4" in box.locator("tr", has_text="文件数").inner_text()
    assert box.locator("tr", has_text="剩余尝试次数").locator("td").inner_text() == "5"
    assert box.locator("img.seal").evaluate("img => img.naturalWidth") > 0  # the seal's picture
    page.wait_for_function("document.querySelector('.countdown').textContent.includes(':')")
    assert code not in page.content()  # the code is never sent to the page
    _shot(page, "03-inbox")

    wrong = f"{(int(code) + 1) % 10**6:06d}"
    box.locator("input[name=code]").fill(wrong)
    box.locator("form.approve button").click()
    result = box.locator(".answer-result.bad")
    result.wait_for()
    assert "验证码不对" in result.inner_text() and "4 tries left" in result.inner_text()
    _shot(page, "04-inbox-wrong-code")
    assert env.api.pending_approvals("stamp_batch", pending.run_id)  # the task still waits for the keeper

    box.locator("input[name=code]").fill(code)
    box.locator("form.approve button").click()
    box.locator(".answer-result.ok").wait_for()
    assert "已同意" in box.locator(".answer-result").inner_text()
    _shot(page, "05-inbox-approved")
    context.close()


def _archive_steps(page, console_env: ConsoleEnv, tmp_path: Path) -> None:
    """Search, verify, preview, share link and EEP export of a document of the inbox batch."""
    import tarfile

    from archive.eep import read_eep
    from archive.integration import trust_store
    from archive.offline import verify_package
    from archive.retrieve import unpack_share

    base = console_env.base
    with console_env.client("admin") as client:
        detail = client.get(f"{PREFIX}/api/batches/{INBOX_BATCH_ID}").json()
    doc = next(d for d in detail["documents"] if d["archival_code"])
    page.goto(f"{base}/sealflow/archive")
    page.fill("input[name=q]", doc["licence_number"])
    page.click("button:has-text('查找')")
    row = page.locator("tr", has_text=doc["archival_code"])
    assert row.count() == 1
    row.locator("button").click()
    page.wait_for_selector("text=档案包完整有效")
    _shot(page, "06-archive-verified")

    page.locator("a", has_text=doc["archival_code"]).first.click()
    page.wait_for_url("**/sealflow/archive/*")
    preview = page.locator("img#preview")
    page.wait_for_function("document.querySelector('img#preview').complete")
    assert preview.evaluate("img => img.naturalWidth") > 500  # the sealed page, drawn on the server
    _shot(page, "07-archive-preview")

    page.click("button:has-text('生成分享链接')")
    page.wait_for_load_state()
    assert page.locator("#share-url").count() == 1, page.locator("body").inner_text()[:3000]
    url = page.locator("#share-url").input_value()
    assert "versionId=" in url and page.locator("#share-expiry").inner_text()
    _shot(page, "08-archive-share-link")
    shared = tmp_path / "shared.tar"
    shared.write_bytes(httpx.get(url, timeout=60).content)  # what the receiver of the link downloads
    assert tarfile.is_tarfile(shared)
    checked = verify_package(unpack_share(shared, tmp_path / "unpacked"), trust_store(console_env.env.settings))
    assert checked.ok and checked.archival_code == doc["archival_code"], checked.problems

    with page.expect_download() as download:
        page.click("a:has-text('导出 EEP')")
    eep = tmp_path / "record.eep.xml"
    download.value.save_as(eep)
    content = read_eep(eep)
    assert content.signature_ok is True and content.documents
    _shot(page, "09-archive-eep")


def _health_steps(browser, console_env: ConsoleEnv) -> None:
    """An operator retries a dead letter from the health page; the outbox dispatcher sends it."""
    from sqlalchemy import select

    from filing.identity import pin_platform_certificate, setup_system_identity
    from filing.outbox import OutboxRecord
    from stamping.audit.models import AuditEntry

    base, env = console_env.base, console_env.env
    record_id = _make_dead_letter(console_env)
    with console_env.client("archivist") as archivist:  # may see the health page, may not retry
        assert archivist.post(f"{PREFIX}/api/dead-letters/{record_id}/retry").status_code == 403
    context, page = _login(browser, base, "operator", console_env.passwords["operator"])
    _submit_login(page)
    assert page.goto(f"{base}/sealflow/health").status == 200
    for heading in ("当前告警", "备案", "30 天内到期的印章", "密钥库", "最近一次完整性检查", "审计检查点"):
        assert page.get_by_role("heading", name=heading).count() == 1, heading
    page.locator("tr", has_text=record_id).locator("button:has-text('重试')").click()
    page.locator("#retried").wait_for()
    _shot(page, "11-health-dead-letter-retried")
    context.close()
    with env.sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "filing.retry")
                               .order_by(AuditEntry.seq.desc()).limit(1))
    assert entry.actor == "operator" and entry.payload["record_id"] == record_id
    setup_system_identity(env.settings)  # the sending system's key: made once per stack
    pin_platform_certificate(env.settings)
    filed = env.stack.run_dag("file_records")  # the outbox dispatcher, as the requested run does it
    assert filed.returncode == 0, filed.stdout[-3000:] + filed.stderr[-3000:]
    with env.sessions() as session:
        row = session.scalar(select(OutboxRecord).where(OutboxRecord.record_id == record_id))
    assert row.state == "sent" and row.receipt, (row.state, row.last_error)
