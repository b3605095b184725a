"""The demo ends by handing the user a seal and a PIN (in a 0600 file) that really stamp a document:
the closing lines are followed as written, with the real ``sealflow`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from kernel.settings import Settings, local_url
from sealflow import stack
from sealflow.batch_runner import personal_pin_file, prepare_demo_seal
from sealflow.demo_batch import stamp_yourself
from sealflow.stack.ports import free_port_block
from stamping.batch.samples import write_batch
from stamping.tsa.server import make_server
from tests.stack_fixtures import stop_stack


def test_the_closing_lines_stamp_and_verify_a_document(tmp_path: Path) -> None:
    # The demo starts its stack's identity simulator (its people are checked on applying and using):
    # here on a free port, stopped at the end.
    settings = Settings(home=tmp_path / "var", kek="55" * 32, review_levels=1, identity_port=free_port_block(1))
    try:
        _closing_lines_work(settings, tmp_path)
    finally:
        stop_stack(settings.home)


def _closing_lines_work(settings: Settings, tmp_path: Path) -> None:
    seal = prepare_demo_seal(settings)
    assert stack.alive(settings, "identity") is not None
    pin_file = personal_pin_file(settings)
    assert pin_file.stat().st_mode & 0o777 == 0o600
    pin = pin_file.read_text().strip()
    write_batch(tmp_path / "samples", 2, bad=False)
    lines = stamp_yourself(settings, seal, tmp_path / "samples")
    assert seal.personal_es_id in lines[0]
    assert not any(pin in line for line in lines)  # the PIN stays in its file
    commands = [line.strip() for line in lines if line.startswith("  ")]
    # The demo leaves its stack up, time-stamp authority included: every seal carries a token.
    tsa = make_server("127.0.0.1", 0, settings.state_dir / "tsa", settings.state_dir / "ca")
    threading.Thread(target=tsa.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEALFLOW_")}, "SEALFLOW_KEK": "55" * 32,
           "SEALFLOW_REVIEW_LEVELS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SEALFLOW_TSA_URL": local_url(tsa.server_address[1], "/"),
           "SEALFLOW_IDENTITY_PORT": str(settings.identity_port)}
    script = "set -e\n" + "\n".join(commands)
    try:
        done = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    finally:
        tsa.shutdown()
        tsa.server_close()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "\nVALID " in done.stdout and "failed 0" in done.stdout
    assert (settings.state_dir / "demo" / "stamped-by-me.pdf").exists()


def test_an_older_demo_without_a_kept_pin_says_how_to_start_afresh(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "var", kek="55" * 32)
    lines = stamp_yourself(settings, SimpleNamespace(personal_es_id="450000000000000001", keeper="keeper"),
                           tmp_path)
    assert "make clean && make demo" in " ".join(lines)
    assert "PIN" in lines[1]
