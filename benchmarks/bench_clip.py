"""Benchmark: what the CLIP harness's two text-side shortcuts buy, measured side by side in one run.

1. A CLIP training step with the frozen text encoder's features cached (read from memory) vs
   running the frozen text encoder at every step.
2. Tokenising + encoding captions with per-batch padding (to the longest caption of the batch)
   vs padding every caption to 200 tokens.

The text encoder is the real-size DistilBERT architecture (``DistilBertConfig()`` defaults: 6
layers, dim 768, 66M parameters) with RANDOM weights: speed depends on the architecture, not on
the weights, and no download is needed. The tokenizer is the real uncased WordPiece vocabulary.
Captions are random sentences with Flickr8k-like lengths (about 12 words, 3 to 35).

    python benchmarks/bench_clip.py [--steps 8] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.backbones import TextEncoder, create_image_encoder, minilm_folder, normalize_imagenet
from course_utils.clip import precompute_text_features

WORDS = (
    "a an the two dog dogs man woman child children girl boy people group black white brown red blue "
    "small large young little running runs jumps playing plays sitting stands walking down through on in "
    "at near over with while into of grass water beach park street snow field ball frisbee bike shirt "
    "jacket camera building crowd rock river air mountain wearing holding looking catching swimming"
).split()


def flickr_like_captions(n: int, seed: int = 0) -> list:
    """Random captions whose word counts follow Flickr8k's (mean ~12, clipped to 3..35)."""
    rng = random.Random(seed)
    lengths = [min(35, max(3, round(rng.gammavariate(6.0, 2.0)))) for _ in range(n)]
    return [" ".join(rng.choice(WORDS) for _ in range(k)) + " ." for k in lengths]


class StandIn(nn.Module):
    """Just enough of a CLIP-like model to time a training step (linear heads; not the problem set's model)."""

    def __init__(self, image_encoder, text_dim: int, embed_dim: int = 256):
        super().__init__()
        self.image_encoder = image_encoder
        self.image_projection = nn.Linear(image_encoder.out_dim, embed_dim)
        self.text_projection = nn.Linear(text_dim, embed_dim)

    def forward(self, images, text_features):
        img = F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)  # (B, E)
        txt = F.normalize(self.text_projection(text_features), dim=-1)  # (B, E)
        return F.cross_entropy(img @ txt.T / 0.07, torch.arange(len(img)))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per variant")
    parser.add_argument("--pad-batches", type=int, default=1, help="caption batches timed per padding variant")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--image-encoder", default="resnet_tiny")
    args = parser.parse_args()
    torch.manual_seed(0)

    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    tokenizer = DistilBertTokenizerFast.from_pretrained(str(minilm_folder()))
    text_encoder = TextEncoder(DistilBertModel(DistilBertConfig()), tokenizer, "distilbert (random weights)").lock()
    image_encoder = create_image_encoder(args.image_encoder, pretrained=False)
    model = StandIn(image_encoder, text_encoder.out_dim)
    optimizer = torch.optim.AdamW(
        [{"params": list(model.image_projection.parameters()) + list(model.text_projection.parameters()), "lr": 1e-3},
         {"params": image_encoder.parameters(), "lr": 1e-4}]
    )
    B = args.batch_size
    n = B * (args.steps + 1)
    captions = flickr_like_captions(n)
    images = normalize_imagenet(torch.randint(0, 256, (n, 3, args.image_size, args.image_size), dtype=torch.uint8))
    n_params = sum(p.numel() for p in text_encoder.parameters()) / 1e6
    lengths = [len(t) for t in tokenizer(captions)["input_ids"]]
    print(f"CPU threads: {torch.get_num_threads()}; text encoder: DistilBertConfig() defaults, {n_params:.0f}M "
          f"parameters, RANDOM weights; image encoder: {args.image_encoder}; batch {B}, "
          f"{args.image_size}x{args.image_size} images")
    print(f"captions: {n}, tokens per caption: mean {statistics.mean(lengths):.1f}, max {max(lengths)}\n")

    # 1. Training step: cached text features vs the frozen encoder at every step.
    start = time.perf_counter()
    cached = precompute_text_features(text_encoder, captions, batch_size=64)  # (n, 768), once
    precompute_s = time.perf_counter() - start
    step_index = {"i": 0}

    def train_step(use_cache: bool) -> None:
        i = step_index["i"] % args.steps
        step_index["i"] += 1
        sl = slice(i * B, (i + 1) * B)
        text_features = cached[sl] if use_cache else text_encoder(captions[sl])  # (B, 768)
        loss = model(images[sl], text_features)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t_cached = timed(lambda: train_step(True), args.steps)
    t_every = timed(lambda: train_step(False), args.steps)
    print("1. CLIP training step (median)")
    print(f"   cached text features         {t_cached * 1000:8.1f} ms/step")
    print(f"   text encoder at every step   {t_every * 1000:8.1f} ms/step")
    print(f"   -> cached is {t_every / t_cached:.1f}x faster; the one-off precompute of {n} captions took "
          f"{precompute_s:.2f} s ({precompute_s / n * B * 1000:.0f} ms per {B} captions)\n")

    # 2. Tokenise + encode: per-batch padding vs padding to 200 tokens (both warm after part 1).
    batches = args.pad_batches

    def encode(padding: str) -> float:
        start = time.perf_counter()
        for s in range(0, batches * B, B):
            batch = tokenizer(captions[s : s + B], padding=padding, truncation=True, max_length=200, return_tensors="pt")
            text_encoder(batch)
        return (time.perf_counter() - start) / batches

    t_longest = encode("longest")
    t_200 = encode("max_length")
    print(f"2. Tokenise + encode {batches} batch(es) of {B} captions")
    print(f"   pad to the batch's longest   {t_longest * 1000:8.1f} ms/batch")
    print(f"   pad to 200 tokens            {t_200 * 1000:8.1f} ms/batch")
    print(f"   -> per-batch padding is {t_200 / t_longest:.1f}x faster")


if __name__ == "__main__":
    main()
