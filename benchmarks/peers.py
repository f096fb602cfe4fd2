"""Peers side by side (issue 32, item 3): optprompt against DSPy and promptolution on the same
served model, the same splits and comparable budgets (`make bench-peers`).

Every method talks to one vLLM server (SmolLM2-135M-Instruct, `tools/serve_vllm.py`):

- optprompt's default (`template_search`) and `auto`, as `optprompt run` on the shipped study
  with `model: {url, weights}` (weights: the training families and kNN embeddings in-process)
  and `task.data` the split files below, so no split is drawn twice;
- DSPy MIPROv2 (light, zero-shot: instructions only), BootstrapFewShot with
  random search, KNNFewShot (k 4, optprompt's own embedding: SmolLM2's mean-pooled hidden
  states, cosine), and the DSPy program unoptimized; promptolution CAPO (single-label only).
  They run in their own environment (`.venv-peers`, `benchmarks/peers_methods.py`).

Splits are optprompt's (the study's seed): each method searches on train + dev only and
answers test once, after its winner is chosen. Peers answer by generating; their answer, as
their own adapter parses it, counts as correct when it equals the gold label after
strip + casefold (multi-label: set F1 of the comma-separated labels), the normalisation
optprompt uses for classification answers. A small model seldom writes DSPy's field markers,
so each DSPy method also runs as ``METHOD+lenient``: its answer is the label it names first,
wherever it names it (multi-label: every label it names), and the optimizer's own calls take
a completion without markers as their value, so MIPROv2 and random search see a signal.
optprompt ranks the labels by log-likelihood.
The budget is optprompt's minutes of trial time (`--minutes`); the peers run their light
presets; for every method the wall time and the server's requests (its /metrics:
requests, prompt and generated tokens) are measured over the whole run, test included.

    .venv/bin/python benchmarks/peers.py --url http://127.0.0.1:8200/v1 --tasks intent
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers_methods import server_counts  # noqa: E402  (stdlib only at import: runs in either environment)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "peers"
PEERS_PY = REPO / ".venv-peers" / "bin" / "python"
OPTPROMPT = REPO / ".venv" / "bin" / "optprompt"
STUDIES = {
    "intent": "studies/intent.yaml",
    "sentiment": "studies/sentiment.yaml",
    "tickets": "studies/tickets-multilabel.yaml",
}
PEERS = ["dspy-zero-shot", "dspy-mipro", "dspy-bootstrap-rs", "dspy-knn", "capo"]
OURS = ["optprompt-default", "optprompt-auto"]
# DSPy read leniently (`--parse lenient`): the label an answer names wherever it names it
LENIENT = [f"{m}+lenient" for m in PEERS if m.startswith("dspy-")]


def smollm2_dir() -> Path:
    from optprompt.models import optprompt_home
    from optprompt.plugins import load_plugins

    return Path(load_plugins().models.get("smollm2-135m-instruct").obj(optprompt_home(), progress=False))


def prepare(name: str, work: Path, weights: Path) -> dict[str, Any]:
    """Write the study's own splits (train/dev/test.jsonl), task.json and embeddings.json."""
    from optprompt.config.loading import load_spec
    from optprompt.plugins import load_plugins
    from optprompt.tasks.build import build_task

    path = REPO / STUDIES[name]
    spec = load_spec(path)
    plugins = load_plugins()
    task = build_task(spec.task, plugins=plugins, seed=spec.seed, base_dir=str(path.parent), name=name)
    data = yaml.safe_load(path.read_text())
    source = path.parent / data["task"]["data"]
    rows = {str(r[spec.task.id]): r for r in map(json.loads, source.read_text().splitlines()) if r}
    work.mkdir(parents=True, exist_ok=True)
    texts = []
    for split in ("train", "dev", "test"):
        lines = []
        for ex in getattr(task, split):
            r = rows[ex.id]
            lines.append(json.dumps({"id": ex.id, "text": ex.input, "label": r[spec.task.label]}))
            texts.append(ex.input)
        (work / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    strategy = data.get("strategy", {})
    info = {
        "type": task.type,
        "labels": list(task.labels),
        "instruction": task.instruction,
        "instructions": list(strategy.get("instructions", [])),
        "sizes": {s: len(getattr(task, s)) for s in ("train", "dev", "test")},
    }
    (work / "task.json").write_text(json.dumps(info, indent=1))
    if not (work / "embeddings.json").exists():
        from optprompt.models.loading import load_model
        from optprompt.scoring.embedding import ModelEmbedder

        embedder = ModelEmbedder(load_model(str(weights), plugins, progress=False), pooling="mean")
        vectors = embedder.embed(texts)
        (work / "embeddings.json").write_text(
            json.dumps({t: [round(float(x), 6) for x in v] for t, v in zip(texts, vectors)})
        )
    return info


def study_file(name: str, method: str, work: Path, url: str, weights: Path, minutes: float, seed: int) -> Path:
    """The shipped study, pointed at the server and at the split files, its budget `minutes`."""
    data = yaml.safe_load((REPO / STUDIES[name]).read_text())
    data["name"] = f"peers-{name}-{method}"
    # A CPU vLLM computes one engine step at a time: 16 long requests in flight (the default)
    # queue past the default 120 s timeout and are sent again. Fewer in flight and a longer
    # timeout keep the server busy without retries (either ranking, docs/served.md).
    data["model"] = {"url": url, "weights": str(weights), "max_concurrency": 4, "timeout": 600}
    data["seed"] = seed
    data["output"] = str(work / method)
    data["task"].pop("split", None)
    data["task"]["data"] = {s: str(work / f"{s}.jsonl") for s in ("train", "dev", "test")}
    data["task"]["id"] = "id"
    data["task"]["input"] = "text"
    data["task"]["label"] = "label"
    data["task"].pop("label_separator", None)
    ts = {k: v for k, v in data["strategy"].items() if k not in ("name", "budget", "trials")}
    ts["knn"] = {**ts.get("knn", {}), "embedder": str(weights)}  # served: kNN embeds in-process
    if method == "optprompt-default":
        data["strategy"] = {"name": "template_search", "budget": {"minutes": minutes}, **ts}
    else:
        data["strategy"] = {"name": "auto", "trials": 40, "budget": {"minutes": minutes}, "template_search": ts}
    out = work / f"{method}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def run_ours(
    name: str, method: str, work: Path, url: str, weights: Path, minutes: float, seed: int, *, collect: bool = False
) -> dict:
    """Run the study afresh (or, with ``collect``, read a finished one, e.g. resumed by hand)."""
    if not collect:
        path = study_file(name, method, work, url, weights, minutes, seed)
        log = work / f"{method}.log"
        shutil.rmtree(work / method, ignore_errors=True)  # a fresh study, never a resumed one
        with log.open("w") as out:
            code = subprocess.call([str(OPTPROMPT), "run", str(path), "-q"], stdout=out, stderr=subprocess.STDOUT)
        if code != 0:
            raise RuntimeError(f"optprompt run {path} exited {code}; see {log}")
    result = json.loads((work / method / "result.json").read_text())
    preds = [json.loads(line) for line in (work / method / "predictions.jsonl").read_text().splitlines() if line]
    by_role: dict[str, list[dict]] = {}
    for p in preds:
        by_role.setdefault(p["role"], []).append(p)
    labels = result["task"].get("labels") or []

    def rows(role: str) -> list[dict]:
        return [
            {"id": p["id"], "pred": labels[p["pred"]] if isinstance(p["pred"], int) and labels else p["pred"],
             "score": p["score"]}
            for p in by_role[role]
        ]  # fmt: skip

    best = result["best"]
    return {
        "test_in_study": (best.get("test") or {}).get("value"),
        "predictions": rows("best"),
        "baseline": rows("baseline"),
        "winner": {"candidate": best.get("candidate"), "prompt": best.get("prompt"), "dev": best.get("dev")},
        "trials": result.get("n_trials"),
        "families": family_bests(result),
        "constrained_generation": (result.get("constrained_generation") or {}).get("value"),
        "warnings": result.get("warnings", []),
        "study_wall_seconds": result.get("wall_seconds"),
    }


def family_bests(result: dict) -> dict[str, dict]:
    """``auto``'s families: each one's trials and its best run's dev and test figures."""
    out = {}
    for name, family in (result.get("families") or {}).items():
        best = (family or {}).get("best") or {}
        out[name] = {
            "trials": (family or {}).get("trials"),
            "dev": (best.get("dev") or {}).get("value"),
            "test": (best.get("test") or {}).get("value"),
        }
    return out


def run_peer(method: str, work: Path, url: str, seed: int) -> dict:
    """``method`` may end in ``+lenient``: a DSPy method whose answers are read leniently."""
    out = work / f"{method}.json"
    log = work / f"{method}.log"
    name, _, lenient = method.partition("+")
    with log.open("w") as f:
        code = subprocess.call(
            [str(PEERS_PY), str(REPO / "benchmarks" / "peers_methods.py"), name, str(work), str(out), "--url", url,
             "--seed", str(seed), "--parse", lenient or "strict"],
            stdout=f, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"{method} exited {code}; see {log}")
    return json.loads(out.read_text())


def split_labels(text: Any) -> list[str]:
    import re

    if isinstance(text, list):
        return [str(t).strip() for t in text]
    return [p.strip() for p in re.split(r"[,|;\n]", str(text)) if p.strip()]


def score(gold: Any, pred: Any, multi: bool) -> float:
    """Exact label after strip + casefold; multi-label: set F1 over the labels."""
    if multi:
        g = {s.casefold() for s in split_labels(gold)}
        p = {s.casefold() for s in split_labels(pred)}
        return 2 * len(g & p) / (len(g) + len(p)) if g and p else 0.0
    return float(str(pred).strip().casefold() == str(gold).strip().casefold())


def one_sided(peer: list[float], ours: list[float]) -> tuple[float, str]:
    """p of "optprompt's winner is better than the peer", paired on test examples: McNemar
    (exact when few discordant pairs) on 0/1 scores, else the paired bootstrap; halved."""
    from optprompt.stats.paired import compare

    r = compare(peer, ours)
    if r.difference.estimate == 0:
        return 1.0, r.test
    p = r.p_value / 2 if r.difference.estimate > 0 else 1.0 - r.p_value / 2
    return p, r.test


def run_method(name: str, method: str, args: argparse.Namespace, weights: Path) -> None:
    """Run one method on one task; its figures and test predictions go to one JSON file."""
    work = args.work / f"{name}-seed{args.seed}"
    info = prepare(name, work, weights)
    multi = info["type"] == "multi_label"
    out = RESULTS / f"{name}-seed{args.seed}-{method}.json"
    if method == "capo" and multi:
        out.write_text(json.dumps({"skipped": "promptolution's ClassificationTask is single-label only"}))
        return
    gold = {r["id"]: r["label"] for r in map(json.loads, (work / "test.jsonl").read_text().splitlines())}
    load_before = os.getloadavg()
    before = server_counts(args.url)
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name} {method} ...", flush=True)
    try:
        if method in OURS:
            got = run_ours(name, method, work, args.url, weights, args.minutes, args.seed, collect=args.collect)
        else:
            got = run_peer(method, work, args.url, args.seed)
    except RuntimeError as e:
        print(f"  failed: {e}", flush=True)
        out.write_text(json.dumps({"failed": str(e)}))
        return
    seconds = time.perf_counter() - started
    after = server_counts(args.url)
    preds = got.pop("predictions")
    for row in preds:
        row["gold"] = gold[row["id"]]
        if method not in OURS:
            row["score"] = score(row["gold"], row["pred"], multi)
    searched = got.pop("searched", None)
    for key in ("before", "after", "seconds"):
        got.pop(key, None)
    summary = {
        "task": name,
        "method": method,
        "seed": args.seed,
        "sizes": info["sizes"],
        "minutes_budget": args.minutes if method in OURS else None,
        "test": sum(r["score"] for r in preds) / len(preds),
        "seconds": round(seconds, 1),
        "requests": after["requests"] - before["requests"],
        "prompt_tokens": after["prompt_tokens"] - before["prompt_tokens"],
        "generation_tokens": after["generation_tokens"] - before["generation_tokens"],
        "search_requests": None if searched is None else searched["requests"] - before["requests"],
        "load": [round(x, 2) for x in load_before] + [round(x, 2) for x in os.getloadavg()],
        **got,
    }
    out.write_text(json.dumps({"summary": summary, "predictions": preds}, indent=0, default=str))
    print(f"  test {summary['test']:.3f} in {seconds:.0f}s, {summary['requests']:.0f} requests", flush=True)


def table(names: list[str], seed: int) -> str:
    """The markdown table of every method found in results/peers, with the one-sided paired
    p-value of each optprompt winner against it (test examples matched by id)."""
    lines = [
        "| task | method | test | p (default better) | p (auto better) | requests | prompt / gen. tokens | minutes |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        found: dict[str, dict] = {}
        for method in OURS + PEERS + LENIENT:
            f = RESULTS / f"{name}-seed{seed}-{method}.json"
            if f.exists():
                found[method] = json.loads(f.read_text())
        scores = {m: {r["id"]: r["score"] for r in d["predictions"]} for m, d in found.items() if "predictions" in d}
        for ours in OURS:
            if ours in found and "predictions" in found[ours]:
                base = found[ours]["summary"].get("baseline") or []
                if base:
                    scores.setdefault("baseline", {r["id"]: r["score"] for r in base})
        rows = ["baseline"] + [m for m in OURS + PEERS + LENIENT if m in found]
        for method in rows:
            d = found.get(method, {})
            if method != "baseline" and "predictions" not in d:
                why = "not run" if "skipped" in d else "unfinished" if "unfinished" in d else "failed"
                lines.append(f"| {name} | {method} | — | | | | | {why.split(':')[0][:70]} |")
                continue
            if method not in scores:
                continue
            s = scores[method]
            ps = []
            for ours in OURS:
                if ours == method or ours not in scores:
                    ps.append("")
                    continue
                ids = sorted(scores[ours])
                p, test = one_sided([s[i] for i in ids], [scores[ours][i] for i in ids])
                # a bootstrap p of 0: none of compare's 2,000 resamples reached it
                ps.append(f"< 5e-4 ({test})" if p == 0 else f"{p:.2g}")
            m = d.get("summary", {})
            cost = (
                f"{m['requests']:.0f} | {m['prompt_tokens'] / 1000:.0f}k / {m['generation_tokens'] / 1000:.1f}k | "
                f"{m['seconds'] / 60:.1f}"
                if m
                else "(in the default study) | | "
            )
            lines.append(f"| {name} | {method} | {sum(s.values()) / len(s):.3f} | {ps[0]} | {ps[1]} | {cost} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8200/v1")
    p.add_argument("--tasks", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    p.add_argument(
        "--methods",
        nargs="+",
        default=OURS + PEERS,
        choices=OURS + PEERS + LENIENT,
        help="a DSPy method ending in +lenient reads each answer as the label it names, wherever it "
        "names it (ChatAdapter's own parse scores an answer without its field markers 0)",
    )
    p.add_argument("--minutes", type=float, default=3.0, help="optprompt's budget (trial time)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "peers")
    p.add_argument("--table", action="store_true", help="only print the table of the results found")
    p.add_argument(
        "--collect",
        action="store_true",
        help="optprompt's methods: read the finished study in the work folder instead of running it "
        "(a study resumed by hand); its minutes and requests are then not measured here",
    )
    args = p.parse_args(argv)
    if not args.table:
        weights = smollm2_dir()
        RESULTS.mkdir(parents=True, exist_ok=True)
        for name in args.tasks:
            for method in args.methods:
                run_method(name, method, args, weights)
    print(table(args.tasks, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
