"""TensorImageDataset and TensorLoader: shapes, crops, batched flip + crop, seeding."""
import pytest
import torch
import torchvision.transforms as T

from course_utils.data.loaders import TensorImageDataset, TensorLoader, center_crop, flip_crop, make_loader


def _images(n=10, size=12):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)


def test_dataset_items_are_float_images_and_int_labels():
    images = _images(4)
    ds = TensorImageDataset(images, torch.tensor([3, 1, 0, 2]), classes=list("abcd"))
    image, label = ds[1]
    assert image.dtype == torch.float32 and image.shape == (3, 12, 12)
    assert torch.allclose(image, images[1].float() / 255)
    assert label == 1 and len(ds) == 4 and ds.classes == list("abcd")
    assert TensorImageDataset(images)[0][1] == -1  # unlabeled


@pytest.mark.parametrize("bad", [torch.zeros(4, 12, 12, 3, dtype=torch.uint8), torch.zeros(4, 3, 12, 12),
                                 torch.zeros(3, 12, 12, dtype=torch.uint8)])
def test_dataset_rejects_wrong_images(bad):
    with pytest.raises(ValueError, match="expected"):
        TensorImageDataset(bad)


def test_dataset_rejects_wrong_number_of_labels():
    with pytest.raises(ValueError, match="one label per image"):
        TensorImageDataset(_images(4), torch.arange(3))


def test_loader_batches_cover_the_dataset_once():
    ds = TensorImageDataset(_images(10), torch.arange(10))
    loader = TensorLoader(ds, batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = torch.cat([b[1] for b in batches])
    assert sorted(labels.tolist()) == list(range(10)) and labels.tolist() != list(range(10))
    for images, labels in batches:  # each image matches its label's stored image
        assert images.dtype == torch.float32 and labels.dtype == torch.long
        assert torch.equal(images, ds.images[labels].float() / 255)
    assert len(TensorLoader(ds, 4, drop_last=True)) == 2 and len(list(TensorLoader(ds, 4, drop_last=True))) == 2


def test_unlabeled_loader_gives_minus_one():
    _, labels = next(iter(TensorLoader(TensorImageDataset(_images(5)), batch_size=5)))
    assert labels.tolist() == [-1] * 5


def test_center_crop_matches_torchvision():
    images = _images(6, size=15)
    loader = TensorLoader(TensorImageDataset(images), batch_size=6, crop=8)
    batch, _ = next(iter(loader))
    expected = torch.stack([T.CenterCrop(8)(img) for img in images]).float() / 255
    assert batch.shape == (6, 3, 8, 8) and torch.equal(batch, expected)
    assert torch.equal(center_crop(images, 15), images)


def _all_crops(image, crop):
    h, w = image.shape[-2:]
    out = []
    for top in range(h - crop + 1):
        for left in range(w - crop + 1):
            patch = image[:, top:top + crop, left:left + crop]
            out += [patch, patch.flip(-1)]
    return out


def test_flip_crop_gives_true_crops_with_both_flips():
    images = _images(64, size=8)
    gen = torch.Generator().manual_seed(0)
    out = flip_crop(images, 5, gen)
    assert out.shape == (64, 3, 5, 5) and out.dtype == torch.uint8
    for i in range(0, 64, 8):  # every output is one of the image's crops, possibly mirrored
        assert any(torch.equal(out[i], c) for c in _all_crops(images[i], 5))
    # Both orientations occur: a crop equal to an unflipped crop of the image, and one only equal to a flipped one.
    flipped = sum(
        not any(torch.equal(out[i], images[i][:, t:t + 5, l:l + 5]) for t in range(4) for l in range(4))
        for i in range(64)
    )
    assert 10 < flipped < 54


def test_flip_crop_offsets_cover_every_position():
    images = torch.arange(10, dtype=torch.uint8).repeat(400, 3, 10, 1)  # pixel value = column index
    out = flip_crop(images, 4, torch.Generator().manual_seed(1))
    first = out[:, 0, 0, :]  # (B, 4): columns read, ascending or descending
    lefts = torch.minimum(first[:, 0], first[:, -1])
    assert set(lefts.tolist()) == set(range(7))


def test_loader_augmentation_is_seeded_and_changes_every_epoch():
    ds = TensorImageDataset(_images(16, size=10), torch.arange(16))
    a = TensorLoader(ds, 8, shuffle=True, augment="flip_crop", crop=6, seed=3)
    b = TensorLoader(ds, 8, shuffle=True, augment="flip_crop", crop=6, seed=3)
    epoch_a1, epoch_a2 = [x for x, _ in a], [x for x, _ in a]
    epoch_b1 = [x for x, _ in b]
    assert all(torch.equal(x, y) for x, y in zip(epoch_a1, epoch_b1))
    assert not all(torch.equal(x, y) for x, y in zip(epoch_a1, epoch_a2))
    assert epoch_a1[0].shape == (8, 3, 6, 6) and 0 <= epoch_a1[0].min() and epoch_a1[0].max() <= 1


def test_global_seed_makes_unseeded_loaders_reproducible():
    ds = TensorImageDataset(_images(16, size=10))
    torch.manual_seed(5)
    x1 = next(iter(TensorLoader(ds, 16, shuffle=True, augment="flip_crop", crop=6)))[0]
    torch.manual_seed(5)
    x2 = next(iter(TensorLoader(ds, 16, shuffle=True, augment="flip_crop", crop=6)))[0]
    assert torch.equal(x1, x2)


@pytest.mark.parametrize("kwargs, message", [
    ({"augment": "flip_crop"}, "needs a crop"),
    ({"crop": 20}, "larger than"),
    ({"augment": "rotate", "crop": 4}, "not supported"),
    ({"batch_size": 0}, "positive"),
])
def test_loader_rejects_bad_settings(kwargs, message):
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        TensorLoader(TensorImageDataset(_images(4)), **args)


def test_make_loader_shortcut():
    loader = make_loader(TensorImageDataset(_images(8)), batch_size=4, train=True, crop=8, augment=True, seed=0)
    assert loader.shuffle and loader.augment == "flip_crop" and loader.crop == 8
    assert "TensorLoader(8 images" in repr(loader)


def test_grading_mode_gives_tiny_shapes_with_the_course_loaders():
    from course_utils.data import SHAPE_NAMES, load_autoencoder_data

    data = load_autoencoder_data(mode="grading")
    assert data.name == "shapes" and data.classes == list(SHAPE_NAMES)
    assert (len(data.unlabeled), len(data.train), len(data.test)) == (64, 64, 64)
    assert data.unlabeled.images.shape[-1] == 72  # cropped to 64 by the loaders, like STL-10's 96 -> 64
    loaders = data.loaders(batch_size=32, seed=0)
    assert set(loaders) == {"unlabeled", "train", "test"}
    assert loaders["unlabeled"].augment == "flip_crop" and loaders["train"].augment is None
    x, y = next(iter(loaders["train"]))
    assert x.shape == (32, 3, 64, 64) and y.dtype == torch.long and 0 <= int(y.min()) and int(y.max()) < 10
    assert not torch.equal(data.train.images, data.test.images)  # independent draws per split
    assert "64 unlabeled" in repr(data)


def test_unknown_dataset_or_mode_is_refused():
    from course_utils.data import load_autoencoder_data

    with pytest.raises(ValueError, match="stl10, shapes"):
        load_autoencoder_data("cifar10", mode="grading")
    with pytest.raises(ValueError, match="run mode"):
        load_autoencoder_data(mode="fast")
