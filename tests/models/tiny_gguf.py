"""Write a saved tiny Llama (``make_tiny_model_dir``) as a GGUF file with the ``gguf`` library.

The layout is llama.cpp's (``convert_hf_to_gguf.py``): tensor names ``blk.N.attn_q...``,
Q and K rows permuted for its rotary embedding (transformers undoes it on load), a
byte-level BPE tokenizer (``tokenizer.ggml.model = gpt2``) with its merges, special
tokens typed CONTROL, and the chat template. Weights are written as float32 (or float16),
so the model read back equals the original within rounding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["write_tiny_gguf"]

_LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's Q/K row order (``LlamaModel.permute`` in convert_hf_to_gguf.py)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(model_dir: Path, path: Path, *, name: str = "tiny-llama", half: bool = False) -> Path:
    """Write the model saved in ``model_dir`` to the GGUF file ``path``; return ``path``."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    tok_json = json.loads((model_dir / "tokenizer.json").read_text())
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(cfg["hidden_size"] // n_head)
    w.add_rope_freq_base(float((cfg.get("rope_parameters") or {}).get("rope_theta", cfg.get("rope_theta", 10000.0))))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if half else gguf.LlamaFileType.ALL_F32)

    vocab = tok_json["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    specials = {a["content"] for a in tok_json.get("added_tokens", []) if a.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab[tok_cfg.get("bos_token") or "<|endoftext|>"])
    w.add_eos_token_id(vocab[tok_cfg.get("eos_token") or "<|im_end|>"])
    w.add_pad_token_id(vocab[tok_cfg.get("pad_token") or "<|endoftext|>"])
    w.add_add_bos_token(False)
    template = tok_cfg.get("chat_template")
    if template is None and (model_dir / "chat_template.jinja").is_file():
        template = (model_dir / "chat_template.jinja").read_text()
    if template:
        w.add_chat_template(template)

    def add(gguf_name: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array.astype(np.float16 if half and array.ndim == 2 else np.float32))
        w.add_tensor(gguf_name, array)

    add("token_embd.weight", weights["model.embed_tokens.weight"])
    add("output_norm.weight", weights["model.norm.weight"])
    if "lm_head.weight" in weights and not cfg.get("tie_word_embeddings", False):
        add("output.weight", weights["lm_head.weight"])
    for i in range(cfg["num_hidden_layers"]):
        for hf, short in _LAYER_TENSORS.items():
            t = weights[f"model.layers.{i}.{hf}.weight"]
            if short == "attn_q":
                t = _permute(t, n_head)
            elif short == "attn_k":
                t = _permute(t, n_kv)
            add(f"blk.{i}.{short}.weight", t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
