#!/usr/bin/env python3
"""Write a Qwen3-VL-8B-shaped bf16 checkpoint filled with random bytes, for benchmarking
`interlace prune` (never commit the output: ~17.5 GB).

Shapes follow /work/shared/docs/qwen3vl-spec.md §1.2/§2 (8B-Instruct: 36 text layers, hidden 4096,
intermediate 12288, 32/8 heads of 128, vocab 151936, untied head; vision depth 27, width 1152,
intermediate 4304, deepstack taps [8, 16, 24]). Shards are filled up to ~4.9 GB in the order the hub
uses (vision and text layers interleaved by name order), with the standard index.

Usage: python3 scripts/make_8b_shaped_checkpoint.py OUT_DIR   (standard library only)
"""

import json
import os
import sys

H, I, NQ, NKV, D, V, L = 4096, 12288, 32, 8, 128, 151936, 36
C, IV, DEPTH, TAPS, P = 1152, 4304, 27, [8, 16, 24], 16
SHARD_LIMIT = 4_900_000_000
BLOCK = os.urandom(64 << 20)  # repeated: content does not matter for a copy benchmark


def tensors():
    t = {"lm_head.weight": [V, H], "model.language_model.embed_tokens.weight": [V, H], "model.language_model.norm.weight": [H]}
    for i in range(L):
        p = f"model.language_model.layers.{i}."
        t.update({p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H],
                  p + "self_attn.q_proj.weight": [NQ * D, H], p + "self_attn.k_proj.weight": [NKV * D, H],
                  p + "self_attn.v_proj.weight": [NKV * D, H], p + "self_attn.o_proj.weight": [H, NQ * D],
                  p + "self_attn.q_norm.weight": [D], p + "self_attn.k_norm.weight": [D],
                  p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H], p + "mlp.down_proj.weight": [H, I]})
    v = "model.visual."
    t.update({v + "patch_embed.proj.weight": [C, 3, 2, P, P], v + "patch_embed.proj.bias": [C], v + "pos_embed.weight": [2304, C]})
    for b in range(DEPTH):
        p = f"{v}blocks.{b}."
        for n in ("norm1", "norm2"):
            t.update({p + n + ".weight": [C], p + n + ".bias": [C]})
        t.update({p + "attn.qkv.weight": [3 * C, C], p + "attn.qkv.bias": [3 * C], p + "attn.proj.weight": [C, C], p + "attn.proj.bias": [C],
                  p + "mlp.linear_fc1.weight": [IV, C], p + "mlp.linear_fc1.bias": [IV], p + "mlp.linear_fc2.weight": [C, IV], p + "mlp.linear_fc2.bias": [C]})
    mergers = [(v + "merger.", C)] + [(f"{v}deepstack_merger_list.{j}.", 4 * C) for j in range(len(TAPS))]
    for p, norm in mergers:
        t.update({p + "norm.weight": [norm], p + "norm.bias": [norm], p + "linear_fc1.weight": [4 * C, 4 * C], p + "linear_fc1.bias": [4 * C],
                  p + "linear_fc2.weight": [H, 4 * C], p + "linear_fc2.bias": [H]})
    return dict(sorted(t.items()))


def nbytes(shape):
    n = 2
    for s in shape:
        n *= s
    return n


def write_shard(path, items):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in items:
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + nbytes(shape)]}
        offset += nbytes(shape)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        left = offset
        while left:
            n = min(left, len(BLOCK))
            f.write(BLOCK[:n])
            left -= n


def config():
    return {
        "architectures": ["Qwen3VLForConditionalGeneration"], "image_token_id": 151655, "model_type": "qwen3_vl",
        "text_config": {"attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643, "dtype": "bfloat16",
                        "eos_token_id": 151645, "head_dim": D, "hidden_act": "silu", "hidden_size": H, "initializer_range": 0.02,
                        "intermediate_size": I, "max_position_embeddings": 262144, "model_type": "qwen3_vl_text",
                        "num_attention_heads": NQ, "num_hidden_layers": L, "num_key_value_heads": NKV, "rms_norm_eps": 1e-06,
                        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
                        "rope_theta": 5000000, "use_cache": True, "vocab_size": V},
        "tie_word_embeddings": False, "transformers_version": "4.57.0.dev0", "video_token_id": 151656,
        "vision_config": {"deepstack_visual_indexes": TAPS, "depth": DEPTH, "hidden_act": "gelu_pytorch_tanh", "hidden_size": C,
                          "in_channels": 3, "initializer_range": 0.02, "intermediate_size": IV, "model_type": "qwen3_vl",
                          "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": H, "patch_size": P,
                          "spatial_merge_size": 2, "temporal_patch_size": 2},
        "vision_end_token_id": 151653, "vision_start_token_id": 151652,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=False)
    groups, current, size = [], [], 0
    for name, shape in tensors().items():
        if current and size + nbytes(shape) > SHARD_LIMIT:
            groups.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes(shape)
    groups.append(current)
    weight_map, total = {}, 0
    for k, items in enumerate(groups):
        file = f"model-{k + 1:05}-of-{len(groups):05}.safetensors"
        write_shard(os.path.join(out, file), items)
        for name, shape in items:
            weight_map[name] = file
            total += nbytes(shape)
        print(file, sum(nbytes(s) for _, s in items), flush=True)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config(), f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 151643, "eos_token_id": [151645, 151643]}, f, indent=2)
    print(f"total {total} bytes, {total // 2} parameters")


if __name__ == "__main__":
    main()
