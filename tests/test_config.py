"""APIConfig: environment reading, validation, and keeping the secret out of sight."""

from __future__ import annotations

import pytest

from sorna_sdk import APIConfig, ConfigurationError

SECRET = "s3cr3t-value-that-must-not-leak"


def test_from_env_reads_the_three_variables() -> None:
    env = {
        "SORNA_ACCESS_KEY": "AKIA1",
        "SORNA_SECRET_KEY": SECRET,
        "SORNA_ENDPOINT": "http://127.0.0.1:9000/prefix/",
    }
    config = APIConfig.from_env(env)
    assert config.access_key == "AKIA1"
    assert config.secret_key == SECRET
    assert config.endpoint == "http://127.0.0.1:9000/prefix"
    assert config.version == "v2.20170315"
    assert config.major_version == "v2"


def test_default_endpoint_is_the_public_one() -> None:
    config = APIConfig.from_env({"SORNA_ACCESS_KEY": "a", "SORNA_SECRET_KEY": "b"})
    assert config.endpoint == "https://api.sorna.io"


@pytest.mark.parametrize("missing", ["SORNA_ACCESS_KEY", "SORNA_SECRET_KEY"])
def test_missing_variable_is_named(missing: str) -> None:
    env = {"SORNA_ACCESS_KEY": "a", "SORNA_SECRET_KEY": SECRET}
    del env[missing]
    with pytest.raises(ConfigurationError, match=missing) as info:
        APIConfig.from_env(env)
    assert SECRET not in str(info.value)
    assert not isinstance(info.value, KeyError)


def test_from_env_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORNA_ACCESS_KEY", "AK-env")
    monkeypatch.setenv("SORNA_SECRET_KEY", SECRET)
    monkeypatch.delenv("SORNA_ENDPOINT", raising=False)
    config = APIConfig.from_env()
    assert config.access_key == "AK-env"
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert "AK-env" in repr(config)


def test_overrides_win_over_the_environment() -> None:
    config = APIConfig.from_env({"SORNA_ACCESS_KEY": "a"}, secret_key="given", timeout=5.0)
    assert config.secret_key == "given"
    assert config.timeout == 5.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"endpoint": "http://"}, "endpoint"),
        ({"endpoint": "http://h/?q=1"}, "query"),
        ({"hash_name": "md4x"}, "hash_name"),
        ({"hash_name": "shake_256"}, "hash_name"),
        ({"version": "2017"}, "version"),
        ({"max_retries": -1}, "max_retries"),
        ({"access_key": ""}, "access_key"),
        ({"secret_key": ""}, "secret_key"),
    ],
)
def test_invalid_values_are_refused(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"access_key": "a", "secret_key": SECRET, **changes}
    with pytest.raises(ConfigurationError, match=message) as info:
        APIConfig(**values)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


def test_replace_returns_a_changed_copy_and_config_is_frozen() -> None:
    config = APIConfig(access_key="a", secret_key=SECRET)
    other = config.replace(hash_name="sha1")
    assert other.hash_name == "sha1" and config.hash_name == "sha256"
    with pytest.raises(AttributeError):
        config.access_key = "b"  # type: ignore[misc]
