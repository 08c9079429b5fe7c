#!/usr/bin/env python3
"""Images/s of transformers' Qwen3-VL image processor on the images that
`crates/interlace-qwen3vl/benches/preprocess.rs` times, for comparing with the Rust processor.

Run from the repository root (CPU only, no network):

    HF_HUB_OFFLINE=1 PYTHONPATH=/opt/pyenv-fixtures/tf-5.17.0 /opt/pyenv-fixtures/bin/python \
        scripts/bench_processor_transformers.py [--seconds 3]

Loads `AutoImageProcessor` from fixtures/tokenizer/qwen3 (its preprocessor_config.json names
Qwen2VLImageProcessorFast, which transformers 5 loads as Qwen2VLImageProcessor on its
torchvision backend: the one interlace matches), decodes every image once,
then times `processor(images=img, return_tensors="pt")` per image, first with torch's default
thread count, then with one thread (the Rust processor is single-threaded).
"""

import argparse
import time

import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor

PHOTOS = ["landscape.png", "portrait.png", "proc_landscape_208x368.png", "proc_portrait_330x230.png"]


def synthetic_full_hd():
    """The 1920x1080 image of preprocess.rs, from the same per-pixel formula."""
    y, x = np.mgrid[0:1080, 0:1920].astype(np.int64)
    rgb = np.stack([(x * 7 + y * 3) % 256, (x * y) % 256, (x ^ y) & 255], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def load_images():
    """(name, PIL image) pairs, decoded and converted up front so only preprocessing is timed."""
    images = [(f, Image.open(f"fixtures/images/{f}").convert("RGB")) for f in PHOTOS]
    images.append(("synthetic", synthetic_full_hd()))
    return [(f"{n} ({img.width}x{img.height})", img) for n, img in images]


def images_per_second(processor, img, seconds):
    """Mean throughput over at least `seconds` of back-to-back calls, after a short warm-up."""
    for _ in range(3):
        processor(images=img, return_tensors="pt")
    calls, start = 0, time.perf_counter()
    while calls < 5 or time.perf_counter() - start < seconds:
        processor(images=img, return_tensors="pt")
        calls += 1
    return calls / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per image and thread count")
    args = parser.parse_args()
    processor = AutoImageProcessor.from_pretrained("fixtures/tokenizer/qwen3")
    images = load_images()
    default_threads = torch.get_num_threads()
    backend = type(processor).__mro__[1].__name__  # TorchvisionBackend for the fast processor
    print(f"{type(processor).__name__} ({backend}), images/s, torch {torch.__version__}")
    for threads in (default_threads, 1):
        torch.set_num_threads(threads)
        for name, img in images:
            print(f"threads={threads:<3} {name:<45} {images_per_second(processor, img, args.seconds):10.1f} images/s")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
