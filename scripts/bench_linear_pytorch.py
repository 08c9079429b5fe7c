"""PyTorch twin of `cargo bench -p interlace-qwen3vl --bench linear`: GFLOP/s of one
`torch.nn.functional.linear` (what transformers' nn.Linear calls) at the Qwen3-VL-2B text-layer
shapes, 256 tokens, f32, on the CPU with torch's default intra-op threads.

Usage: python3 scripts/bench_linear_pytorch.py [--tokens 256] [--seconds 3]
"""
import argparse
import time

import torch

SHAPES = [("q_proj", 2048, 2048), ("k_proj", 2048, 1024), ("gate_proj", 2048, 6144), ("down_proj", 6144, 2048), ("lm_head", 2048, 151936)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode():
        for name, fan_in, fan_out in SHAPES:
            weight = torch.randn(fan_out, fan_in) * 0.02
            x = torch.randn(1, args.tokens, fan_in)
            torch.nn.functional.linear(x, weight)  # warm-up
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                torch.nn.functional.linear(x, weight)
                calls += 1
            seconds = (time.perf_counter() - started) / calls
            flops = 2 * args.tokens * fan_in * fan_out
            print(f"{name}/{args.tokens}x{fan_in}x{fan_out}: {seconds * 1e3:.2f} ms, {flops / seconds / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
