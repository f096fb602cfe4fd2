"""Tiny things to run studies on in tests: a random 2-layer Llama and a labelled data set.

Everything is built in a directory you give, in about a second on a CPU: a BPE tokenizer
trained on the data's words (``tokenizers``), a randomly initialised ``LlamaForCausalLM``
with a chat template, saved like any local model, and a JSONL file of short labelled
texts whose labels are carried by cue words (so strategies that read the train split find
something to read). Scores on this model are meaningless but deterministic; that is all
the conformance checks need.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optprompt.models.loading import LoadedModel

__all__ = [
    "CUE_WORDS",
    "FILLER_WORDS",
    "TinyStudyEnv",
    "make_tiny_model_dir",
    "make_tiny_study_env",
    "scratch_dir",
    "write_labelled_jsonl",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Words that carry each label of :func:`write_labelled_jsonl`'s data.
CUE_WORDS: dict[str, tuple[str, ...]] = {
    "positive": ("great", "good", "lovely", "excellent", "friendly"),
    "negative": ("awful", "bad", "terrible", "poor", "rude"),
    "neutral": ("okay", "average", "ordinary", "usual", "plain"),
}
#: Words shared by every label.
FILLER_WORDS: tuple[str, ...] = tuple(
    "movie food service hotel staff room price quality the a was is and but very really "
    "would again place night meal".split()
)


def write_labelled_jsonl(path: str | Path, *, n: int = 36, seed: int = 0) -> Path:
    """Write ``n`` short texts with columns ``id``, ``text``, ``label`` (balanced labels).

    Each text has a few filler words and one or two cue words of its label; one text in
    five also has a cue word of another label, so the labels are learnable but not trivial.
    """
    path = Path(path)
    rng = random.Random(seed)
    labels = sorted(CUE_WORDS)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            label = labels[i % len(labels)]
            words = rng.choices(FILLER_WORDS, k=rng.randint(3, 8))
            words += rng.sample(CUE_WORDS[label], rng.randint(1, 2))
            if rng.random() < 0.2:
                other = rng.choice([lbl for lbl in labels if lbl != label])
                words.append(rng.choice(CUE_WORDS[other]))
            rng.shuffle(words)
            f.write(json.dumps({"id": f"ex{i}", "text": " ".join(words), "label": label}) + "\n")
    return path


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars while saving and loading the tiny model (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def tiny_tokenizer(corpus: Sequence[str], *, chat: bool, bos: bool):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer (vocabulary 400) trained on ``corpus`` in milliseconds.

    Args:
        chat: Give it a ChatML-style chat template.
        bos: Prepend a BOS token to every encoding, as Llama tokenizers do.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(corpus, trainer)
    if bos:
        from tokenizers.processors import TemplateProcessing

        tk.post_processor = TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def _tiny_tokenizer(*, chat: bool):  # type: ignore[no-untyped-def]
    vocab = list(FILLER_WORDS) + [w for cues in CUE_WORDS.values() for w in cues] + list(CUE_WORDS)
    corpus = [" ".join(random.Random(i).choices(vocab, k=12)) for i in range(200)]
    corpus += ["Input: Answer: Text: Label: Review: Sentiment: Classify the Positive Negative Neutral"] * 5
    return tiny_tokenizer(corpus, chat=chat, bos=not chat)


def make_tiny_model_dir(
    root: str | Path, *, chat: bool = True, seed: int = 0, tokenizer: Any = None, name: str | None = None
) -> Path:
    """Save a 2-layer, hidden-64 random Llama and its tokenizer under ``root``; return the dir.

    With ``chat`` the tokenizer has a ChatML-style chat template, so studies render
    prompts through it as they would for an instruct model. ``tokenizer`` replaces the
    kit's own (see :func:`tiny_tokenizer`); ``name`` the directory's name.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer if tokenizer is not None else _tiny_tokenizer(chat=chat)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=True,
        initializer_range=0.3,  # large weights: log-probs that differ between prompts
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    out = Path(root) / (name or ("tiny-llama-chat" if chat else "tiny-llama"))
    with _quiet_transformers():
        model.save_pretrained(out)
        tok.save_pretrained(out)
    return out


@dataclass
class TinyStudyEnv:
    """A tiny model and data set in ``root``, and study specs that use them.

    Build one with :func:`make_tiny_study_env`. The model is loaded once, on first use
    of :attr:`model`, and shared by every study run in this environment; ``memo`` keeps
    study runs that several conformance checks read.
    """

    root: Path
    model_dir: Path
    data: Path
    prompt: str = "Classify the review."
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _model: LoadedModel | None = field(default=None, repr=False)
    _dirs: int = field(default=0, repr=False)

    @property
    def model(self) -> LoadedModel:
        """The tiny model, loaded on CPU."""
        if self._model is None:
            from optprompt.models import load_model
            from optprompt.plugins import load_plugins

            with _quiet_transformers():
                self._model = load_model(str(self.model_dir), load_plugins(), device="cpu", progress=False)
        return self._model

    def new_dir(self, label: str) -> Path:
        """A fresh, empty directory under ``root`` (for one study's output)."""
        self._dirs += 1
        path = self.root / f"{self._dirs:03d}-{label}"
        path.mkdir(parents=True)
        return path

    def study_dict(
        self,
        strategy: str,
        options: dict[str, Any] | None = None,
        *,
        output: str | Path,
        seed: int = 0,
        cache: str | Path | None = None,
        name: str = "conformance",
    ) -> dict[str, Any]:
        """A complete study spec (as a study YAML would load) on the tiny model and data.

        Args:
            strategy: The strategy's registered name.
            options: The strategy's own options (``trials`` included).
            output: The study's output directory.
            seed: The study seed.
            cache: A score-cache file; None turns the persistent score cache off.
        """
        scoring: dict[str, Any] = {"device": "cpu", "cache": cache is not None}
        if cache is not None:
            scoring["cache_path"] = str(cache)
        return {
            "name": name,
            "model": str(self.model_dir),
            "seed": seed,
            "output": str(output),
            "task": {
                "data": str(self.data),
                "input": "text",
                "label": "label",
                "id": "id",
                "prompt": self.prompt,
            },
            "strategy": {"name": strategy, **(options or {})},
            "scoring": scoring,
        }

    def run_study(
        self,
        strategy: str,
        options: dict[str, Any] | None = None,
        *,
        task: dict[str, Any] | None = None,
        plugins: Any = None,
        label: str = "study",
    ) -> Path:
        """Run a study of ``strategy`` on the tiny model (quietly) in a fresh directory and
        return that directory (its ``result.json``, storage and exports-to-be).

        Args:
            strategy: The strategy's registered name.
            options: The strategy's own options (``trials`` included).
            task: Replaces the study's ``task`` section (another data file or task type).
            plugins: Loaded plugins (``load_plugins(...)``); default: the installed ones.
            label: A word in the directory's name.
        """
        from optprompt.config import spec_from_dict
        from optprompt.study.runner import StudyRunner

        out = self.new_dir(label)
        spec = self.study_dict(strategy, options, output=out)
        if task is not None:
            spec["task"] = task
        StudyRunner(spec_from_dict(spec), plugins=plugins, model=self.model, progress=False).run()
        return out


def make_tiny_study_env(root: str | Path) -> TinyStudyEnv:
    """Write the tiny model and data set under ``root`` (created if missing)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model_dir = make_tiny_model_dir(root / "models")
    data = write_labelled_jsonl(root / "reviews.jsonl")
    return TinyStudyEnv(root=root, model_dir=model_dir, data=data)


def scratch_dir(prefix: str = "optprompt-") -> tempfile.TemporaryDirectory[str]:
    """A temporary directory, in RAM (``/dev/shm``) where there is one.

    Studies commit every trial to SQLite; on a RAM disk those commits cost no disk
    syncs, which halves the time of a tiny study on a busy machine.
    """
    shm = "/dev/shm"
    ram = shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.TemporaryDirectory(prefix=prefix, dir=ram)
