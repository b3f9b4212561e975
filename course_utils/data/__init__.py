"""Datasets of the course, behind one interface per problem-set part.

    from course_utils.data import load_autoencoder_data
    data = load_autoencoder_data()            # STL-10 in full mode, built-in shapes otherwise
    loaders = data.loaders(batch_size=128)    # {"unlabeled", "train", "test"} -> TensorLoader
    for images, _ in loaders["unlabeled"]:    # float32 (128, 3, 64, 64) in [0, 1]
        ...

=========  ===================================  ==================================
mode       autoencoder data                     images (unlabeled / train / test)
=========  ===================================  ==================================
full       STL-10 (96x96, downloaded once)      10,000 / 5,000 / 8,000
quick      built-in shapes (72x72)              5,000 / 3,000 / 2,000
grading    built-in shapes (72x72)              64 / 64 / 64
=========  ===================================  ==================================

Images are stored as uint8 at their full size; the loaders crop them to 64x64 (random flip +
random crop for the autoencoder's unlabeled images, centre crop for the labelled ones), so the
shapes (72 -> 64) mirror STL-10 (96 -> 64).
"""
from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on this machine; the message says what to download and where to put it."""


from dataclasses import dataclass, field  # noqa: E402
from typing import Dict, List, Optional, Tuple  # noqa: E402

from ..configs import mode_table as _mode_table  # noqa: E402
from .loaders import TensorImageDataset, TensorLoader, make_loader  # noqa: E402
from .shapes import COLOUR_NAMES, SHAPE_NAMES, ShapesDataset, generate_shapes  # noqa: E402

AUTOENCODER_DATASETS = ("stl10", "shapes")
CROP = 64  # the problem set's input size

# Built-in shapes: (unlabeled, train, test) images per run mode, and the drawing options.
# The sizes per mode live in the problem set's run configuration (course_utils/configs/autoencoder_probing.py).
SHAPES_SPLITS: Dict[str, Tuple[int, int, int]] = {
    mode: tuple(values["shapes_splits"]) for mode, values in _mode_table("autoencoder_probing").items()}
SHAPES_IMAGE_SIZE = 72  # random / centre crops of 64 then mirror STL-10's 96 -> 64
SHAPES_SEEDS = {"unlabeled": 1, "train": 2, "test": 3}  # independent draws per split
# Drawing options of the stand-in for STL-10: like STL-10's photos, the object is large, roughly
# centred and roughly upright, over a textured background. With these, the problem set's lesson
# shows on a CPU in minutes: a probe on the autoencoder's frozen features beats one on a random
# encoder's, and an encoder trained with the classifier beats both.
SHAPES_OPTIONS = {"spread": 0.25, "min_size": 0.25, "max_size": 0.42, "rotation": 30.0, "texture": 0.07,
                  "distractor": 0.3}


@dataclass
class AutoencoderData:
    """The three splits of the autoencoder problem set.

    Attributes:
        unlabeled: images for the autoencoder (labels ignored).
        train: labelled images for the linear probes.
        test: labelled images for the reported accuracies.
        classes: class names (``classes[label]``).
        name: ``"stl10"`` or ``"shapes"``.
        crop: side of the images the loaders produce (64).
    """

    unlabeled: TensorImageDataset
    train: TensorImageDataset
    test: TensorImageDataset
    classes: List[str]
    name: str
    crop: int = CROP
    info: dict = field(default_factory=dict)

    def loaders(self, batch_size: int = 128, device=None, seed: Optional[int] = None) -> Dict[str, TensorLoader]:
        """The problem set's loaders.

        Returns:
            ``{"unlabeled": random flip + random crop, shuffled; "train": centre crop, shuffled;
            "test": centre crop}``, each yielding float32 (B, 3, 64, 64) in [0, 1] and labels (B,).
        """
        seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
        return {
            "unlabeled": TensorLoader(self.unlabeled, batch_size, shuffle=True, augment="flip_crop", crop=self.crop,
                                      device=device, seed=seeds[0]),
            "train": TensorLoader(self.train, batch_size, shuffle=True, crop=self.crop, device=device, seed=seeds[1]),
            "test": TensorLoader(self.test, batch_size, shuffle=False, crop=self.crop, device=device, seed=seeds[2]),
        }

    def __repr__(self) -> str:
        return (f"AutoencoderData({self.name}: {len(self.unlabeled)} unlabeled, {len(self.train)} train, "
                f"{len(self.test)} test images of {self.unlabeled.image_size}x{self.unlabeled.image_size}, "
                f"cropped to {self.crop})")


def load_shapes_autoencoder_data(sizes: Tuple[int, int, int] = SHAPES_SPLITS["quick"],
                                 image_size: int = SHAPES_IMAGE_SIZE, **options) -> AutoencoderData:
    """Built-in shapes split like the problem set: unlabeled / train / test (independent draws).

    ``options`` override the drawing options (``SHAPES_OPTIONS``, see :func:`generate_shapes`).
    """
    options = {**SHAPES_OPTIONS, **options}
    splits = {
        name: generate_shapes(n, image_size=image_size, seed=SHAPES_SEEDS[name], **options)
        for name, n in zip(("unlabeled", "train", "test"), sizes)
    }
    return AutoencoderData(splits["unlabeled"], splits["train"], splits["test"], classes=list(SHAPE_NAMES),
                           name="shapes", info={"sizes": tuple(sizes), "image_size": image_size, **options})


def load_autoencoder_data(dataset: Optional[str] = None, mode: Optional[str] = None, root=None,
                          download: bool = True, sizes: Optional[Tuple[int, int, int]] = None) -> AutoencoderData:
    """Data for the autoencoder + linear-probing problem set, chosen by run mode.

    Args:
        dataset: ``"stl10"`` or ``"shapes"``; default: STL-10 in ``full`` mode, shapes otherwise.
        mode: run mode (``full``, ``quick``, ``grading``); default :func:`course_utils.modes.get_mode`.
        root: folder holding ``stl10_binary/`` (default ``data_dir()/"stl10"``).
        download: download STL-10 (about 2.6 GB, once) when it is missing.
        sizes: (unlabeled, train, test) image counts for the shapes (default by mode, see above).

    Raises:
        DatasetNotFoundError: STL-10 is missing and could not be downloaded; the message says what
            to put where, and how to switch to the built-in shapes.
    """
    from ..modes import get_mode

    mode = (mode or get_mode()).lower()
    if mode not in SHAPES_SPLITS:
        raise ValueError(f"unknown run mode {mode!r}; use one of {', '.join(SHAPES_SPLITS)}")
    dataset = (dataset or ("stl10" if mode == "full" else "shapes")).lower().replace("-", "")
    if dataset == "stl10":
        from .stl10 import load_stl10

        splits = load_stl10(root=root, download=download)
        return AutoencoderData(splits["unlabeled"], splits["train"], splits["test"],
                               classes=list(splits["train"].classes), name="stl10")
    if dataset == "shapes":
        return load_shapes_autoencoder_data(sizes or SHAPES_SPLITS[mode])
    raise ValueError(f"unknown dataset {dataset!r} for the autoencoder problem set; use one of "
                     f"{', '.join(AUTOENCODER_DATASETS)}")


__all__ = [
    "AutoencoderData", "DatasetNotFoundError", "TensorImageDataset", "TensorLoader", "make_loader",
    "ShapesDataset", "generate_shapes", "SHAPE_NAMES", "COLOUR_NAMES", "load_autoencoder_data",
    "load_shapes_autoencoder_data",
]
