"""``http_bind`` has one syntax: what the configuration accepts, the server can bind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudwatcher.config import ConfigError, load_settings
from cloudwatcher.config.bind import parse_bind


def settings_with(tmp_path: Path, bind: str) -> str:
    config = tmp_path / "c.toml"
    config.write_text(f'http_bind = "{bind}"\n')
    return load_settings(config).http_bind


@pytest.mark.parametrize("bind", ["127.0.0.1:8765", "[::1]:0", ":8765", "localhost:80", "[fe80::1%eth0]:8765", ""])
def test_the_configuration_accepts_what_the_server_parses(tmp_path: Path, bind: str) -> None:
    assert settings_with(tmp_path, bind) == bind
    if bind:
        parse_bind(bind)


@pytest.mark.parametrize("bind", ["8765", "host", "127.0.0.1:99999", "[::1]"])
def test_the_configuration_refuses_what_the_server_would_refuse(tmp_path: Path, bind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, bind)
    assert "http_bind" in str(caught.value)
