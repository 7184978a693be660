"""A bad agent config gets an error naming the key and the problem, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from pantau.core.configfile import ConfigError, load_yaml_model
from tests.helpers import run_pantau

GOOD = """
site: {id: s1, district: d1, lat: -3.8, lon: 102.26}
broker: {url: "mqtt://127.0.0.1:1883"}
cameras:
  - {id: c1, rtsp_url: "rtsp://10.0.0.2/stream1", username: admin, password: x}
sensors:
  - {type: simulated, id: cabinet}
  - {type: host}
queue: {path: /tmp/q.sqlite, max_age_s: 2d}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    """The documented shape loads, durations in human form included."""
    config = load_yaml_model(write(tmp_path, GOOD), AgentConfig)
    assert config.queue.max_age_s == 2 * 86400
    assert config.probe.interval_s == 10


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("lat: -3.8", "lat: -300"), "site.lat: Input should be greater than or equal to -90"),
        (("id: c1", "id: 'c 1'"), "cameras.0.id: String should match pattern"),
        (
            ('rtsp_url: "rtsp://10.0.0.2/stream1"', 'rtsp_url: "http://x"'),
            "cameras.0: Value error, rtsp_url 'http://x' must start with rtsp://",
        ),
        (("type: host", "type: thermometer"), "sensors.1: Input tag 'thermometer' found"),
        (("queue: {path", "queu: {path"), "queu: unknown key"),
        (("max_age_s: 2d", "max_age_s: two days"), "queue.max_age_s: Value error, 'two days' is"),
        (
            ('broker: {url: "mqtt://127.0.0.1:1883"}', 'broker: {url: "ftp://x"}'),
            "broker: Value error, url 'ftp://x' must start with mqtt://",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    """Each mistake is reported with its dotted key path."""
    with pytest.raises(ConfigError) as info:
        load_yaml_model(write(tmp_path, GOOD.replace(*change)), AgentConfig)
    assert expected in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    """Unreadable files and YAML syntax errors are explained too."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_yaml_model(tmp_path / "nope.yaml", AgentConfig)
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_yaml_model(write(tmp_path, "site:\n  - [unclosed\n"), AgentConfig)


def test_cli_prints_error_without_traceback(tmp_path: Path) -> None:
    """`pantau agent --config bad.yaml` exits 2 with the key named and no traceback."""
    path = write(tmp_path, GOOD.replace("lon: 102.26", "lon: east"))
    result = run_pantau(
        "agent",
        "--config",
        str(path),
        timeout_s=60,
    )
    assert result.returncode == 2
    assert "site.lon: Input should be a valid number" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_errors_never_echo_secrets(tmp_path: Path) -> None:
    """Passwords in a camera section, in URLs or in a mistyped secret field are not repeated in
    the error (which ends up in logs and tickets)."""
    text = GOOD.replace(
        'rtsp_url: "rtsp://10.0.0.2/stream1"',
        'rtsp_url: "http://admin:hunter2@10.0.0.2/x", password: "s3cr3t-cam"',
    ).replace(
        'broker: {url: "mqtt://127.0.0.1:1883"}', "broker: {url: 'ftp://u:brokerpw@x', password: 7}"
    )
    with pytest.raises(ConfigError) as info:
        load_yaml_model(write(tmp_path, text), AgentConfig)
    message = str(info.value)
    assert "rtsp_url 'http://admin:***@10.0.0.2/x' must start with rtsp://" in message
    assert "broker.password: Input should be a valid string (value hidden)" in message
    for secret in ("hunter2", "s3cr3t-cam", "brokerpw"):
        assert secret not in message
