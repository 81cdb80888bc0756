"""The model behind the fallback: any OpenAI-compatible chat completions endpoint.

The official ``openai`` package (``AsyncOpenAI``) does the HTTP; its own retries are off
so that this module decides: transient failures (timeouts, connection errors, 429 and
5xx) are retried with a short backoff, anything else (400, 401, 403, 404, 422 …) is not.
Every call is bounded twice: each attempt by its own timeout, and all attempts of a turn
by the caller's deadline (``asyncio.wait_for`` in :mod:`salon.llm.responder`), so a slow
provider can neither hold the conversation nor push the answer past the window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from salon.llm.config import LlmSettings

logger = logging.getLogger(__name__)

__all__ = ["Completion", "LlmClient", "LlmUnavailable"]

_TRANSIENT = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
              openai.InternalServerError)


class LlmUnavailable(RuntimeError):
    """No usable completion: the reason is recorded and the offline answer goes out."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer, which model gave it, its token counts and the attempts it took."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int


def _chat_message(message: Mapping[str, str]) -> ChatCompletionMessageParam:
    """One of the prompt's ``role``/``content`` messages in the package's typed form."""
    role, content = message["role"], message["content"]
    if role == "system":
        return {"role": "system", "content": content}
    if role == "user":
        return {"role": "user", "content": content}
    if role == "assistant":
        return {"role": "assistant", "content": content}
    raise LlmUnavailable(f"unsupported message role {role!r}", 0)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class LlmClient:
    """Chat completions from the configured endpoint, with bounded retries."""

    def __init__(self, settings: LlmSettings, *, backoff_seconds: float = 0.2) -> None:
        if not settings.enabled:
            raise ValueError("SALON_LLM_BASE_URL and SALON_LLM_MODEL must both be set to use a model")
        self.settings = settings
        self.backoff_seconds = backoff_seconds
        self._client = AsyncOpenAI(
            base_url=settings.base_url,
            # Local servers (Ollama, vLLM, LM Studio) take any key; the package needs one.
            api_key=settings.api_key or "unauthenticated-local-endpoint",
            timeout=settings.attempt_timeout_seconds,
            max_retries=0,
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, messages: Sequence[dict[str, str]], *, max_tokens: int = 300) -> Completion:
        """One completion, retrying transient failures; raises :class:`LlmUnavailable`."""
        chat = [_chat_message(message) for message in messages]
        attempts = 0
        last = "no attempt"
        while attempts <= self.settings.max_retries:
            attempts += 1
            try:
                response: Any = await self._client.chat.completions.create(
                    model=str(self.settings.model),
                    messages=chat,
                    temperature=0.3,
                    max_tokens=max_tokens,
                )
            except openai.APIError as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'status_code', '') or exc.message}"
                if not _transient(exc):
                    raise LlmUnavailable(last, attempts) from exc
                logger.warning("model call failed (attempt %d): %s", attempts, last)
                await asyncio.sleep(self.backoff_seconds * attempts)
                continue
            choice = response.choices[0] if response.choices else None
            text = (choice.message.content or "").strip() if choice is not None else ""
            if not text:
                raise LlmUnavailable("empty completion", attempts)
            usage = response.usage
            return Completion(
                text=text,
                model=str(response.model or self.settings.model),
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                attempts=attempts,
            )
        raise LlmUnavailable(f"gave up after {attempts} attempts: {last}", attempts)
