"""Flickr8k: 8,091 photographs, five human captions each, for the CLIP problem set.

Getting the data (about 1.1 GB, once). Either copy, into ``<data dir>/flickr8k`` (the data dir is
``$COURSE_DATA_DIR``, default ``~/.cache/course_kit``; in Colab the setup cell points it at Drive):

* the Kaggle copy ``adityajn105/flickr8k`` (https://www.kaggle.com/datasets/adityajn105/flickr8k)::

      kaggle datasets download -d adityajn105/flickr8k && unzip flickr8k.zip -d <data dir>/flickr8k
      # -> flickr8k/Images/*.jpg and flickr8k/captions.txt (header "image,caption")

* or the GitHub release mirror (the original Flickr8k layout)::

      wget https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_Dataset.zip
      wget https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip
      unzip Flickr8k_Dataset.zip -d <data dir>/flickr8k && unzip Flickr8k_text.zip -d <data dir>/flickr8k
      # -> flickr8k/Flicker8k_Dataset/*.jpg and flickr8k/Flickr8k.token.txt ("img.jpg#k<TAB>caption")

Both layouts are read as they are. The split follows the problem set: 80/20 **by image** with
seed 42 (an image's five captions never straddle the split); training pairs each image with
ONE caption (its first), evaluation keeps all five. Images are decoded once, resized (shorter
side to ``image_size``, then a centre crop) and cached as a uint8 tensor file, so that the
second run loads in a second.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..paths import cache_dir, data_dir
from . import DatasetNotFoundError  # one error type for every dataset of the kit

KAGGLE_URL = "https://www.kaggle.com/datasets/adityajn105/flickr8k"
MIRROR_IMAGES_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_Dataset.zip"
MIRROR_TEXT_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip"
VAL_FRACTION = 0.2  # share of images held out for evaluation (the problem set's 80/20 split)
CACHE_VERSION = 1  # bump when the resizing changes, so that old cache files are not reused

IMAGE_DIRS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset")  # Kaggle, GitHub mirror (sic), variants
CAPTION_FILES = ("captions.txt", "Flickr8k.token.txt", "Flickr8k_text/Flickr8k.token.txt")


# --------------------------------------------------------------------------------------
# The split object shared by every caption dataset (Flickr8k and captioned shapes)
# --------------------------------------------------------------------------------------
@dataclass
class CaptionSplit:
    """Images of one split and all their captions.

    Attributes:
        images: uint8 (N, 3, H, W), one row per unique image.
        image_ids: N names (file names for Flickr8k, ``shape_00012`` for shapes).
        captions: N lists of captions (five per image for Flickr8k and shapes).
        labels: optional long (N,) class labels (shapes only; Flickr8k has none).
    """

    images: torch.Tensor  # uint8 (N, 3, H, W)
    image_ids: List[str]  # (N,) names
    captions: List[List[str]]  # N lists of captions
    labels: Optional[torch.Tensor] = None  # long (N,) or None

    def __post_init__(self):
        n = self.images.shape[0]
        if len(self.image_ids) != n or len(self.captions) != n:
            raise ValueError(
                f"a split needs one id and one caption list per image: {n} images, "
                f"{len(self.image_ids)} ids, {len(self.captions)} caption lists"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def first_captions(self) -> List[str]:
        """One caption per image, the first: the training pairs (image i, caption i)."""
        return [caps[0] for caps in self.captions]

    def flat_captions(self) -> Tuple[List[str], torch.Tensor]:
        """Every caption of every image, for retrieval evaluation.

        Returns ``(captions, caption_to_image)``: M strings and a long (M,) tensor giving the row
        of ``images`` each caption describes. Each image appears once in ``images``.
        """
        captions = [c for caps in self.captions for c in caps]
        caption_to_image = torch.repeat_interleave(
            torch.arange(len(self.captions)), torch.tensor([len(c) for c in self.captions], dtype=torch.long)
        )  # (M,)
        return captions, caption_to_image

    def subset(self, indices: Sequence[int]) -> "CaptionSplit":
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return CaptionSplit(
            self.images[idx], [self.image_ids[i] for i in idx.tolist()], [self.captions[i] for i in idx.tolist()],
            None if self.labels is None else self.labels[idx],
        )

    def __repr__(self) -> str:
        per = {len(c) for c in self.captions}
        return (f"CaptionSplit({len(self)} images of {tuple(self.images.shape[1:])}, "
                f"{sum(len(c) for c in self.captions)} captions ({'/'.join(map(str, sorted(per)))} per image))")


@dataclass
class CaptionData:
    """A caption dataset split by image: ``train`` (80%) and ``val`` (20%).

    Train on ``data.train.images`` paired with ``data.train.first_captions()``; evaluate
    retrieval on ``data.val.images`` with ``data.val.flat_captions()`` (all captions).
    """

    train: CaptionSplit
    val: CaptionSplit
    name: str  # "flickr8k" or "shapes"
    image_size: int  # side of the square images
    classes: Optional[List[str]] = None  # names of ``labels`` (shapes only)
    info: Dict[str, object] = field(default_factory=dict)  # where the data came from

    def __repr__(self) -> str:
        return f"CaptionData({self.name!r}, image_size={self.image_size},\n  train={self.train!r},\n  val={self.val!r})"


def split_by_image(n_images: int, seed: int = 42, val_fraction: float = VAL_FRACTION) -> Tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of an 80/20 split of ``n_images`` images, by image.

    The held-out images are ``np.random.seed(seed); np.random.choice(n, int(0.2 * n), replace=False)``
    as in Simple CLIP, drawn from a private generator so global random state is untouched.
    """
    rng = np.random.RandomState(seed)
    val = np.sort(rng.choice(np.arange(n_images), size=int(val_fraction * n_images), replace=False))
    train = np.setdiff1d(np.arange(n_images), val)
    return train, val


# --------------------------------------------------------------------------------------
# Reading Flickr8k
# --------------------------------------------------------------------------------------
def flickr8k_root(root=None) -> Path:
    """The Flickr8k folder: ``root`` if given, else ``<data dir>/flickr8k``."""
    return Path(root).expanduser() if root is not None else data_dir() / "flickr8k"


def _find(root: Path, names: Sequence[str]) -> Optional[Path]:
    for name in names:
        for candidate in (root / name, *(p / name for p in sorted(root.iterdir()) if p.is_dir())):
            if candidate.exists():
                return candidate
    return None


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_captions(path, dropped: Optional[Dict[str, int]] = None) -> Dict[str, List[str]]:
    """Captions per image file name, in file order, from either caption file format.

    * ``captions.txt`` (Kaggle): header ``image,caption`` then ``name.jpg,caption`` lines; a caption
      may itself hold commas, so each line is split on its FIRST comma only.
    * ``Flickr8k.token.txt`` (original): ``name.jpg#k<TAB>caption`` lines, k = 0..4.

    An entry whose name is not an image file name is dropped: the GitHub copy of
    ``Flickr8k.token.txt`` lists five captions of ``2258277193_586949ec62.jpg.1``, an image that no
    archive holds (public loaders drop it too). ``dropped``, when given, receives each dropped name
    with its number of captions. A missing ``.jpg`` is still an incomplete download (see
    :func:`load_image_tensor`).
    """
    captions: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "\t" in line:  # Flickr8k.token.txt
            name, caption = line.split("\t", 1)
            name = name.split("#", 1)[0]
        else:
            if number == 1 and line.replace(" ", "").lower() == "image,caption":
                continue  # the Kaggle header
            if "," not in line:
                raise ValueError(f"{path}, line {number}: expected 'image,caption', obtained {line[:80]!r}")
            name, caption = line.split(",", 1)
        name = name.strip()
        if not name.lower().endswith(IMAGE_SUFFIXES):  # e.g. 2258277193_586949ec62.jpg.1
            if dropped is not None:
                dropped[name] = dropped.get(name, 0) + 1
            continue
        captions.setdefault(name, []).append(caption.strip().strip('"').strip())
    if not captions:
        raise ValueError(f"{path} holds no captions")
    return captions


def load_image(path, image_size: int) -> np.ndarray:
    """One RGB image resized so its shorter side is ``image_size``, centre-cropped to a square.

    Returns uint8 (3, image_size, image_size).
    """
    from PIL import Image

    with Image.open(path) as img:
        img.draft("RGB", (image_size, image_size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when possible
        img = img.convert("RGB")
        w, h = img.size
        scale = image_size / min(w, h)
        new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
        img = img.resize((new_w, new_h), Image.BICUBIC, reducing_gap=None)
        left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
        img = img.crop((left, top, left + image_size, top + image_size))
        return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()  # (3, S, S)


def _missing_message(root: Path, what: str) -> str:
    return (
        f"Flickr8k was not found: {what}.\n"
        f"Flickr8k is about 1.1 GB (8,091 JPEG images + captions). Download it once and unpack it into {root}:\n"
        f"  Kaggle ({KAGGLE_URL}): kaggle datasets download -d adityajn105/flickr8k && unzip flickr8k.zip -d {root}\n"
        f"      -> {root}/Images/*.jpg and {root}/captions.txt\n"
        f"  or the GitHub mirror: {MIRROR_IMAGES_URL}\n"
        f"                   and {MIRROR_TEXT_URL} (unzip both into {root})\n"
        f"      -> {root}/Flicker8k_Dataset/*.jpg and {root}/Flickr8k.token.txt\n"
        f"Or pass root='/path/to/flickr8k', or set COURSE_DATA_DIR to the folder that holds flickr8k/.\n"
        f"Without the download, use the built-in captioned shapes: os.environ['COURSE_MODE'] = 'quick'."
    )


def locate_flickr8k(root=None) -> Tuple[Path, Path]:
    """``(image folder, caption file)`` of a Flickr8k copy in either layout, or DatasetNotFoundError."""
    root = flickr8k_root(root)
    if not root.is_dir():
        raise DatasetNotFoundError(_missing_message(root, f"the folder {root} does not exist"))
    images = _find(root, IMAGE_DIRS)
    captions = _find(root, CAPTION_FILES)
    if images is None or captions is None:
        missing = [n for n, p in (("an image folder (Images/ or Flicker8k_Dataset/)", images),
                                  ("a caption file (captions.txt or Flickr8k.token.txt)", captions)) if p is None]
        raise DatasetNotFoundError(_missing_message(root, f"{root} has no {' and no '.join(missing)}"))
    return images, captions


def _cache_file(images_dir: Path, names: List[str], image_size: int) -> Path:
    key = f"v{CACHE_VERSION}|{images_dir.resolve()}|{image_size}|" + "|".join(names)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir("flickr8k") / f"images_{len(names)}_s{image_size}_{digest}.pt"


def load_image_tensor(images_dir: Path, names: List[str], image_size: int, cache: bool = True,
                      num_workers: Optional[int] = None) -> torch.Tensor:
    """Decode and resize the named images into uint8 (N, 3, S, S), cached in ``cache_dir('flickr8k')``."""
    from ..training import progress

    path = _cache_file(images_dir, names, image_size)
    if cache and path.exists():
        try:
            return torch.load(path, weights_only=True)["images"]
        except Exception:  # damaged cache file: decode again
            pass
    missing = [n for n in names if not (images_dir / n).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} image(s) listed in the caption file are missing from {images_dir}, "
            f"e.g. {missing[:3]}; the download is probably incomplete: unpack the image archive again."
        )
    workers = num_workers or min(8, os.cpu_count() or 1)
    images = torch.empty((len(names), 3, image_size, image_size), dtype=torch.uint8)  # (N, 3, S, S)
    with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding
        decoded = pool.map(lambda n: load_image(images_dir / n, image_size), names)
        for i, array in enumerate(progress(decoded, total=len(names), desc="decoding Flickr8k", unit="img")):
            images[i] = torch.from_numpy(array)
    if cache:
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
        try:
            torch.save({"images": images, "names": names}, tmp)
            os.replace(tmp, path)  # readers never see a half-written file
        except OSError:  # a full or read-only disk only costs the cache
            tmp.unlink(missing_ok=True)
    return images


def load_flickr8k(root=None, image_size: int = 64, split_seed: int = 42, max_images: Optional[int] = None,
                  cache: bool = True) -> CaptionData:
    """Load Flickr8k split 80/20 by image (seed 42), images as uint8 (N, 3, image_size, image_size).

    Args:
        root: folder holding the Kaggle layout (``Images/``, ``captions.txt``) or the original one
            (``Flicker8k_Dataset/``, ``Flickr8k.token.txt``); default ``<data dir>/flickr8k``.
        image_size: side of the square images (64 in the problem set).
        split_seed: seed of the split by image (42 in the problem set).
        max_images: keep only the first ``max_images`` images (sorted by name) before splitting.
        cache: keep the decoded images in a tensor file so that later runs skip decoding.

    Raises:
        DatasetNotFoundError: the data is not there; the message says what to download and where.
    """
    images_dir, caption_file = locate_flickr8k(root)
    dropped: Dict[str, int] = {}
    by_image = read_captions(caption_file, dropped)
    names = sorted(by_image)  # sorted by file name: the split does not depend on the file's order
    if max_images is not None:
        names = names[: int(max_images)]
    images = load_image_tensor(images_dir, names, image_size, cache=cache)  # (N, 3, S, S)
    train_idx, val_idx = split_by_image(len(names), seed=split_seed)
    full = CaptionSplit(images, names, [by_image[n] for n in names])
    return CaptionData(
        train=full.subset(train_idx), val=full.subset(val_idx), name="flickr8k", image_size=image_size,
        info={"root": str(images_dir.parent), "caption_file": str(caption_file), "split_seed": split_seed,
              # caption entries that name no image file (2258277193_586949ec62.jpg.1 in the GitHub copy)
              "dropped_entries": sum(dropped.values()), "dropped_names": sorted(dropped)},
    )
