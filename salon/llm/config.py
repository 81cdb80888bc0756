"""Settings of the styling fallback, read from the environment.

- ``SALON_LLM_BASE_URL``: an OpenAI-compatible endpoint (``https://api.openai.com/v1``,
  an Azure OpenAI ``…/openai/v1`` URL, vLLM, Ollama ``http://host:11434/v1``, LM Studio).
- ``SALON_LLM_MODEL``: the model (or Azure deployment) name.
- ``SALON_LLM_API_KEY``: the key; local servers without authentication need none.
- ``SALON_LLM_DEADLINE_SECONDS`` (8): the whole model part of one turn, retries and one
  repair included; past it the offline answer goes out.
- ``SALON_LLM_ATTEMPT_TIMEOUT_SECONDS`` (6): one HTTP call.
- ``SALON_LLM_MAX_RETRIES`` (2): retries of transient failures (timeouts, connection
  errors, 429, 5xx) within the deadline.
- ``SALON_LLM_AUDIT_RETENTION_DAYS`` (90): how long audit rows are kept.

The model is used only when both the base URL and the model are set. Without them every
answer comes from the offline responder and nothing leaves the machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LlmSettings", "load_llm_settings"]


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class LlmSettings:
    """The fallback's provider, deadlines, retries and audit retention (see the module's
    docstring for each variable).
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    deadline_seconds: float = 8.0
    attempt_timeout_seconds: float = 6.0
    max_retries: int = 2
    audit_retention_days: int = 90

    @property
    def enabled(self) -> bool:
        """A provider is called only when the configuration names one."""
        return bool(self.base_url and self.model)

    @property
    def model_label(self) -> str:
        return self.model if self.enabled and self.model else "offline"


def load_llm_settings(env: Mapping[str, str] | None = None) -> LlmSettings:
    """The settings from ``env`` (default: the process's environment); a malformed or too
    small number raises ``ValueError``.
    """
    env = os.environ if env is None else env
    return LlmSettings(
        base_url=env.get("SALON_LLM_BASE_URL", "").strip() or None,
        model=env.get("SALON_LLM_MODEL", "").strip() or None,
        api_key=env.get("SALON_LLM_API_KEY", "").strip() or None,
        deadline_seconds=_number(env, "SALON_LLM_DEADLINE_SECONDS", 8.0, 0.1),
        attempt_timeout_seconds=_number(env, "SALON_LLM_ATTEMPT_TIMEOUT_SECONDS", 6.0, 0.1),
        max_retries=int(_number(env, "SALON_LLM_MAX_RETRIES", 2, 0)),
        audit_retention_days=int(_number(env, "SALON_LLM_AUDIT_RETENTION_DAYS", 90, 1)),
    )
