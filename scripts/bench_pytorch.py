#!/usr/bin/env python3
"""PyTorch + transformers reference for `interlace bench`: the same three measurements on the
same shapes, printed as one JSON object with the same keys.

- forward: one text-only prefill of `--tokens` tokens (logits for every position);
- calibration: the same pass with all hidden states, and the pack-1/2/3 cosine similarities of
  every layer computed on the device in that pass (INTERLACE's calibration, in one pass);
- training step: the model with `--drop` layers removed and `--trainable` layers learning
  (the same layer choice as `interlace bench`), masked causal-LM loss, backward, AdamW; the
  trainable layers hold f32 master weights and compute under bf16 autocast; optional
  activation checkpointing (transformers' `gradient_checkpointing_enable`).

Random weights (no download). Needs torch and transformers >= 4.57 (Qwen3-VL).

Usage: python3 scripts/bench_pytorch.py --preset 8B --tokens 2048 [--image-side 448] [--no-train | --only-train]
       [--activation-checkpointing] [--device cuda] [--dtype bfloat16] [--layers N]
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F
from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

# (hidden, intermediate, layers, heads, vision depth, vision width, vision mlp, taps, tied) as
# in interlace's `Qwen3VlConfig::preset`.
PRESETS = {
    "2B": (2048, 6144, 28, 16, 24, 1024, 4096, [5, 11, 17], True),
    "4B": (2560, 9728, 36, 32, 24, 1024, 4096, [5, 11, 17], True),
    "8B": (4096, 12288, 36, 32, 27, 1152, 4304, [8, 16, 24], False),
}


def config_for(preset: str, layers: int | None) -> Qwen3VLConfig:
    h, i, n, q, depth, c, iv, taps, tied = PRESETS[preset.upper()]
    return Qwen3VLConfig(
        text_config=dict(
            vocab_size=151936, hidden_size=h, intermediate_size=i, num_hidden_layers=layers or n,
            num_attention_heads=q, num_key_value_heads=8, head_dim=128, hidden_act="silu", rms_norm_eps=1e-6,
            attention_bias=False, max_position_embeddings=262144,
            rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [24, 20, 20], "mrope_interleaved": True},
        ),
        vision_config=dict(
            depth=depth, hidden_size=c, intermediate_size=iv, num_heads=16, in_channels=3, patch_size=16,
            spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=h, num_position_embeddings=2304,
            deepstack_visual_indexes=taps, hidden_act="gelu_pytorch_tanh",
        ),
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        tie_word_embeddings=tied,
    )


def build(config: Qwen3VLConfig, device: str, dtype: torch.dtype) -> Qwen3VLForConditionalGeneration:
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=dtype)
    return model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, warmup: int, iters: int, step) -> float:
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(max(iters, 1)):
        step()
    sync(device)
    return (time.perf_counter() - start) / max(iters, 1)


def token_ids(n: int, vocab: int, device: str) -> torch.Tensor:
    # The same ordinary text ids as `interlace bench`.
    return torch.tensor([[(i * 7919 % 150_000) % vocab for i in range(n)]], device=device)


def model_inputs(config: Qwen3VLConfig, n: int, image_side: int | None, device: str, dtype: torch.dtype) -> dict:
    """Text ids, or one square image at the start and text after it, as `interlace bench --image-side`."""
    vocab = config.text_config.vocab_size
    if not image_side:
        return {"input_ids": token_ids(n, vocab, device)}
    v = config.vision_config
    grid = image_side // v.patch_size
    image_tokens = grid * grid // (v.spatial_merge_size ** 2)
    text = token_ids(n - image_tokens - 2, vocab, device)[0].tolist()
    ids = [config.vision_start_token_id] + [config.image_token_id] * image_tokens + [config.vision_end_token_id] + text
    patch_dim = v.in_channels * v.temporal_patch_size * v.patch_size ** 2
    pixels = torch.tensor([(i * 7919 % 2001) / 1000.0 - 1.0 for i in range(grid * grid * patch_dim)], device=device, dtype=dtype)
    return {"input_ids": torch.tensor([ids], device=device), "pixel_values": pixels.reshape(grid * grid, patch_dim),
            "image_grid_thw": torch.tensor([[1, grid, grid]], device=device),
            # transformers >= 5 wants the token types for M-RoPE (1: image); older versions ignore it.
            "mm_token_type_ids": torch.tensor([[int(t == config.image_token_id) for t in ids]], device=device)}


@torch.no_grad()
def calibration_pass(model, inputs: dict, packs=(1, 2, 3)) -> torch.Tensor:
    states = model(**inputs, output_hidden_states=True).hidden_states
    sims = [F.cosine_similarity(states[i].float(), states[i + k].float(), dim=-1).mean() for k in packs for i in range(len(states) - k)]
    return torch.stack(sims).cpu()  # one host transfer per sample


def interleaved_layers(n: int, drop: int, trainable: int) -> tuple[list[int], list[int]]:
    """The layers `interlace bench` drops (indices of the full model) and trains (after pruning)."""
    dropped = [n - 2 - 3 * k for k in range(drop)]
    kept = n - drop
    train = sorted({kept - 2 - 3 * min(k, kept // 3) for k in range(trainable)})
    if len(train) != trainable or min(train) < 0:
        train = list(range(trainable))
    return dropped, train


def train_step_seconds(args, config, device: str, dtype: torch.dtype) -> dict:
    model = build(config, device, dtype)
    layers = model.model.language_model.layers
    dropped, trainable = interleaved_layers(len(layers), args.drop, args.trainable)
    kept = [layer for i, layer in enumerate(layers) if i not in dropped]
    model.model.language_model.layers = torch.nn.ModuleList(kept)
    for i, layer in enumerate(kept):
        layer.self_attn.layer_idx = i
    model.config.text_config.num_hidden_layers = len(kept)
    model.requires_grad_(False)
    params = []
    for i in trainable:
        kept[i].float().requires_grad_(True)  # f32 master weights
        params += list(kept[i].parameters())
    model.train()
    if args.activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    inputs = model_inputs(config, args.tokens, args.image_side, device, dtype)
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32)

    def step():
        with autocast:
            loss = model(**inputs, labels=inputs["input_ids"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(device, args.warmup, args.iters, step)
    report = {"train_step_seconds": seconds, "train_tokens_per_s": args.tokens / seconds, "activation_checkpointing": args.activation_checkpointing,
              "train_layers": len(kept), "trainable_layers": trainable}
    if device.startswith("cuda"):
        report["train_peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        report["train_peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="8B", choices=sorted(PRESETS) + [p.lower() for p in PRESETS])
    parser.add_argument("--layers", type=int)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--image-side", type=int, help="one square image of this many pixels a side (multiple of 32)")
    parser.add_argument("--drop", type=int, default=5)
    parser.add_argument("--trainable", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--only-train", action="store_true")
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    config = config_for(args.preset, args.layers)
    report = {"implementation": f"pytorch {torch.__version__} + transformers", "preset": args.preset, "layers": config.text_config.num_hidden_layers,
              "tokens": args.tokens, "image_side": args.image_side, "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device, "dtype": args.dtype}
    if not args.only_train:
        model = build(config, args.device, dtype)
        inputs = model_inputs(config, args.tokens, args.image_side, args.device, dtype)
        with torch.no_grad():
            forward = timed(args.device, args.warmup, args.iters, lambda: model(**inputs).logits[0, 0, 0].item())
        calibration = timed(args.device, args.warmup, args.iters, lambda: calibration_pass(model, inputs))
        report.update(forward_seconds=forward, forward_tokens_per_s=args.tokens / forward,
                      calibration_seconds=calibration, calibration_tokens_per_s=args.tokens / calibration)
        del model
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if not args.no_train:
        report.update(train_step_seconds(args, config, args.device, dtype))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
