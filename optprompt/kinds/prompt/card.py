"""Prompt cards: the exported winner, loadable by any program.

A card is a JSON file (``prompt_card.json``) plus the rendered prompt as text
(``prompt.txt``). :meth:`PromptCard.format` rebuilds the exact text optprompt scored,
for any new input, without optprompt's model or data: it formats through the same
functions (:mod:`optprompt.prompts.render`) the study's renderer scores with.

A card whose demonstrations are retrieved per input (``retrieval``) keeps the pool
(ids, inputs, answers, labels), its embedding vectors and the retrieval settings;
:meth:`PromptCard.format` embeds the input and retrieves exactly as the study did, with
the embedding model the card names (loaded on first use), or the one lent by
:meth:`PromptCard.use_embedder` (``optprompt.load`` lends the task model).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import atomic_write_json, atomic_write_text, read_json
from optprompt._version import __version__
from optprompt.errors import ConfigError, OptpromptError
from optprompt.prompts.render import (
    choice_letters,
    demo_text,
    fill_entity_prompt,
    fill_labels,
    fill_query,
    join_prompt,
    retrieved_placeholder,
)
from optprompt.tasks.types import GENERATION_SETTINGS_KEY, TaskType, resolve_task_type

if TYPE_CHECKING:
    from optprompt.prompts.retrieval import DemoPool, Embedder, Retrieval
    from optprompt.results import ResultEntry, StudyResult

log = logging.getLogger(__name__)

__all__ = [
    "PromptCard",
    "load_card",
    "card_from_result",
    "card_from_description",
    "CARD_FILE",
    "PROMPT_FILE",
]

CARD_FILE = "prompt_card.json"
PROMPT_FILE = "prompt.txt"
CARD_FORMAT = 1
_RETRIEVAL_KEYS = ("k", "mmr", "balance", "order", "embedder", "pool", "vectors")
_RETRIEVAL_OPTIONAL = ("pooling", "similarity")


@dataclass(frozen=True)
class PromptCard:
    """A winning prompt and everything needed to use and trust it.

    Attributes:
        instruction: The instruction with ``{labels}`` already filled in.
        template: Per-example format with ``{input}`` (and maybe ``{options}``).
        demos: Demonstrations: ``{"input", "answer", "options"}`` dicts, in order.
        verbalizer: Label -> the word the model says for it (classification; extraction:
            entity type -> the word the prompt and the answers use for it).
        choice_format: ``text`` or ``letters`` (multiple choice).
        separator: Text between instruction, demonstrations and query.
        chat: Whether the prompt was scored as a user turn of the model's chat template.
        output_format: Extraction: how the answer lists the entities (``lines``, ``json``,
            ``inline``); :meth:`parse` reads it back into entities.
        retrieval: Demonstrations retrieved per input (None: the fixed ``demos``):
            ``k``, ``mmr``, ``balance``, ``order``; ``embedder`` (``ref``,
            ``fingerprint``, ``task_model``: whether it is the card's own model); ``pool``
            (``id``, ``input``, ``answer``, ``options``, ``label`` per example) and the
            pool's ``vectors`` (normalised, float16, base64).
    """

    instruction: str
    template: str
    demos: list[dict[str, Any]]
    verbalizer: dict[str, str]
    task_type: str
    choice_format: str = "text"
    separator: str = "\n\n"
    chat: bool = False
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none", "offsets": None})
    model: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    baseline_scores: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seed: int = 0
    study: str = ""
    output_format: str = ""
    optprompt_version: str = __version__
    retrieval: dict[str, Any] | None = None

    # --- its task type --------------------------------------------------------------
    def resolve_task_type(self) -> TaskType:
        """The :class:`~optprompt.tasks.TaskType` that ``task_type`` names: the one the card was
        built with in a study (a type registered in code too), else a built-in one or one an
        installed plugin registers."""
        held = self.__dict__.get("_task_type")
        return held if held is not None else resolve_task_type(self.task_type)

    # --- using the prompt ---------------------------------------------------------
    def _query(self, text: str, options: list[str] | None) -> str:
        if options is None:  # classification: a template's {options} lists the labels (options searched as labels)
            options = (
                [str(lbl) for lbl in ((self.task or {}).get("labels") or [])] if isinstance(self.task, dict) else None
            )
        return fill_query(self.template, text, options, self.choice_format)

    def format(self, text: str, options: list[str] | None = None) -> str:
        """The full prompt for ``text`` (the user turn, when ``chat`` is true)."""
        return self.body(text, text, options)

    def body(self, text: str, shown: str, options: list[str] | None = None) -> str:
        """The prompt for ``text`` (its demonstrations) with ``shown`` in the input's place."""
        demos = [demo_text(self._query(d["input"], d.get("options")), d["answer"]) for d in self.demos_for(text)]
        return join_prompt(self.instruction, demos, self._query(shown, options), self.separator)

    def template_text(self) -> str:
        """The prompt with ``{input}`` left as a placeholder (``prompt.txt``); demonstrations
        retrieved per input are one placeholder line."""
        if self.retrieval is None:
            return self.format("{input}")
        line = retrieved_placeholder(int(self.retrieval["k"]), len(self.retrieval["pool"]))
        return join_prompt(self.instruction, [line], self._query("{input}", None), self.separator)

    # --- demonstrations retrieved per input -------------------------------------------
    def demos_for(self, text: str) -> list[dict[str, Any]]:
        """The demonstrations shown before ``text``: the fixed ones, or those retrieved for it."""
        if self.retrieval is None:
            return self.demos
        pool = self.retrieval["pool"]
        return [pool[i] for i in self._pool().select(self._settings(), text)]

    @property
    def pooling(self) -> str:
        """How the card's embedding model turns a text into a vector (``mean`` or ``last``)."""
        return str((self.retrieval or {}).get("pooling", "mean"))

    @property
    def similarity(self) -> str:
        """How inputs are compared with the pool (``embedding``, ``lexical`` or ``hybrid``;
        cards written before the option: ``embedding``)."""
        return str((self.retrieval or {}).get("similarity", "embedding"))

    def use_embedder(self, embedder: Embedder) -> None:
        """Embed inputs with ``embedder`` (a model already loaded) instead of loading the
        model the card names; warns when its fingerprint differs from the card's."""
        if self.retrieval is None:
            return
        self._check_embedder(embedder)
        self.__dict__["_embedder"] = embedder
        self.__dict__.pop("_demo_pool", None)

    def _check_embedder(self, embedder: Embedder) -> None:
        named = self.retrieval.get("embedder") or {} if self.retrieval else {}
        expected = named.get("fingerprint")
        if expected and embedder.fingerprint != expected:
            log.warning(
                "prompt card: its demonstrations were retrieved with embeddings of model %s (fingerprint %s); "
                "inputs are now embedded with %s (fingerprint %s): retrieval may differ from the study's "
                "(a model lent with use_embedder embeds the pool again)",
                named.get("ref"),
                expected,
                embedder.ref,
                embedder.fingerprint,
            )

    def _settings(self) -> Retrieval:
        from optprompt.prompts.retrieval import Retrieval

        r = self.retrieval or {}
        try:
            return Retrieval(
                pool=tuple(str(d["id"]) for d in r["pool"]),
                k=r["k"],
                mmr=r["mmr"],
                balance=r["balance"],
                order=r["order"],
                embedder=None if (r.get("embedder") or {}).get("task_model", True) else r["embedder"].get("ref"),
                pooling=self.pooling,
                similarity=self.similarity,
            )
        except (KeyError, TypeError, ConfigError) as e:
            raise OptpromptError(f"prompt card: invalid retrieval settings: {e}") from None

    def _pool(self) -> DemoPool:
        pool = self.__dict__.get("_demo_pool")
        if pool is None:
            from optprompt.prompts.retrieval import DemoPool, decode_vectors

            r = self.retrieval or {}
            entries = r.get("pool") or []
            lent = self.__dict__.get("_embedder")
            expected = (r.get("embedder") or {}).get("fingerprint")
            try:
                vectors = (
                    decode_vectors(r["vectors"], where="prompt card retrieval.vectors")
                    if self.similarity != "lexical"
                    else None
                )
                if lent is not None and expected and lent.fingerprint != expected:
                    # another model (evaluate --model): the stored vectors are in the card's
                    # model's space, so the pool is embedded again with the model lent
                    vectors = None
                pool = DemoPool(
                    [str(d["id"]) for d in entries],
                    [d["input"] for d in entries],
                    [d.get("label") for d in entries],
                    lent or self._load_embedder,
                    vectors=vectors,
                    similarity=self.similarity,
                )
            except (KeyError, TypeError) as e:
                raise OptpromptError(f"prompt card: invalid retrieval pool: missing or bad {e}") from None
            except ConfigError as e:
                raise OptpromptError(f"prompt card: {e}") from None
            self.__dict__["_demo_pool"] = pool
        return pool

    def _load_embedder(self) -> Embedder:
        """The embedding model the card names, loaded on first use."""
        from optprompt.models.loading import load_model
        from optprompt.plugins.manager import load_plugins
        from optprompt.scoring.embedding import make_embedder

        ref = ((self.retrieval or {}).get("embedder") or {}).get("ref")
        if not ref:
            raise OptpromptError(
                "this prompt card retrieves its demonstrations per input but names no embedding model: "
                "call card.use_embedder(...) or load it with optprompt.load(path, model=...)"
            )
        try:
            embedder = make_embedder(ref, self.pooling, lambda r: load_model(r, load_plugins(), progress=False))
        except OptpromptError as e:
            raise OptpromptError(
                f"this prompt card retrieves its demonstrations per input by embedding each input with model "
                f"{ref!r}, which could not be loaded: {e}. Pass a local copy: card.use_embedder("
                "optprompt.scoring.ModelEmbedder(loaded)) or optprompt.load(path, model=...)"
            ) from None
        self._check_embedder(embedder)
        self.__dict__["_embedder"] = embedder
        return embedder

    def messages(self, text: str, options: list[str] | None = None) -> list[dict[str, str]]:
        """The prompt as chat messages (one user turn)."""
        return [{"role": "user", "content": self.format(text, options)}]

    def render(self, text: str, tokenizer: Any = None, options: list[str] | None = None) -> str:
        """Exactly the text optprompt scored: through ``tokenizer``'s chat template when ``chat``."""
        if self.chat:
            if tokenizer is None:
                raise OptpromptError("this card was scored with a chat template: pass the model's tokenizer")
            return tokenizer.apply_chat_template(
                self.messages(text, options), tokenize=False, add_generation_prompt=True
            )
        return self.format(text, options)

    def answers(self, options: list[str] | None = None) -> dict[str, str]:
        """Answer word -> label (classification) or -> option (multiple choice)."""
        if self.resolve_task_type().has_fixed_labels:
            return {w: lbl for lbl, w in self.verbalizer.items()}
        opts = list(options or [])
        if self.choice_format == "letters":
            return dict(zip(choice_letters(len(opts)), opts))
        return {o: o for o in opts}

    def predict_from_logliks(self, logliks: dict[str, float]) -> str:
        """The label this card predicts from per-label log-likelihoods of the answer words.

        Applies the card's calibration exactly as optprompt did when it scored the card.
        """
        from optprompt.scoring.calibration import apply_offsets

        labels = list(self.verbalizer)
        missing = [lbl for lbl in labels if lbl not in logliks]
        if missing:
            raise OptpromptError(f"log-likelihoods missing for label(s) {missing}")
        values = [logliks[lbl] for lbl in labels]
        offsets = self.calibration.get("offsets")
        if offsets:
            values = apply_offsets(values, offsets)
        return labels[max(range(len(values)), key=values.__getitem__)]

    def parse(self, output: str, options: list[str] | None = None, *, text: str | None = None) -> Any:
        """Map a model's generated answer back to a label/option (None when it matches none).

        For generation tasks: the answer extracted as optprompt did (the task's regex, or
        the first non-empty line), None on a format failure. For extraction: the entities
        the output names, as ``{"type", "text", "start", "end"}`` dicts placed in ``text``
        (the input; ``start == end == -1`` for text not in it), None on a format failure.
        """
        task_type = self.resolve_task_type()
        if task_type.extracts_entities:
            from optprompt.prompts.entity_formats import parse_entities

            if text is None:
                raise OptpromptError("an extraction card parses an output against its input: pass text=...")
            found = parse_entities(output, text, self.output_format or "lines", self.verbalizer)
            return None if found is None else [e.to_dict() for e in found]
        if task_type.generates:
            from optprompt.scoring.text_metrics import extract_answer

            return extract_answer(output, (self.task.get(GENERATION_SETTINGS_KEY) or {}).get("extract"))
        head = output.strip().split("\n")[0].strip().strip(".").strip()
        answers = self.answers(options)
        if head in answers:
            return answers[head]
        low = {k.lower(): v for k, v in answers.items()}
        first = head.split(" ")[0].lower().strip(".,:;!") if head else ""
        return low.get(head.lower(), low.get(first))

    # --- files --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        if d["retrieval"] is None:  # absent from cards with fixed demonstrations, as before
            d.pop("retrieval")
        return {"format": CARD_FORMAT, **d}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<card>") -> PromptCard:
        data = dict(data)
        fmt = data.pop("format", None)
        if fmt != CARD_FORMAT:
            raise OptpromptError(f"{source}: unsupported prompt card format {fmt!r} (expected {CARD_FORMAT})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptpromptError(f"{source}: unknown prompt card key(s): {', '.join(unknown)}")
        retrieval = data.get("retrieval")
        if retrieval is not None:
            if not isinstance(retrieval, dict):
                raise OptpromptError(f"{source}: retrieval: expected an object, got {type(retrieval).__name__}")
            missing = [k for k in _RETRIEVAL_KEYS if k not in retrieval]
            extra = sorted(set(retrieval) - set(_RETRIEVAL_KEYS) - set(_RETRIEVAL_OPTIONAL))
            if missing or extra:
                raise OptpromptError(
                    f"{source}: retrieval: "
                    + "; ".join(
                        [f"missing key(s) {', '.join(missing)}"] * bool(missing)
                        + [f"unknown key(s) {', '.join(extra)}"] * bool(extra)
                    )
                )
        try:
            return cls(**data)
        except TypeError as e:
            raise OptpromptError(f"{source}: invalid prompt card: {e}") from None

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``prompt_card.json`` and ``prompt.txt`` into ``directory`` (atomically)."""
        directory = Path(directory)
        atomic_write_json(directory / CARD_FILE, self.to_dict())
        atomic_write_text(directory / PROMPT_FILE, self.template_text() + "\n")
        return directory / CARD_FILE


def load_card(path: str | os.PathLike[str]) -> PromptCard:
    """Load a card from its JSON file or from the directory holding ``prompt_card.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    return PromptCard.from_dict(read_json(path, what="prompt card"), source=str(path))


def card_from_description(
    desc: dict[str, Any],
    task: dict[str, Any],
    *,
    calibration: dict[str, Any] | None = None,
    task_type: TaskType | None = None,
    **fields: Any,
) -> PromptCard:
    """A card from a candidate as result.json describes it (``candidate``, ``demos``,
    ``chat``: see :func:`optprompt.kinds.prompt.describe`) and the task's summary
    (``task_type``: the task's type when the study has it at hand, e.g. one registered in code)."""
    cand = desc["candidate"]
    verbalizer = {lbl: w for lbl, w in cand.get("verbalizer", [])}
    words = [verbalizer.get(lbl, lbl) for lbl in task.get("labels", [])]
    output_format = cand.get("output_format", "")
    if (task_type or resolve_task_type(task["type"])).extracts_entities:
        verbalizer = {lbl: verbalizer.get(lbl, lbl) for lbl in task.get("labels", [])}
        output_format = output_format or "lines"
        instruction = fill_entity_prompt(
            cand["instruction"], verbalizer, dict(task.get("descriptions") or {}), output_format
        )
    else:
        instruction = fill_labels(cand["instruction"], words)
    card = PromptCard(
        instruction=instruction,
        template=cand["template"],
        demos=[
            {"input": d["input"], "answer": d["answer"], "options": d.get("options") or None} for d in desc["demos"]
        ],
        verbalizer=verbalizer,
        task_type=task["type"],
        choice_format=cand.get("choice_format", "text"),
        separator=cand.get("separator", "\n\n"),
        chat=bool(desc.get("chat")),
        output_format=output_format,
        calibration=calibration or {"method": "none", "offsets": None},
        task=task,
        retrieval=desc.get("retrieval"),
        **fields,
    )
    if task_type is not None:  # kept off the card's fields: not written to card.json
        object.__setattr__(card, "_task_type", task_type)
    return card


def card_from_result(
    result: StudyResult | dict[str, Any], member: ResultEntry | dict[str, Any] | None = None
) -> PromptCard:
    """Build the card of a finished study's winner (or of one Pareto-front ``member``)
    from its result. A member other than the winner has dev scores only."""
    from optprompt.results import ResultEntry, StudyResult

    result = StudyResult.from_dict(result)
    if isinstance(member, dict):
        member = ResultEntry.model_validate(member)
    chosen = result.best if member is None or member.trial == result.best.trial else member
    entry = chosen.to_dict()
    served = result.constrained_generation if chosen is result.best else None
    baseline = result.baseline.to_dict()
    return card_from_description(
        entry,
        result.task.model_dump(mode="json", exclude_unset=True),
        calibration=entry.get("calibration"),
        model=result.model.model_dump(mode="json", exclude_unset=True),
        scores={
            "dev": entry["dev"],
            "test": entry.get("test"),
            **({"objectives": entry["objectives"]} if "objectives" in entry else {}),
            **({"constrained_generation": served} if served else {}),
        },
        baseline_scores={"dev": baseline["dev"], "test": baseline.get("test")},
        comparison=result.comparison.to_dict() if result.comparison is not None else {},
        warnings=list(result.warnings),
        seed=result.seed,
        study=result.name,
    )
