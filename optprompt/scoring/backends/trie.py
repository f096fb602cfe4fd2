"""Token tries: every distinct token of a scoring job, once, and how to pack them into rows.

A scoring job is a set of (context, answers) pairs as token ids. Inserted into one trie,
contexts that share leading tokens (one candidate's prompt prefix; demonstrations that
several inputs share) and answers that share leading tokens (``very good`` / ``very
bad``) share nodes, so each distinct token path is computed once. A node's position in
the model is its depth; it attends to its ancestors and nothing else (a tree attention
mask). Nothing here touches a model: :mod:`optprompt.scoring.backends.packed` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["TokenTrie", "Scored", "build_trie", "pack_forest", "shared_prefix", "tree_mask"]


@dataclass
class TokenTrie:
    """Nodes in insertion order (a parent always before its children).

    Attributes:
        token / parent / depth: Per node; ``parent`` is -1 for a node hanging directly
            under the shared root (the cached prefix), ``depth`` counts from 0 there.
        children: Per node, token -> child node.
        roots: Token -> node for nodes directly under the root.
    """

    token: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)
    children: list[dict[int, int]] = field(default_factory=list)
    roots: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.token)

    def insert(self, tokens: Sequence[int], at: int = -1) -> list[int]:
        """Insert ``tokens`` below node ``at`` (-1: the root); the node of each token."""
        nodes = []
        for t in tokens:
            table = self.roots if at < 0 else self.children[at]
            node = table.get(t)
            if node is None:
                node = len(self.token)
                self.token.append(t)
                self.parent.append(at)
                self.depth.append(0 if at < 0 else self.depth[at] + 1)
                self.children.append({})
                table[t] = node
            nodes.append(node)
            at = node
        return nodes

    def subtree_sizes(self) -> list[int]:
        sizes = [1] * len(self.token)
        for n in range(len(self.token) - 1, -1, -1):
            p = self.parent[n]
            if p >= 0:
                sizes[p] += sizes[n]
        return sizes

    def dfs(self, root: int) -> list[int]:
        """``root`` and its descendants, every parent before its children."""
        out, stack = [], [root]
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed(list(self.children[n].values())))
        return out


@dataclass
class Scored:
    """Where each answer's log-probabilities are read: per request, per answer, the
    (predicting node, target token) pairs whose log-probabilities sum to its score."""

    trie: TokenTrie
    reads: list[list[list[tuple[int, int]]]]

    @property
    def predictors(self) -> dict[int, set[int]]:
        """Node -> the target tokens read at it."""
        out: dict[int, set[int]] = {}
        for per_request in self.reads:
            for pairs in per_request:
                for node, tok in pairs:
                    out.setdefault(node, set()).add(tok)
        return out


def shared_prefix(seqs: Sequence[Sequence[int]], cap: int) -> int:
    """How many leading tokens all ``seqs`` share, at most ``cap`` (never below 0)."""
    first = seqs[0]
    n = min(cap, len(first))
    for s in seqs[1:]:
        k = 0
        while k < n and k < len(s) and s[k] == first[k]:
            k += 1
        n = k
    return max(0, n)


def build_trie(contexts: Sequence[Sequence[int]], answers: Sequence[Sequence[Sequence[int]]], skip: int) -> Scored:
    """Insert every context (minus its first ``skip`` tokens, which are cached) and, after
    it, every answer but its last token.

    Each context must keep at least one token after ``skip``: its last token predicts the
    answers' first tokens.
    """
    trie = TokenTrie()
    reads: list[list[list[tuple[int, int]]]] = []
    for ctx, conts in zip(contexts, answers):
        if len(ctx) <= skip:
            raise ValueError("every context needs a token after the cached prefix")
        last = trie.insert(ctx[skip:])[-1]
        per_request = []
        for c in conts:
            inner = trie.insert(c[:-1], at=last)
            per_request.append(list(zip([last, *inner], c)))
        reads.append(per_request)
    return Scored(trie, reads)


def pack_forest(sizes: Sequence[int], roots: Sequence[int], budget: int) -> tuple[list[list[int]], list[int]]:
    """Bin-pack subtrees (by their ``sizes``) into rows of at most ``budget`` nodes.

    Returns the rows (lists of subtree roots, first-fit in descending size) and the roots
    whose subtree alone exceeds the budget (the caller splits those).
    """
    big = [r for r in roots if sizes[r] > budget]
    rows: list[list[int]] = []
    room: list[int] = []
    for r in sorted((r for r in roots if sizes[r] <= budget), key=lambda r: -sizes[r]):
        for i, free in enumerate(room):
            if sizes[r] <= free:
                rows[i].append(r)
                room[i] -= sizes[r]
                break
        else:
            rows.append([r])
            room.append(budget - sizes[r])
    return rows, big


def tree_mask(parents_local: Sequence[int]):  # type: ignore[no-untyped-def]
    """Boolean (Q, Q) matrix: row i may attend to column j iff j is i or an ancestor of i
    within the row (``parents_local[i]`` is i's parent's row index, or -1)."""
    import numpy as np

    q = len(parents_local)
    allowed = np.zeros((q, q), dtype=bool)
    for i, p in enumerate(parents_local):
        if p >= 0:
            allowed[i] = allowed[p]
        allowed[i, i] = True
    return allowed
