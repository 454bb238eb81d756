"""The LLM client behind the optional AI draft: one chat-completions call, typed errors.

`openai` is an optional extra (`pip install 'firebreak[ai]'`), imported only when a
client is built, so a deployment without the `ai` extra never needs it; a configured one
without it fails at start-up (`ConfigError`), not mid-dump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bolt_app.core.errors import ConfigError, FirebreakError

MAX_OUTPUT_TOKENS = 600
DEFAULT_TIMEOUT_SECONDS = 30.0
#: One retry: the draft is optional, and the dump holds its lock while it waits.
DEFAULT_MAX_RETRIES = 1


class SummaryError(FirebreakError):
    """The model gave no usable summary. `reason` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The AI summary failed: {reason}.")
        self.reason = reason


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str = field(repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES


class ChatModel(Protocol):
    """One chat-completions call: a system and a user message in, the answer's text out."""

    @property
    def model(self) -> str: ...

    def complete(self, system: str, user: str) -> str: ...


class OpenAIChat:
    """`ChatModel` over the `openai` package, pointed at any OpenAI-compatible base URL.

    The package is imported here, not at module level, so a deployment without the `ai`
    extra never needs it; a configured one without it fails at start-up, not mid-dump.
    """

    def __init__(self, config: LlmConfig) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigError(
                "LLM_BASE_URL",
                "is set but the optional 'openai' package is not installed: "
                "pip install 'firebreak[ai]' (or unset LLM_BASE_URL, LLM_API_KEY, LLM_MODEL)",
            ) from None
        self._errors: tuple[type[BaseException], ...] = (openai.OpenAIError,)
        self._config = config
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )

    @property
    def model(self) -> str:
        return self._config.model

    def complete(self, system: str, user: str) -> str:
        try:
            response = self._client.chat.completions.create(
                model=self._config.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                max_tokens=MAX_OUTPUT_TOKENS,
                temperature=0.2,
            )
        except self._errors as error:
            raise SummaryError(_describe(error)) from error
        choices = response.choices or []
        content = choices[0].message.content if choices else None
        if not content or not content.strip():
            raise SummaryError("the model returned no text")
        return content.strip()


def _describe(error: BaseException) -> str:
    """What went wrong, without the request (which could quote the transcript)."""
    status = getattr(error, "status_code", None)
    if status is not None:
        return f"the endpoint answered HTTP {status}"
    return f"the endpoint could not be reached ({type(error).__name__})"
