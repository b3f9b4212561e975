"""Benchmark: the autoencoder's data pipeline, tensor-resident batched augmentation vs per-image PIL.

Both pipelines produce the problem set's unlabeled batches: RandomHorizontalFlip + RandomCrop(64)
of 96x96 images, pixels in [0, 1], batch 128, shuffled.

- ``TensorLoader``: all images in one uint8 tensor; flip + crop drawn per image but applied to the
  whole batch with one indexing operation (``course_utils.data.loaders``).
- torchvision: ``Compose([RandomHorizontalFlip(), RandomCrop(64), ToTensor()])`` on a PIL image made
  per item exactly as ``torchvision.datasets.STL10.__getitem__`` makes it, through
  ``DataLoader(batch_size=128, shuffle=True, num_workers=0)``.

It prints images/s of each pipeline alone, then the time of one epoch of the real autoencoder
step (the course's conv autoencoder, forward + MSE + backward + Adam) fed by each, and the ratios,
all measured side by side in one run.

    python benchmarks/bench_augmentation.py            # 5,000 images, about a minute on 2 CPU cores
    python benchmarks/bench_augmentation.py --n 2000 --repeats 1
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn


def course_autoencoder() -> nn.Module:
    """The problem set's architecture: 3->12->24->48->24 and back, kernel 4, stride 2, padding 1."""
    chans = [3, 12, 24, 48, 24]
    enc, dec = [], []
    for c_in, c_out in zip(chans[:-1], chans[1:]):
        enc += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU()]
    rev = chans[::-1]
    for i, (c_in, c_out) in enumerate(zip(rev[:-1], rev[1:])):
        dec += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.Sigmoid() if i == len(rev) - 2 else nn.ReLU()]
    return nn.Sequential(*enc, *dec)  # (B, 3, 64, 64) -> (B, 24, 4, 4) -> (B, 3, 64, 64)


class STL10LikeDataset(torch.utils.data.Dataset):
    """uint8 (N, 3, 96, 96) images served as torchvision's STL10 serves them: one PIL image per item."""

    def __init__(self, data: np.ndarray, transform):
        self.data, self.transform = data, transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        from PIL import Image

        img = Image.fromarray(np.transpose(self.data[index], (1, 2, 0)))  # as in STL10.__getitem__
        return self.transform(img), -1


def tensor_loader(images: torch.Tensor, device, seed: int = 0):
    from course_utils.data import TensorImageDataset, TensorLoader

    return TensorLoader(TensorImageDataset(images), batch_size=128, shuffle=True, augment="flip_crop", crop=64,
                        device=device, seed=seed)


def torchvision_loader(images: torch.Tensor, seed: int = 0):
    import torchvision.transforms as T

    transform = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(64), T.ToTensor()])
    dataset = STL10LikeDataset(images.numpy(), transform)
    return torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, num_workers=0,
                                       generator=torch.Generator().manual_seed(seed))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_second(loader, device, repeats: int) -> float:
    """Best of ``repeats`` full passes, batches moved to ``device`` (as a training loop would)."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start, count = time.perf_counter(), 0
        for images, _ in loader:
            images = images.to(device, non_blocking=True)  # (B, 3, 64, 64)
            count += images.shape[0]
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return count / best


def autoencoder_epoch(loader, device, seed: int = 0) -> float:
    """Seconds for one epoch of the autoencoder's training step fed by ``loader``."""
    torch.manual_seed(seed)
    model = course_autoencoder().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, _ = next(iter(loader))  # warm-up step (allocations, kernel selection), not timed
    nn.functional.mse_loss(model(images.to(device)), images.to(device)).backward()
    optimizer.zero_grad()
    _sync(device)
    start = time.perf_counter()
    for images, _ in loader:
        images = images.to(device, non_blocking=True)  # (B, 3, 64, 64)
        loss = nn.functional.mse_loss(model(images), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="number of 96x96 images (default 5000)")
    parser.add_argument("--repeats", type=int, default=2, help="passes per throughput figure; the best is kept")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, 3, 96, 96), dtype=torch.uint8, generator=generator)  # (N, 3, 96, 96)
    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}; "
          f"{args.n} images 96x96 -> flip + crop 64, batch 128")

    fast, slow = tensor_loader(images, device), torchvision_loader(images)
    next(iter(fast)), next(iter(slow))  # warm-up
    fast_ips = images_per_second(fast, device, args.repeats)
    slow_ips = images_per_second(slow, device, args.repeats)
    print(f"data pipeline alone:  TensorLoader {fast_ips:12,.0f} images/s | torchvision PIL {slow_ips:10,.0f} images/s"
          f" | ratio {fast_ips / slow_ips:6.1f}x")

    fast_epoch = autoencoder_epoch(fast, device)
    slow_epoch = autoencoder_epoch(slow, device)
    print(f"autoencoder epoch:    TensorLoader {fast_epoch:10.2f} s        | torchvision PIL {slow_epoch:8.2f} s"
          f"        | ratio {slow_epoch / fast_epoch:6.2f}x")
    return {"tensor_ips": fast_ips, "pil_ips": slow_ips, "tensor_epoch_s": fast_epoch, "pil_epoch_s": slow_epoch}


if __name__ == "__main__":
    main()
