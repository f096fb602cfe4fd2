"""The peers of `benchmarks/peers.py`: DSPy and promptolution optimizers, run in their own
environment (``.venv-peers``, pinned by ``benchmarks/peers-constraints.txt``), never in
optprompt's. One method on one task per process, so no cache or state crosses methods:

    .venv-peers/bin/python benchmarks/peers_methods.py METHOD WORKDIR OUT.json --url URL

WORKDIR holds ``train/dev/test.jsonl`` (``id``, ``text``, ``label``: a string, or a list for
multi-label), ``task.json`` (``type``, ``labels``, ``instruction``) and ``embeddings.json``
(optprompt's embedding of every input: SmolLM2's mean-pooled last hidden states, the vectors
optprompt's kNN retrieval uses). The method searches on train and dev only; its winner then
answers every test input once (greedy), and OUT.json gets the raw answer and the method's own
parse of it per test example, plus the server's request counts before and after each stage.
Scoring is left to `peers.py` (the same normalisation for every method).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

THREADS = 8  # requests in flight (the server batches them)
MAX_TOKENS = 48  # generated tokens per answer: the label field and its markers fit; rambling is cut
META_TOKENS = 160  # generated tokens per prompt proposal (the optimizers' own calls)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def server_counts(url: str) -> dict[str, float]:
    """Requests, prompt and generated tokens the vLLM server has served so far (its /metrics)."""
    root = url.rsplit("/v1", 1)[0]
    text = urllib.request.urlopen(f"{root}/metrics", timeout=30).read().decode()
    names = {
        "requests": "vllm:request_success_total",
        "prompt_tokens": "vllm:prompt_tokens_total",
        "generation_tokens": "vllm:generation_tokens_total",
    }
    out = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        for key, name in names.items():
            if line.startswith(name + "{") or line.startswith(name + " "):
                out[key] += float(line.rsplit(" ", 1)[1])
    return out


def split_labels(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,|;\n]", text) if p.strip()]


def named_labels(text: str, labels: list[str]) -> list[str]:
    """The labels a free-form answer names, in the order it first names them: whole words,
    casefolded; where two labels start at one place, the longer ("very positive", not "positive")."""
    hits = []
    for label in labels:
        m = re.search(r"(?<!\w)" + re.escape(label.casefold()) + r"(?!\w)", text.casefold())
        if m:
            hits.append((m.start(), -len(label), label))
    return [label for _, _, label in sorted(hits)]


MARKER = re.compile(r"\[\[\s*#+\s*\w+\s*#+\s*\]\]")


# --------------------------------------------------------------------------- DSPy


def run_dspy(
    method: str, work: Path, task: dict[str, Any], url: str, model: str, seed: int, parsing: str = "strict"
) -> dict[str, Any]:
    import dspy
    import numpy as np

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = dspy.LM(f"openai/{model}", api_base=url, api_key="none", temperature=0.0, max_tokens=MAX_TOKENS, cache=False)
    proposer = dspy.LM(
        f"openai/{model}", api_base=url, api_key="none", temperature=1.0, max_tokens=META_TOKENS, cache=False
    )
    multi = task["type"] == "multi_label"
    labels = task["labels"]
    field = "labels" if multi else "label"

    class LenientChatAdapter(dspy.ChatAdapter):
        """ChatAdapter that gives a small model's free-form answer its best reading (`--parse
        lenient`): the answer field becomes the label(s) the answer names (its own field's text
        when it wrote one, else the whole completion); a one-field call of the optimizer's own
        (an instruction proposal) whose markers are missing takes the completion as its value."""

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            names = list(signature.output_fields)
            try:
                parsed = super().parse(signature, completion)
            except Exception:  # noqa: BLE001 - DSPy's AdapterParseError: no field markers
                if names == [field]:
                    parsed = {field: completion}
                elif len(names) == 1:
                    return {names[0]: MARKER.sub("", completion).strip()}
                else:
                    raise
            if field in parsed and names == [field]:
                found = named_labels(str(parsed[field] or ""), labels)
                parsed[field] = ", ".join(found) if multi else (found[0] if found else "")
            return parsed

    # no second try through the JSON adapter when an answer does not parse: it doubles the calls
    # an answer that does not parse scores 0 (DSPy's failure score) instead of stopping the
    # evaluation after 10 of them (DSPy's default max_errors)
    adapter = (
        LenientChatAdapter(use_json_adapter_fallback=False)
        if parsing == "lenient"
        else dspy.ChatAdapter(use_json_adapter_fallback=False)
    )
    dspy.configure(lm=lm, adapter=adapter, max_errors=10**6)
    desc = (
        f"comma-separated list of one or more of: {', '.join(labels)}"
        if multi
        else f"exactly one of: {', '.join(labels)}"
    )
    signature = dspy.Signature(
        {
            "text": dspy.InputField(),
            field: dspy.OutputField(desc=desc),
        },
        task["instruction"].replace("{labels}", ", ".join(labels)),
    )
    program = dspy.Predict(signature)

    def example(row: dict[str, Any]) -> Any:
        gold = ", ".join(row["label"]) if multi else row["label"]
        return dspy.Example(text=row["text"], **{field: gold}).with_inputs("text")

    def score(gold: Any, pred: str) -> float:
        if multi:
            g = {s.casefold() for s in split_labels(gold)}
            p = {s.casefold() for s in split_labels(pred)}
            return 2 * len(g & p) / (len(g) + len(p)) if g and p else 0.0
        return float(pred.strip().casefold() == gold.strip().casefold())

    def metric(gold: Any, pred: Any, trace: Any = None) -> float | bool:
        value = score(getattr(gold, field), str(getattr(pred, field, "") or ""))
        return value >= 0.999 if trace is not None else value

    train = [example(r) for r in read_jsonl(work / "train.jsonl")]
    dev = [example(r) for r in read_jsonl(work / "dev.jsonl")]
    test_rows = read_jsonl(work / "test.jsonl")

    details: dict[str, Any] = {"parse": parsing}
    if method == "dspy-zero-shot":
        compiled = program
    elif method == "dspy-mipro":
        opt = dspy.MIPROv2(
            metric=metric, prompt_model=proposer, auto="light", num_threads=THREADS, seed=seed, verbose=False
        )
        compiled = opt.compile(
            program,
            trainset=train,
            valset=dev,
            max_bootstrapped_demos=0,  # DSPy's zero-shot recipe: instructions only
            max_labeled_demos=0,
            requires_permission_to_run=False,
        )
        details["instruction"] = compiled.signature.instructions
        details["demos"] = len(compiled.demos)
    elif method == "dspy-bootstrap-rs":
        opt = dspy.BootstrapFewShotWithRandomSearch(
            metric=metric,
            max_bootstrapped_demos=4,
            max_labeled_demos=4,
            num_candidate_programs=4,
            num_threads=THREADS,
        )
        compiled = opt.compile(program, trainset=train, valset=dev)
        details["demos"] = len(compiled.demos)
    elif method == "dspy-knn":
        vectors = json.loads((work / "embeddings.json").read_text())

        def embed(texts: list[str]) -> Any:
            # KNN joins the input fields as "text: ..."; optprompt embeds the input itself.
            rows = [np.asarray(vectors[t.removeprefix("text: ")], dtype=np.float32) for t in texts]
            m = np.stack(rows)
            return m / np.linalg.norm(m, axis=1, keepdims=True)  # KNN ranks by dot product: cosine

        opt = dspy.KNNFewShot(
            k=4, trainset=train, vectorizer=dspy.Embedder(embed), max_bootstrapped_demos=0, max_labeled_demos=4
        )
        compiled = opt.compile(program)
    else:
        raise SystemExit(f"unknown DSPy method {method!r}")

    searched = server_counts(url)
    started = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    def answer(row: dict[str, Any]) -> dict[str, Any]:
        try:
            out = compiled(text=row["text"])
            return {"id": row["id"], "pred": str(getattr(out, field, "") or ""), "raw": None}
        except Exception as e:  # the adapter could not parse the answer: wrong, raw text kept
            raw = getattr(e, "lm_response", None)
            return {"id": row["id"], "pred": "", "raw": raw if raw is not None else f"{type(e).__name__}: {e}"}

    with ThreadPoolExecutor(THREADS) as pool:
        preds = list(pool.map(answer, test_rows))
    # a sample of raw completions of successful calls too
    raw_sample = []
    for h in lm.history[-5:]:
        try:
            raw_sample.append(h["outputs"][0] if isinstance(h["outputs"][0], str) else str(h["outputs"][0]))
        except (KeyError, IndexError, TypeError):
            pass
    details["raw_sample"] = raw_sample
    try:
        details["final_prompt_sample"] = lm.history[-1]["messages"]
    except (KeyError, IndexError):
        pass
    return {"predictions": preds, "searched": searched, "test_seconds": time.perf_counter() - started, **details}


# --------------------------------------------------------------------------- promptolution


def run_capo(work: Path, task: dict[str, Any], url: str, model: str, seed: int) -> dict[str, Any]:
    import pandas as pd
    from promptolution.llms.api_llm import APILLM
    from promptolution.optimizers.capo import CAPO
    from promptolution.predictors.maker_based_predictor import MarkerBasedPredictor
    from promptolution.tasks.classification_tasks import ClassificationTask
    from promptolution.utils.formatting import extract_from_tag

    if task["type"] != "classification":
        raise SystemExit("promptolution's ClassificationTask is single-label only")
    labels = [x.casefold() for x in task["labels"]]

    def frame(name: str) -> pd.DataFrame:
        rows = read_jsonl(work / f"{name}.jsonl")
        return pd.DataFrame({"x": [r["text"] for r in rows], "y": [r["label"].casefold() for r in rows]})

    llm = APILLM(
        api_url=url,
        model_id=model,
        api_key="none",
        max_concurrent_calls=THREADS,
        max_tokens=2 * MAX_TOKENS,  # CAPO's prompts ask for reasoning before the marked answer
        call_kwargs={"temperature": 0.0},
    )
    meta = APILLM(api_url=url, model_id=model, api_key="none", max_concurrent_calls=THREADS, max_tokens=META_TOKENS)
    predictor = MarkerBasedPredictor(llm, classes=labels)
    description = task["instruction"].replace("{labels}", ", ".join(task["labels"]))
    ctask = ClassificationTask(
        frame("dev"),
        task_description=description,
        eval_strategy="sequential_block",
        n_subsamples=min(30, len(read_jsonl(work / "dev.jsonl")) // 2),
        seed=seed,
    )
    initial = [description]
    for extra in task.get("instructions", []):
        initial.append(extra.replace("{labels}", ", ".join(task["labels"])))
    from promptolution.utils.prompt_creation import create_prompts_from_task_description

    try:
        initial += create_prompts_from_task_description(description, meta, n_prompts=3)
    except Exception as e:  # noqa: BLE001 - the meta-LLM (the same 135M model) may give nothing usable
        print(f"initial prompts from the description failed: {e}", file=sys.stderr)
    opt = CAPO(
        predictor=predictor,
        task=ctask,
        meta_llm=meta,
        initial_prompts=initial,
        df_few_shots=frame("train"),
        crossovers_per_iter=4,
        upper_shots=4,
        max_n_blocks_eval=4,
    )
    prompts = opt.optimize(n_steps=4)
    # the survivor best on all of dev (CAPO's own racing saw dev blocks only)
    dev = frame("dev")
    best, best_score = prompts[0], -1.0
    for p in prompts:
        preds, _ = predictor.predict([p.construct_prompt()] * len(dev), list(dev["x"]))
        s = float((pd.Series(preds) == dev["y"]).mean())
        if s > best_score:
            best, best_score = p, s
    searched = server_counts(url)
    started = time.perf_counter()
    test = read_jsonl(work / "test.jsonl")
    text = best.construct_prompt()
    raw = llm.get_response([text + "\n" + r["text"] for r in test])
    preds = [
        {"id": r["id"], "pred": extract_from_tag(out, "<final_answer>", "</final_answer>"), "raw": out}
        for r, out in zip(test, raw)
    ]
    return {
        "predictions": preds,
        "searched": searched,
        "test_seconds": time.perf_counter() - started,
        "prompt": text,
        "dev_score": best_score,
        "initial_prompts": initial,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("method")
    p.add_argument("work", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--url", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--parse",
        choices=["strict", "lenient"],
        default="strict",
        help="DSPy: strict = ChatAdapter's own parse (an answer without its field markers scores 0); "
        "lenient = the label(s) the answer names, wherever it names them",
    )
    args = p.parse_args(argv)
    task = json.loads((args.work / "task.json").read_text())
    models = json.loads(urllib.request.urlopen(f"{args.url}/models", timeout=30).read())
    model = models["data"][0]["id"]
    before = server_counts(args.url)
    started = time.perf_counter()
    if args.method == "capo":
        out = run_capo(args.work, task, args.url, model, args.seed)
    else:
        out = run_dspy(args.method, args.work, task, args.url, model, args.seed, args.parse)
    out["seconds"] = time.perf_counter() - started
    out["before"], out["after"] = before, server_counts(args.url)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
