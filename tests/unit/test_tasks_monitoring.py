"""What the deploy hands the monitor host: pinned packages, the ${VAR}s and their 0600 file."""

import pytest

from tasks import monitoring


def test_requirements_are_pinned_and_extras_split():
    reqs = monitoring.requirements()
    assert reqs and all("==" in r for r in reqs)
    assert not any("[" in r for r in reqs), "pip.packages compares names: extras are split into packages"


def test_variables_of_checks_and_channels():
    check = {"url": "https://${SUPABASE_PROJECT_REF}.supabase.co/", "headers": {"apikey": "${SUPABASE_ANON_KEY}"}}
    assert monitoring.variables(check) == {"SUPABASE_PROJECT_REF", "SUPABASE_ANON_KEY"}
    assert monitoring.variables({"url": "https://example.test/$HOME"}) == set()


def test_secrets_file_holds_only_set_variables_single_quoted(monkeypatch):
    monkeypatch.setenv("MONITOR_PING_TOKEN", "tok-123")
    monkeypatch.setenv("MONITOR_EMAIL_URL", "mailtos://u:p$w@smtp.example.test")
    monkeypatch.delenv("MONITOR_WHATSAPP_URL", raising=False)
    conf = {"ping_token": "${MONITOR_PING_TOKEN}",
            "channels": {"email": {"apprise": "${MONITOR_EMAIL_URL}"}, "wa": {"apprise": "${MONITOR_WHATSAPP_URL}"}}}
    text = monitoring.secrets_env(conf)
    assert "MONITOR_PING_TOKEN='tok-123'" in text
    assert "MONITOR_EMAIL_URL='mailtos://u:p$w@smtp.example.test'" in text
    assert "MONITOR_WHATSAPP_URL" not in text


def test_a_quote_in_a_secret_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("MONITOR_PING_TOKEN", "it's")
    with pytest.raises(ValueError, match="MONITOR_PING_TOKEN"):
        monitoring.secrets_env({"ping_token": "${MONITOR_PING_TOKEN}"})
