"""Write a tiny Llama as a GGUF file with the gguf package's own writer (needs `pip install gguf`).

llama.cpp stores q_proj and k_proj rows in an interleaved rotary order (each head's two rotary
halves alternate); transformers undoes that on load, so the writer applies it here, otherwise the
loaded model would not compute the written one. The tokenizer is stored in GPT-2 (byte-pair) form
with the words as tokens and no merges: enough for transformers to rebuild a tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import LlamaForCausalLM

FILE_TYPES = {"F32": 0, "Q8_0": 7}


def rotary_interleave(weight: np.ndarray, heads: int) -> np.ndarray:
    """Per head, row order [0, h/2, 1, h/2+1, ...]: the layout llama.cpp reads q and k in."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(model: LlamaForCausalLM, tokenizer, path: Path, quantization: str = "Q8_0") -> Path:
    """``model`` (and ``tokenizer``) as a GGUF file whose 2-D weights are stored as ``quantization``."""
    import gguf

    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(FILE_TYPES[quantization])
    vocab = [tok for tok, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(vocab)
    writer.add_token_types([gguf.TokenType.CONTROL if t.startswith("<") else gguf.TokenType.NORMAL for t in vocab])
    writer.add_token_merges([])
    writer.add_token_scores([0.0] * len(vocab))
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    qtype = getattr(gguf.GGMLQuantizationType, quantization)
    for name, tensor in model.state_dict().items():
        array = tensor.detach().to(torch.float32).numpy()
        if name in names:
            target = names[name]
        else:
            _, _, layer, module, *_ = name.split(".")
            short = name.split(f"layers.{layer}.")[1].removesuffix(".weight")
            target = f"blk.{layer}.{per_layer[short]}.weight"
            if short == "self_attn.q_proj":
                array = rotary_interleave(array, cfg.num_attention_heads)
            elif short == "self_attn.k_proj":
                array = rotary_interleave(array, cfg.num_key_value_heads)
        if array.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
            writer.add_tensor(target, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(target, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_gguf_with_architecture(path: Path, architecture: str) -> Path:
    """A valid GGUF file with only a header naming `architecture` and one small tensor."""
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
