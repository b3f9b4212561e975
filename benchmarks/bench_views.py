"""Benchmark: contrastive_shapes' views, batched ``make_views`` vs a per-image torchvision pipeline.

Both make the views of the problem set's training batches (64x64 shapes, float in [0, 1], batch 32), one
view per image with its own random parameters:

- ``make_views`` (the problem set's reference, ``autograder.contrastive_shapes``): ``"crop"`` draws B square
  crops (side 0.3-1 of the image) and samples them all with one ``affine_grid`` + ``grid_sample``; ``"recolor"``
  multiplies each pixel's brightness by one random hue colour per image, one broadcast product for the batch;
- torchvision, per image as a ``Dataset.__getitem__`` would apply it, then stacked into the batch:
  ``v2.RandomResizedCrop(S, scale=(0.09, 1), ratio=(1, 1))`` (the same family of square crops, area 0.09-1) and,
  for the colour, ``v2.ColorJitter(hue=0.5)`` (torchvision's per-image colour change: a hue rotation, the
  nearest operation it offers; not the same picture, the same amount of work per image or more).

It prints images/s of each, best of ``--repeats`` passes over ``--n`` images, and the ratios, all measured side
by side in one run.

    python benchmarks/bench_views.py              # 4,096 images, well under a minute on 2 CPU cores
    python benchmarks/bench_views.py --n 1024 --repeats 1
"""
from __future__ import annotations

import argparse
import time

import torch


def batches(images: torch.Tensor, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def batched(make_views, kind: str):
    return lambda batch: make_views(batch, kind)


def per_image(transform):
    return lambda batch: torch.stack([transform(image) for image in batch])


def images_per_second(fn, images: torch.Tensor, batch_size: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches(images, batch_size):
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="images per pass")
    parser.add_argument("--size", type=int, default=64, help="image side (quick mode: 64)")
    parser.add_argument("--batch", type=int, default=32, help="batch size (the problem set's: 32)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per pipeline (the best counts)")
    args = parser.parse_args(argv)

    from torchvision.transforms import v2

    from autograder.contrastive_shapes import make_views
    from course_utils.contrastive import SHAPES_OPTIONS
    from course_utils.data.shapes import generate_shapes

    images = generate_shapes(args.n, image_size=args.size, seed=11, **SHAPES_OPTIONS).images.float() / 255
    torch.manual_seed(0)
    pipelines = {
        "crop": (batched(make_views, "crop"),
                 per_image(v2.RandomResizedCrop(args.size, scale=(0.09, 1.0), ratio=(1.0, 1.0), antialias=True))),
        "recolor": (batched(make_views, "recolor"), per_image(v2.ColorJitter(hue=0.5))),
    }
    print(f"{args.n} shapes images of {args.size}x{args.size}, batches of {args.batch}, best of {args.repeats}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'view':<8} {'make_views (batched)':>22} {'torchvision per image':>23} {'ratio':>7}")
    for kind, (ours, theirs) in pipelines.items():
        fast = images_per_second(ours, images, args.batch, args.repeats)
        slow = images_per_second(theirs, images, args.batch, args.repeats)
        print(f"{kind:<8} {fast:>16,.0f} img/s {slow:>17,.0f} img/s {fast / slow:>6.1f}x")


if __name__ == "__main__":
    main()
