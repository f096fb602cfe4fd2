"""What a model's text side needs, in-process or served: its tokenizer files and the one
way optprompt applies a chat template."""

from __future__ import annotations

from typing import Any

__all__ = ["TOKENIZER_FILES", "chat_formatter"]

#: Files of which a model directory needs at least one to have a tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "tokenizer_config.json",
)


def chat_formatter(tokenizer: Any):  # type: ignore[no-untyped-def]
    """messages -> prompt text through ``tokenizer``'s chat template (the generation prompt
    added): the one way optprompt applies a chat template, in-process and served."""

    def fmt(messages: list[dict[str, str]]) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return fmt
