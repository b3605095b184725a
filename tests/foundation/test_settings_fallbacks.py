"""What a setting left empty falls back to: an endpoint is the embedded stack's server on this machine,
a file or folder sits in the state directory; a configured value always wins."""

from __future__ import annotations

from pathlib import Path

from kernel.settings import Settings


def test_an_empty_endpoint_is_the_embedded_server_on_its_port() -> None:
    settings = Settings(s3_port=1, replica_s3_port=2, platform_port=3, tsa_port=4)
    assert (settings.resolved_s3_endpoint, settings.resolved_replica_endpoint, settings.resolved_platform_url,
            settings.resolved_tsa_url) == ("http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3",
                                           "http://127.0.0.1:4/")


def test_a_configured_endpoint_wins_over_the_port() -> None:
    settings = Settings(s3_endpoint="http://s3", replica_s3_endpoint="http://r", platform_url="http://p",
                        tsa_url="http://t")
    assert (settings.resolved_s3_endpoint, settings.resolved_replica_endpoint, settings.resolved_platform_url,
            settings.resolved_tsa_url) == ("http://s3", "http://r", "http://p", "http://t")


def test_an_empty_file_setting_is_a_place_in_the_state_directory(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.resolved_kek_file == tmp_path / "kek.hex"
    assert settings.resolved_sms_outbox == tmp_path / "sms"
    assert settings.resolved_approval_mac_key_file == tmp_path / "approval-mac.key"
    assert settings.resolved_replica_data_dir == tmp_path / "seaweedfs-replica"


def test_a_configured_file_setting_wins(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kek_file="/k", sms_outbox="/s", approval_mac_key_file="/m",
                        replica_data_dir="/r")
    assert [settings.resolved_kek_file, settings.resolved_sms_outbox, settings.resolved_approval_mac_key_file,
            settings.resolved_replica_data_dir] == [Path("/k"), Path("/s"), Path("/m"), Path("/r")]
