"""Flickr8k's caption file as the GitHub copy has it (issue 13): the stray `2258277193_586949ec62.jpg.1`
entry is dropped and counted; an image that is really missing still says the download is incomplete."""
import numpy as np
import pytest
from PIL import Image

from course_utils.data.flickr8k import DatasetNotFoundError, load_flickr8k, read_captions

NAMES = ["1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg",
         "1003163366_44323f5815.jpg", "1007129816_e794419615.jpg"]
STRAY = "2258277193_586949ec62.jpg.1"


def _write(root, names, listed):
    (root / "Flicker8k_Dataset").mkdir(parents=True)
    for i, name in enumerate(names):
        array = np.full((20, 30, 3), 40 * i, dtype=np.uint8)
        Image.fromarray(array).save(root / "Flicker8k_Dataset" / name)
    lines = [f"{name}#{k}\tA dog number {i} runs in the grass , caption {k} ."
             for i, name in enumerate(listed) for k in range(5)]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_stray_jpg_1_entry_is_dropped_and_counted(tmp_path):
    root = tmp_path / "flickr8k"
    listed = NAMES[:3] + [STRAY] + NAMES[3:]  # where the GitHub copy has it: among the others
    _write(root, NAMES, listed)
    dropped = {}
    captions = read_captions(root / "Flickr8k.token.txt", dropped)
    assert sorted(captions) == sorted(NAMES) and dropped == {STRAY: 5}
    data = load_flickr8k(root, image_size=8, cache=False)
    assert sorted(data.train.image_ids + data.val.image_ids) == sorted(NAMES)
    assert data.info["dropped_entries"] == 5 and data.info["dropped_names"] == [STRAY]


def test_a_missing_image_is_still_an_incomplete_download(tmp_path):
    root = tmp_path / "flickr8k"
    _write(root, NAMES[:-1], NAMES + [STRAY])
    with pytest.raises(DatasetNotFoundError, match="probably incomplete") as err:
        load_flickr8k(root, image_size=8, cache=False)
    assert NAMES[-1] in str(err.value) and STRAY not in str(err.value)
