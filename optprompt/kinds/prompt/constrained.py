"""Greedy generation constrained to the answer set: what a serving stack with guided
decoding (vLLM ``guided_choice``, llama.cpp grammars, Ollama ``format``) answers.

The study ranks whole answers by their (calibrated) log-likelihood. A serving stack
instead generates token by token: at each step it takes the most likely token among those
that keep the output a prefix of some answer, and stops when an answer is complete (or,
where a longer answer could go on, when the end-of-sequence token is likelier). No
calibration is applied. This module measures that, on the model, for prompt cards.

A multi-label card answers a list: the first label is chosen as above among the label set
and ``none``; then, label by label, ", LABEL" for each label not yet chosen competes with
the end of the answer (the grammar of ``answers.gbnf``, without repeats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optprompt.errors import OptpromptError
from optprompt.kinds.prompt.constrained_packed import greedy_choice, label_lists, packed_choices

__all__ = ["constrained_predict", "supports_constrained"]


def supports_constrained(predictor: Any) -> bool:
    """Whether ``predictor`` is a prompt card on a causal model with answers to choose from."""
    card = getattr(predictor, "card", None)
    loaded = getattr(predictor, "loaded", None)
    decodes = getattr(loaded, "family", None) == "causal" or _guided(predictor) is not None
    return (
        card is not None
        and loaded is not None
        and decodes
        and hasattr(predictor, "prompt")
        and hasattr(card, "answers")
    )


def _guided(predictor: Any) -> Any:
    """The predictor's backend when it decodes under a model server's own guided decoding
    (``guided_choices`` and ``guided``), else None."""
    backend = getattr(predictor, "backend", None)
    return backend if hasattr(backend, "guided_choices") and hasattr(backend, "guided") else None


def _encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids as the scoring backend encodes a prompt (BOS once, when the tokenizer uses one)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids if text else []
    bos = tokenizer.bos_token_id
    adds_bos = bos is not None and tokenizer("a").input_ids[:1] == [bos]
    if adds_bos and not (tokenizer.bos_token and text.startswith(tokenizer.bos_token)):
        ids = [bos, *ids]
    return ids


def _choose(model: Any, tokenizer: Any, prompt_ids: list[int], answers: list[list[int]]) -> int:
    """Index of the answer greedy constrained decoding produces after ``prompt_ids``, step by
    step: the prompt once, then one token per step through the model's cache."""
    import inspect

    import torch

    device = next(model.parameters()).device
    # ``cache`` in recent transformers, ``past_key_values`` before
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.no_grad():
        ran = {"out": (), "result": model(torch.tensor([prompt_ids], device=device), use_cache=True)}

        def score(out: tuple[int, ...], token: int) -> float:
            if out != ran["out"]:  # the output grew by one token since the last forward pass
                past = getattr(ran["result"], name)
                step = model(torch.tensor([[out[-1]]], device=device), use_cache=True, **{name: past})
                ran.update(out=out, result=step)
            return float(ran["result"].logits[0, -1, token])

        return greedy_choice(answers, tokenizer.eos_token_id, score)


def constrained_predict(
    predictor: Any, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None, *, packed: bool = True
) -> list[Any]:
    """The label (classification), option (multiple choice) or list of labels (multi-label,
    written as the study's answers are) greedy decoding constrained to the card's answers
    gives for each text, uncalibrated.

    With ``packed`` (and a backend with the packed engine) every text is decoded from one
    packed scoring pass a step (:mod:`~optprompt.kinds.prompt.constrained_packed`), else
    step by step through the model's cache, one text at a time; the answers are the same.

    Raises:
        OptpromptError: the predictor is not a prompt card on a causal model, or the task
            has no closed answer set (generation, extraction).
    """
    if not supports_constrained(predictor):
        raise OptpromptError(
            "constrained generation is measured for prompt cards on causal models; this export is "
            f"{type(predictor).__name__}"
        )
    card, loaded = predictor.card, predictor.loaded
    guided = _guided(predictor)
    if guided is not None:
        return _served_predict(predictor, guided, texts, options)
    tokenizer, model = loaded.tokenizer, loaded.model
    if card.resolve_task_type().answers_label_lists:
        from optprompt.tasks.types import LIST_SEPARATOR, join_labels

        labels = [str(lbl) for lbl in (card.task or {}).get("labels") or []]
        if not labels:
            raise OptpromptError("this multi-label card lists no labels (its task has no 'labels')")
        lead = "" if card.chat else " "
        prompts = [_encode(tokenizer, predictor.prompt(t)) for t in texts]
        end = tokenizer.eos_token_id
        if end is None:
            end = tokenizer("\n", add_special_tokens=False).input_ids[-1]

        def choose(contexts: list[list[int]], answer_sets: list[list[list[int]]]) -> list[int]:
            picks = packed_choices(predictor.backend, contexts, answer_sets, tokenizer.eos_token_id) if packed else None
            return (
                picks if picks is not None else [_choose(model, tokenizer, c, a) for c, a in zip(contexts, answer_sets)]
            )

        lists = label_lists(
            choose,
            lambda text: tokenizer(text, add_special_tokens=False).input_ids,
            prompts,
            labels,
            lead=lead,
            separator=LIST_SEPARATOR,
            end=end,
        )
        return [join_labels(chosen) for chosen in lists]
    opts = list(options) if options is not None else [None] * len(texts)
    mappings, prompts, answer_sets = [], [], []
    for text, o in zip(texts, opts, strict=True):
        mapping = card.answers(list(o) if o is not None else None)
        if not mapping:
            raise OptpromptError("this prompt's answers are free text: there is no answer set to constrain to")
        # As scored: after a chat template's assistant header the answer follows as it is;
        # after a plain prompt, after one space.
        sep = "" if card.chat else " "
        mappings.append(mapping)
        prompts.append(_encode(tokenizer, predictor.prompt(text, o)))
        answer_sets.append([tokenizer(sep + w, add_special_tokens=False).input_ids for w in mapping])
    picks = packed_choices(predictor.backend, prompts, answer_sets, tokenizer.eos_token_id) if packed else None
    if picks is None:
        picks = [_choose(model, tokenizer, p, a) for p, a in zip(prompts, answer_sets, strict=True)]
    return [mapping[list(mapping)[pick]] for mapping, pick in zip(mappings, picks, strict=True)]


def _served_predict(
    predictor: Any, guided: Any, texts: Sequence[str], options: Sequence[Sequence[str]] | None
) -> list[Any]:
    """Through a model server's own guided decoding: a choice among the answers, as the study
    scored them (after one space on a plain prompt); for a multi-label card, the grammar of
    its ``answers.gbnf`` (labels separated by ", ", or ``none``), read back into a list."""
    card = predictor.card
    if card.resolve_task_type().answers_label_lists:
        from optprompt.tasks.answer_formats import label_list_grammar
        from optprompt.tasks.types import LIST_SEPARATOR, join_labels, parse_label_list

        labels = [str(lbl) for lbl in (card.task or {}).get("labels") or []]
        if not labels:
            raise OptpromptError("this multi-label card lists no labels (its task has no 'labels')")
        grammar = label_list_grammar(labels, separator=LIST_SEPARATOR, leading_space=not card.chat)
        budget = len(guided.tokens.encode(" " + join_labels(labels))) + len(labels) + 2
        written = guided.guided([predictor.prompt(t) for t in texts], {"grammar": grammar}, budget)
        return [None if (got := parse_label_list(w, labels)) is None else join_labels(got) for w in written]
    sep = "" if card.chat else " "
    opts = list(options) if options is not None else [None] * len(texts)
    mappings = [card.answers(list(o) if o is not None else None) for o in opts]
    if not all(mappings):
        raise OptpromptError("this prompt's answers are free text: there is no answer set to constrain to")
    picks = guided.guided_choices(
        [predictor.prompt(t, o) for t, o in zip(texts, opts, strict=True)],
        [[sep + w for w in m] for m in mappings],
    )
    return [None if p is None else m[list(m)[p]] for m, p in zip(mappings, picks, strict=True)]
