"""The `endpoint:` section of llm_backends.yaml: defaults, valid values, and each bad value named (pure)."""

from __future__ import annotations

import pytest

from LLM.core.config import EndpointSettings, parse_backends

MODELS = "models:\n  a:\n    server_url: http://127.0.0.1:1/v1\n"


def test_settings_default_when_the_section_is_absent():
    config = parse_backends(MODELS, strict=True)
    assert config.endpoint == EndpointSettings()
    assert (config.endpoint.host, config.endpoint.port, config.endpoint.cors_origins) == ("127.0.0.1", 8484, [])


def test_settings_are_read():
    config = parse_backends("endpoint:\n  host: 0.0.0.0\n  port: 9000\n  cors_origins: [http://localhost:3000/]\n"
                            "  allowed_hosts: [mybox.lan]\n  start_timeout_s: 30\n" + MODELS, strict=True)
    assert config.endpoint == EndpointSettings(host="0.0.0.0", port=9000, cors_origins=["http://localhost:3000"],
                                               allowed_hosts=["mybox.lan"], start_timeout_s=30)


@pytest.mark.parametrize("section, path, words", [
    ("port: 0", "endpoint.port", "greater than or equal to 1"),
    ("port: 70000", "endpoint.port", "less than or equal to 65535"),
    ("cors_origins: ['*']", "endpoint.cors_origins", "every web page"),
    ("cors_origins: [http://a.example/path]", "endpoint.cors_origins", "no path"),
    ("cors_origins: [localhost:3000]", "endpoint.cors_origins", "scheme://host"),
    ("start_timeout_s: 0", "endpoint.start_timeout_s", "greater than 0"),
    ("token: abc", "endpoint.token", "Extra inputs"),
])
def test_settings_a_bad_value_is_named_and_the_models_still_load(section, path, words):
    config = parse_backends(f"endpoint:\n  {section}\n" + MODELS)
    assert [p.path for p in config.problems] == [path]
    assert words in config.problems[0].message
    assert list(config.models) == ["a"] and config.endpoint == EndpointSettings()


def test_settings_a_section_that_is_no_mapping_is_named():
    config = parse_backends("endpoint: 8484\n" + MODELS)
    assert [(p.path, p.message) for p in config.problems] == [("endpoint", "must be a mapping, got int")]
