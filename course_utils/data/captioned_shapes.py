"""Captioned shapes: the offline stand-in for Flickr8k, and the one loader for caption data.

Each generated image (see :mod:`course_utils.data.shapes`) carries five differently phrased
captions of its shape, colour, size and position ("a small red star in the top left corner").
:func:`load_captioned_shapes` returns the same :class:`CaptionData` object as
:func:`~course_utils.data.flickr8k.load_flickr8k` (80/20 split by image, seed 42), so a
notebook runs unchanged on either. :func:`load_caption_data` picks one by run mode:

=========  ============================================  ================
mode       data                                          images
=========  ============================================  ================
full       Flickr8k (download once, see flickr8k.py)     8,091 (6,473 / 1,618)
quick      captioned shapes                              2,000 (1,600 / 400)
grading    captioned shapes                              64 (52 / 12)
=========  ============================================  ================
"""
from __future__ import annotations

from typing import Optional

from ..configs import mode_table
from .flickr8k import CaptionData, CaptionSplit, load_flickr8k, split_by_image

# Images per run mode: the problem set's run configuration (course_utils/configs/simple_clip.py).
SHAPES_IMAGES = {mode: values["caption_images"] for mode, values in mode_table("simple_clip").items()
                 if values["caption_dataset"] == "shapes"}
DATASETS = ("flickr8k", "shapes")


def load_captioned_shapes(n_images: int = 2000, image_size: int = 64, seed: int = 0, split_seed: int = 42) -> CaptionData:
    """Generated shapes with five captions each, split 80/20 by image like Flickr8k.

    Besides the captions, each split carries the shape class in ``labels`` (ten classes, names in
    ``data.classes``), which the linear probe uses.
    """
    from .shapes import generate_shapes

    shapes = generate_shapes(n_images, image_size=image_size, seed=seed)
    full = CaptionSplit(
        images=shapes.images,  # uint8 (N, 3, S, S)
        image_ids=[f"shape_{i:05d}" for i in range(len(shapes.images))],
        captions=[list(c) for c in shapes.captions],  # N lists of 5 captions
        labels=shapes.labels,  # long (N,)
    )
    train_idx, val_idx = split_by_image(len(full), seed=split_seed)
    return CaptionData(
        train=full.subset(train_idx), val=full.subset(val_idx), name="shapes", image_size=image_size,
        classes=list(shapes.classes), info={"n_images": n_images, "seed": seed, "split_seed": split_seed},
    )


def load_caption_data(dataset: Optional[str] = None, mode: Optional[str] = None, root=None,
                      image_size: int = 64, n_images: Optional[int] = None) -> CaptionData:
    """Caption data for the CLIP problem set, chosen by run mode unless ``dataset`` says which.

    Args:
        dataset: ``"flickr8k"`` or ``"shapes"``; default: Flickr8k in ``full`` mode, captioned
            shapes in ``quick`` and ``grading`` (which never download anything).
        mode: run mode; default :func:`course_utils.modes.get_mode`.
        root: Flickr8k folder (see :func:`load_flickr8k`).
        image_size: side of the square images (64 in the problem set).
        n_images: number of shape images (default 2,000 in quick, 64 in grading), or a cap on
            the number of Flickr8k images.
    """
    from ..modes import get_mode

    mode = mode or get_mode()
    dataset = dataset or ("flickr8k" if mode == "full" else "shapes")
    if dataset == "flickr8k":
        return load_flickr8k(root=root, image_size=image_size, max_images=n_images)
    if dataset == "shapes":
        n = n_images if n_images is not None else SHAPES_IMAGES.get(mode, SHAPES_IMAGES["quick"])
        return load_captioned_shapes(n_images=n, image_size=image_size)
    raise ValueError(f"unknown caption dataset {dataset!r}; use one of {', '.join(DATASETS)}")
