"""Benchmark: simclr's batched ``augment`` vs torchvision's per-image ``transforms.v2`` pipeline, and the
vectorised ``nt_xent_loss`` vs the notebook's readable loop version.

- ``augment(x, "strong")`` (the problem set's reference, ``autograder.simclr``): per-image random resized crop and
  horizontal flip in one ``affine_grid`` + ``grid_sample``, brightness, contrast and saturation factors drawn per
  image and broadcast, Gaussian noise, clipping;
- torchvision, per image as a ``Dataset.__getitem__`` would apply it, then stacked:
  ``v2.RandomResizedCrop(S, scale=(0.25, 1), antialias=False)``, ``v2.RandomHorizontalFlip()``,
  ``v2.ColorJitter(brightness=0.6, contrast=0.2, saturation=0.2)``, noise of std 0.05 and a clamp;
- ``nt_xent_loss`` (one 2N x 2N matrix) vs ``course_utils.simclr.nt_xent_loop`` (2N rows, 2N - 1 similarities each).

Images/s and losses/s, best of ``--repeats``, measured side by side in one run, and the ratios.

    python benchmarks/bench_simclr.py               # 2,048 images of 96x96, about a minute on 2 CPU cores
"""
from __future__ import annotations

import argparse
import time

import torch


def best_rate(fn, items: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return items / best


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="images per pass")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=64, help="N of the loss benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from torchvision.transforms import v2

    from autograder.simclr import augment, nt_xent_loss
    from course_utils.simclr import nt_xent_loop

    torch.manual_seed(0)
    images = torch.rand(args.n, 3, args.size, args.size)
    batches = images.split(args.batch)
    pipeline = v2.Compose([v2.RandomResizedCrop(args.size, scale=(0.25, 1.0), antialias=False),
                           v2.RandomHorizontalFlip(), v2.ColorJitter(brightness=0.6, contrast=0.2, saturation=0.2)])

    def per_image():
        for x in batches:
            torch.stack([(pipeline(im) + 0.05 * torch.randn_like(im)).clamp(0, 1) for im in x])

    def batched():
        for x in batches:
            augment(x, "strong")

    with torch.no_grad():
        ours, theirs = best_rate(batched, args.n, args.repeats), best_rate(per_image, args.n, args.repeats)
        z1, z2 = torch.randn(args.pairs, 128), torch.randn(args.pairs, 128)
        fast = best_rate(lambda: [nt_xent_loss(z1, z2, 0.1) for _ in range(20)], 20, args.repeats)
        slow = best_rate(lambda: nt_xent_loop(z1, z2, 0.1), 1, args.repeats)
    print(f"augment, {args.n} images of {args.size}x{args.size} in batches of {args.batch} "
          f"({torch.get_num_threads()} threads)")
    print(f"  batched augment           {ours:10.0f} images/s")
    print(f"  torchvision v2, per image {theirs:10.0f} images/s")
    print(f"  speed-up                  {ours / theirs:10.1f}x")
    print(f"nt_xent_loss, N = {args.pairs} pairs of dimension 128")
    print(f"  one 2N x 2N matrix        {fast:10.1f} losses/s")
    print(f"  loop version              {slow:10.1f} losses/s")
    print(f"  speed-up                  {fast / slow:10.0f}x")
    return {"augment": ours / theirs, "loss": fast / slow}


if __name__ == "__main__":
    main()
