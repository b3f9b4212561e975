"""Caption data: Flickr8k in both public layouts (on a tiny copy the test writes) and captioned shapes."""
import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data import flickr8k
from course_utils.data.captioned_shapes import load_caption_data, load_captioned_shapes
from course_utils.data.flickr8k import (
    CaptionData,
    DatasetNotFoundError,
    load_flickr8k,
    read_captions,
    split_by_image,
)

N_IMAGES = 10


def _captions(i):
    return [
        f"a dog, number {i}, runs on the grass",  # commas inside a caption
        f"dog {i} plays in the park",
        f"a brown dog {i} jumps",
        f"the dog {i} is outside",
        f"picture {i} of a dog",
    ]


def _write_images(folder, names):
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        # Wide images: a red centre square between blue side bands, so a centre crop is pure red.
        w, h = 48 + 4 * (i % 3), 24 + 2 * (i % 2)
        array = np.zeros((h, w, 3), dtype=np.uint8)
        array[..., 2] = 255
        left = (w - h) // 2
        array[:, left : left + h] = (255, 0, 0)
        array[0, left, 1] = i  # makes every image distinct
        Image.fromarray(array).save(folder / name, quality=95)


def _names():
    return [f"{1000 + 7 * i}_{i:03d}ab.jpg" for i in range(N_IMAGES)]


@pytest.fixture()
def kaggle_root(tmp_path):
    root = tmp_path / "flickr8k"
    names = _names()
    _write_images(root / "Images", names)
    lines = ["image,caption"]
    for i, name in enumerate(reversed(names)):  # file order differs from sorted order on purpose
        idx = N_IMAGES - 1 - i
        lines += [f"{name},{c}" for c in _captions(idx)]
    (root / "captions.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def mirror_root(tmp_path):
    root = tmp_path / "mirror"
    names = _names()
    _write_images(root / "Flicker8k_Dataset", names)
    lines = [f"{name}#{k}\t{c}" for i, name in enumerate(names) for k, c in enumerate(_captions(i))]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    return root


def test_read_captions_splits_on_the_first_comma(kaggle_root):
    captions = read_captions(kaggle_root / "captions.txt")
    assert len(captions) == N_IMAGES and all(len(c) == 5 for c in captions.values())
    assert captions[_names()[3]][0] == "a dog, number 3, runs on the grass"


def test_split_is_80_20_by_image_with_seed_42(kaggle_root):
    data = load_flickr8k(kaggle_root, image_size=16)
    assert isinstance(data, CaptionData) and data.name == "flickr8k"
    assert len(data.train) == 8 and len(data.val) == 2
    assert set(data.train.image_ids).isdisjoint(data.val.image_ids)
    assert sorted(data.train.image_ids + data.val.image_ids) == sorted(_names())
    train_idx, val_idx = split_by_image(N_IMAGES, seed=42)
    expected_val = np.sort(np.random.RandomState(42).choice(N_IMAGES, 2, replace=False))
    assert val_idx.tolist() == expected_val.tolist()
    assert data.val.image_ids == [sorted(_names())[i] for i in val_idx]
    other = load_flickr8k(kaggle_root, image_size=16, split_seed=0)
    assert len(other.val) == 2


def test_training_uses_one_caption_and_evaluation_all_five(kaggle_root):
    data = load_flickr8k(kaggle_root, image_size=16)
    firsts = data.train.first_captions()
    assert len(firsts) == len(data.train)
    for name, caption in zip(data.train.image_ids, firsts):
        i = _names().index(name)
        assert caption == _captions(i)[0]
    captions, caption_to_image = data.val.flat_captions()
    assert len(captions) == 5 * len(data.val) and caption_to_image.tolist() == [0] * 5 + [1] * 5
    for caption, row in zip(captions, caption_to_image.tolist()):
        assert caption in _captions(_names().index(data.val.image_ids[row]))


def test_images_are_resized_and_centre_cropped(kaggle_root):
    data = load_flickr8k(kaggle_root, image_size=16)
    images = torch.cat([data.train.images, data.val.images])
    assert images.dtype == torch.uint8 and images.shape == (N_IMAGES, 3, 16, 16)
    centre = images[:, :, 2:-2, 2:-2].float()  # away from the edges of the red square
    assert centre[:, 0].min() > 200 and centre[:, 2].max() < 60, "the crop should keep the red centre only"


def test_decoded_images_are_cached(kaggle_root, monkeypatch):
    first = load_flickr8k(kaggle_root, image_size=16)
    assert list(flickr8k.cache_dir("flickr8k").glob("images_10_s16_*.pt"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load should read the cache, not decode JPEGs")

    monkeypatch.setattr(flickr8k, "load_image", no_decoding)
    second = load_flickr8k(kaggle_root, image_size=16)
    assert torch.equal(first.train.images, second.train.images)
    with pytest.raises(AssertionError, match="decode"):
        load_flickr8k(kaggle_root, image_size=12)  # another size is another cache file


def test_original_layout_reads_the_same(kaggle_root, mirror_root):
    a = load_flickr8k(kaggle_root, image_size=16, cache=False)
    b = load_flickr8k(mirror_root, image_size=16, cache=False)
    assert a.train.image_ids == b.train.image_ids and a.val.captions == b.val.captions
    assert torch.equal(a.train.images, b.train.images)


def test_missing_data_says_what_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_flickr8k(tmp_path / "nowhere")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "adityajn105/flickr8k" in message and "1.1 GB" in message and "Flickr8k_Dataset.zip" in message
    assert str(tmp_path / "nowhere") in message and "COURSE_MODE" in message
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "captions.txt").write_text("image,caption\na.jpg,a dog\n")
    with pytest.raises(DatasetNotFoundError, match="image folder"):
        load_flickr8k(tmp_path / "half")


def test_missing_images_are_reported(kaggle_root):
    (kaggle_root / "Images" / _names()[4]).unlink()
    with pytest.raises(DatasetNotFoundError, match="1 image"):
        load_flickr8k(kaggle_root, image_size=16)


def test_captioned_shapes_have_the_same_interface():
    data = load_captioned_shapes(n_images=40, image_size=32)
    assert data.name == "shapes" and len(data.train) == 32 and len(data.val) == 8
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape == (32, 3, 32, 32)
    assert all(len(c) == 5 for c in data.train.captions)
    assert data.train.labels.shape == (32,) and len(data.classes) == 10
    captions, caption_to_image = data.val.flat_captions()
    assert len(captions) == 40 and caption_to_image.max() == 7
    assert len(set(captions)) > 30, "captions of one image should be phrased differently"


def test_load_caption_data_follows_the_run_mode(kaggle_root):
    grading = load_caption_data(mode="grading")
    assert grading.name == "shapes" and len(grading.train) + len(grading.val) == 64
    full = load_caption_data(mode="full", root=kaggle_root, image_size=16)
    assert full.name == "flickr8k" and len(full.val) == 2
    assert load_caption_data("shapes", mode="full", n_images=20).name == "shapes"
    with pytest.raises(ValueError, match="flickr8k"):
        load_caption_data("coco")
