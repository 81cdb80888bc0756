"""``SALON_LLM_*``: a model only when the configuration names one; bad values refused."""

from __future__ import annotations

import pytest

from salon.llm.client import LlmClient
from salon.llm.config import LlmSettings, load_llm_settings


def test_no_endpoint_means_offline() -> None:
    assert not load_llm_settings({}).enabled
    assert load_llm_settings({}).model_label == "offline"
    assert not load_llm_settings({"SALON_LLM_BASE_URL": "http://127.0.0.1:11434/v1"}).enabled
    assert not load_llm_settings({"SALON_LLM_MODEL": "llama3.1"}).enabled
    with pytest.raises(ValueError, match="must both be set"):
        LlmClient(LlmSettings())


def test_values_are_read_and_checked() -> None:
    settings = load_llm_settings({
        "SALON_LLM_BASE_URL": " https://api.openai.com/v1 ", "SALON_LLM_MODEL": "gpt-4o-mini",
        "SALON_LLM_API_KEY": "sk-x", "SALON_LLM_DEADLINE_SECONDS": "5", "SALON_LLM_MAX_RETRIES": "0",
        "SALON_LLM_AUDIT_RETENTION_DAYS": "30",
    })
    assert settings.enabled and settings.base_url == "https://api.openai.com/v1"
    assert (settings.model_label, settings.deadline_seconds, settings.max_retries) == ("gpt-4o-mini", 5.0, 0)
    assert (settings.attempt_timeout_seconds, settings.audit_retention_days) == (6.0, 30)
    with pytest.raises(ValueError, match="SALON_LLM_DEADLINE_SECONDS must be a number"):
        load_llm_settings({"SALON_LLM_DEADLINE_SECONDS": "eight"})
    with pytest.raises(ValueError, match="at least"):
        load_llm_settings({"SALON_LLM_AUDIT_RETENTION_DAYS": "0"})
