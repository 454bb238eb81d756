"""The AI summary's settings, start-up errors and prompt trimming (no bot needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bolt_app.adapters.llm import LlmConfig, OpenAIChat
from bolt_app.runtime.config import ConfigError, llm_config, load_settings
from bolt_app.transcript.summary import MAX_TRANSCRIPT_CHARS, trim

BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_APP_TOKEN": "xapp-1",
    "NOTION_TOKEN": "ntn_1",
    "NOTION_POSTMORTEM_DATABASE_ID": "2f1ad7f2a4b34bd3a7b2c1d0e9f8a7b6",
}
LLM = {"LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_API_KEY": "sk-1", "LLM_MODEL": "m"}


def test_off_by_default_and_on_with_all_three() -> None:
    assert llm_config(load_settings(BASE, dotenv_path=None)) is None
    config = llm_config(load_settings({**BASE, **LLM}, dotenv_path=None))
    assert config is not None and config.model == "m"
    assert "sk-1" not in repr(config)


@pytest.mark.parametrize("missing", sorted(LLM))
def test_a_partial_llm_configuration_names_the_missing_variable(missing: str) -> None:
    env = {**BASE, **{k: v for k, v in LLM.items() if k != missing}}
    with pytest.raises(ConfigError) as raised:
        llm_config(load_settings(env, dotenv_path=None))
    assert raised.value.variable == missing


def test_without_the_openai_package_the_adapter_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # `import openai` now fails
    with pytest.raises(ConfigError, match=r"pip install 'firebreak\[ai\]'"):
        OpenAIChat(LlmConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key="k"))


def test_the_bot_refuses_to_start_with_llm_set_and_no_openai(tmp_path: Path) -> None:
    """A real `python -m bolt_app` whose `import openai` fails: one line, exit 2."""
    blocked = tmp_path / "blocked" / "openai"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    env = {
        **os.environ,
        **BASE,
        **LLM,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'firebreak.db'}",
        "SLACK_API_BASE_URL": "http://127.0.0.1:9/api/",
        "NOTION_API_BASE_URL": "http://127.0.0.1:9",
        "PYTHONPATH": str(tmp_path / "blocked"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bolt_app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "firebreak: LLM_BASE_URL is set but the optional 'openai' package is not installed"
        )
    )


def test_trim_keeps_short_transcripts_whole_and_long_ones_head_and_tail() -> None:
    assert trim(["a", "b"]) == "a\nb"
    lines = [f"{i:05d} " + "x" * 94 for i in range(2000)]  # 100 chars a line
    text = trim(lines)
    assert len(text) <= MAX_TRANSCRIPT_CHARS + 40
    kept = text.splitlines()
    assert kept[0] == lines[0] and kept[-1] == lines[-1]
    marker = next(line for line in kept if line.startswith("[…"))
    omitted = int(marker.split()[1])
    assert omitted == len(lines) - (len(kept) - 1)
