"""The CLIP harness, run with the tiny ResNet and the tiny DistilBERT.

``ThrowawayCLIP`` below only satisfies the harness's contract so the harness can be exercised;
it is deliberately not the problem set's model (one linear layer per tower, a one-directional loss).
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.backbones import create_image_encoder, create_text_encoder, normalize_imagenet
from course_utils.clip import (
    ImageTextLoader,
    TextEmbeddingCache,
    chance_recall,
    compute_image_embeddings,
    compute_text_embeddings,
    evaluate_retrieval,
    extract_features,
    linear_probe,
    make_optimizer,
    precompute_text_features,
    prepare_images,
    probe_image_encoder,
    recall_at_k,
    train_clip,
)
from course_utils.training import History

CAPTIONS = [
    "a dog runs on the grass",
    "two children play football in a park near a lake",
    "a man",
    "a black and white dog jumps over a fence to catch a frisbee",
    "a woman in a red coat walks down a snowy street",
    "people",
    "a brown dog, wet from the river, shakes itself dry on the bank",
    "a cat",
]


class ThrowawayCLIP(nn.Module):
    def __init__(self, image_encoder, text_encoder, embed_dim=8, temperature=0.07):
        super().__init__()
        self.image_encoder, self.text_encoder, self.temperature = image_encoder, text_encoder, temperature
        self.image_projection = nn.Linear(image_encoder.out_dim, embed_dim)
        self.text_projection = nn.Linear(text_encoder.out_dim, embed_dim)

    def encode_image(self, images):
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)  # (B, E)

    def encode_text_features(self, text_features):
        return F.normalize(self.text_projection(text_features), dim=-1)  # (B, E)

    def forward(self, images, text_features):
        logits = self.encode_image(images) @ self.encode_text_features(text_features).T / self.temperature  # (B, B)
        return F.cross_entropy(logits, torch.arange(len(logits)))


@pytest.fixture(scope="module")
def text_encoder():
    return create_text_encoder("distilbert-tiny")


@pytest.fixture()
def model(text_encoder):
    return ThrowawayCLIP(create_image_encoder("resnet_tiny"), text_encoder)


def _images(n, size=32):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)


def test_cached_text_features_equal_running_the_encoder_every_step(text_encoder):
    cached = precompute_text_features(text_encoder, CAPTIONS, batch_size=3)  # length-sorted batches
    assert cached.shape == (len(CAPTIONS), 32) and not cached.requires_grad
    for start in range(0, len(CAPTIONS), 4):  # what a training loop would compute at each step
        step = text_encoder(CAPTIONS[start : start + 4])
        torch.testing.assert_close(cached[start : start + 4], step, atol=1e-5, rtol=1e-4)
    unsorted = precompute_text_features(text_encoder, CAPTIONS, batch_size=8, sort_by_length=False)
    torch.testing.assert_close(cached, unsorted, atol=1e-5, rtol=1e-4)


def test_text_embedding_cache_encodes_each_caption_once(text_encoder):
    cache = TextEmbeddingCache(text_encoder, batch_size=4)
    first = cache(CAPTIONS[:5])
    assert len(cache) == 5
    again = cache([CAPTIONS[4], CAPTIONS[0], CAPTIONS[7]])
    assert len(cache) == 6
    torch.testing.assert_close(again[:2], first[[4, 0]])
    torch.testing.assert_close(again[2:], text_encoder([CAPTIONS[7]]), atol=1e-5, rtol=1e-4)


def test_optimizer_groups_heads_and_image_encoder_never_the_text_encoder(model):
    optimizer, scheduler = make_optimizer(model, head_lr=1e-3, image_lr=1e-4, weight_decay=1e-3)
    heads, image = optimizer.param_groups
    assert (heads["lr"], heads["weight_decay"]) == (1e-3, 1e-3)
    assert (image["lr"], image["weight_decay"]) == (1e-4, 0.0)
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    assert ids(heads["params"]) == ids(model.image_projection.parameters()) | ids(model.text_projection.parameters())
    assert ids(image["params"]) == ids(model.image_encoder.parameters())
    in_optimizer = ids(heads["params"]) | ids(image["params"])
    assert in_optimizer.isdisjoint(ids(model.text_encoder.parameters()))
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (scheduler.patience, scheduler.factor) == (1, 0.8)


def test_optimizer_explains_the_contract():
    with pytest.raises(AttributeError, match="image_projection"):
        make_optimizer(nn.Linear(2, 2))


def test_training_changes_the_image_encoder_but_never_the_text_encoder(model, text_encoder):
    captions = CAPTIONS
    images = _images(len(captions))
    text_before = {k: v.clone() for k, v in text_encoder.state_dict().items()}
    image_before = {k: v.clone() for k, v in model.image_encoder.state_dict().items() if v.is_floating_point()}
    optimizer, scheduler = make_optimizer(model)
    loader = ImageTextLoader(images, precompute_text_features(text_encoder, captions), batch_size=4)
    history = train_clip(model, loader, num_epochs=2, optimizer=optimizer, scheduler=scheduler,
                         val_loader=ImageTextLoader(images, precompute_text_features(text_encoder, captions), 4, shuffle=False))
    assert len(history.epoch_loss) == 2 and len(history.step_loss) == 4
    assert len(history.metrics["val_loss"]) == 2 and history.metrics["lr"][0] == 1e-3
    for k, v in text_encoder.state_dict().items():
        assert torch.equal(v, text_before[k]), f"the frozen text encoder changed: {k}"
    changed = [k for k, v in model.image_encoder.state_dict().items() if k in image_before and not torch.equal(v, image_before[k])]
    assert any("conv1.weight" == k.split("model.")[-1] for k in changed), "the image encoder should be trained"
    assert not text_encoder.training, "the text encoder must stay in eval mode while the model trains"

    # Even if a model ran the text encoder inside its forward pass, no gradient would reach it.
    with torch.enable_grad():
        loss = model(normalize_imagenet(images[:4]), text_encoder(captions[:4]))
        loss.backward()
    assert all(p.grad is None for p in text_encoder.parameters())


def test_train_clip_rejects_a_loss_that_is_not_a_scalar(model, text_encoder):
    class PerPairLoss(ThrowawayCLIP):
        def forward(self, images, text_features):
            logits = self.encode_image(images) @ self.encode_text_features(text_features).T  # (B, B)
            return F.cross_entropy(logits, torch.arange(len(logits)), reduction="none")  # (B,)

    bad = PerPairLoss(create_image_encoder("resnet_tiny"), text_encoder)
    loader = ImageTextLoader(_images(4), torch.randn(4, 32), batch_size=4)
    with pytest.raises(ValueError, match="scalar"):
        train_clip(bad, loader, 1, make_optimizer(bad)[0])


def test_image_text_loader_batches():
    images, feats = _images(10), torch.randn(10, 32)
    train = ImageTextLoader(images, feats, batch_size=4)
    batches = list(train)
    assert len(train) == len(batches) == 2  # the incomplete last batch is dropped
    x, t = batches[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert t.shape == (4, 32)
    row = (feats == t[0]).all(1).nonzero().item()  # the pairs stay aligned
    torch.testing.assert_close(x[0], images[row].float() / 255)
    assert sum(len(t) for _, t in ImageTextLoader(images, feats, 4, shuffle=False)) == 10
    with pytest.raises(ValueError, match="one text feature row per image"):
        ImageTextLoader(images, feats[:9])


def test_prepare_images_refuses_images_that_are_already_normalised():
    images = _images(2)
    torch.testing.assert_close(prepare_images(images), normalize_imagenet(images))
    with pytest.raises(ValueError, match="already normalised"):
        prepare_images(normalize_imagenet(images))


def test_extract_features_runs_the_frozen_encoder_once():
    encoder = create_image_encoder("resnet_tiny").train()
    images, labels = _images(6), torch.tensor([0, 1, 2, 0, 1, 2])
    loader = [(images[:4].float() / 255, labels[:4]), (images[4:].float() / 255, labels[4:])]
    feats, got_labels = extract_features(encoder, loader)
    assert feats.shape == (6, 64) and torch.equal(got_labels, labels) and not feats.requires_grad
    assert encoder.training, "the encoder's mode should be restored"
    with torch.no_grad():
        expected = encoder.eval()(normalize_imagenet(images))
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-4)
    feats_only, none = extract_features(encoder, [images[:3]])
    assert feats_only.shape == (3, 64) and none is None


def test_linear_probe_learns_separable_features():
    centres = torch.randn(3, 16) * 4
    labels = torch.arange(3).repeat(40)  # (120,)
    feats = centres[labels] + torch.randn(120, 16)
    result = linear_probe(feats[:90], labels[:90], feats[90:], labels[90:], num_classes=3, epochs=30, lr=1e-2)
    assert result["train_accuracy"] > 95 and result["test_accuracy"] > 90
    assert len(result["loss"]) == 30 and result["loss"][-1] < result["loss"][0]
    again = linear_probe(feats[:90], labels[:90], feats[90:], labels[90:], num_classes=3, epochs=30, lr=1e-2)
    assert again["loss"] == result["loss"], "the probe should be reproducible"
    with pytest.raises(ValueError, match="labels"):
        linear_probe(feats, labels + 5, feats, labels, num_classes=3)


def test_probe_image_encoder_extracts_then_probes():
    encoder = create_image_encoder("resnet_tiny")
    images, labels = _images(8), torch.tensor([0, 1] * 4)
    loader = [(images.float() / 255, labels)]
    result = probe_image_encoder(encoder, loader, loader, num_classes=2, epochs=5)
    assert set(result) >= {"train_accuracy", "test_accuracy"}


def test_recall_at_k_on_a_hand_made_example():
    image_emb = torch.eye(3)  # three unique images, orthogonal embeddings
    text_emb = torch.tensor([
        [1.0, 0.1, 0.0],  # image 0 ranked first          -> rank 0
        [0.1, 1.0, 0.0],  # image 1 ranked first          -> rank 0
        [0.2, 0.9, 0.5],  # about image 2: ranks 1, 2, 0  -> rank 1
        [0.0, 0.3, 0.1],  # about image 0: ranked last    -> rank 2
        [0.0, 0.0, 1.0],  # image 2 first                 -> rank 0
    ])
    caption_to_image = torch.tensor([0, 1, 2, 0, 2])
    recall = recall_at_k(text_emb, image_emb, caption_to_image, ks=(1, 2, 3))
    assert recall == pytest.approx({"R@1": 60.0, "R@2": 80.0, "R@3": 100.0})
    assert recall_at_k(text_emb * 7, image_emb * 0.5, caption_to_image, ks=(1,))["R@1"] == pytest.approx(60.0)


def test_recall_counts_ties_against_the_caption():
    collapsed = torch.ones(4, 8)  # a model that maps everything to one point
    assert recall_at_k(collapsed, collapsed, torch.arange(4), ks=(1, 3))["R@1"] == 0.0
    assert recall_at_k(collapsed, collapsed, torch.arange(4), ks=(4,))["R@4"] == 100.0


def test_recall_matches_a_per_query_loop():
    text_emb, image_emb = torch.randn(50, 6), torch.randn(12, 6)
    caption_to_image = torch.randint(0, 12, (50,))
    fast = recall_at_k(text_emb, image_emb, caption_to_image, ks=(1, 5, 10))
    sims = F.normalize(text_emb, dim=-1) @ F.normalize(image_emb, dim=-1).T
    for k in (1, 5, 10):
        hits = [caption_to_image[m].item() in sims[m].topk(k).indices.tolist() for m in range(50)]
        assert fast[f"R@{k}"] == pytest.approx(100 * sum(hits) / 50)


def test_recall_checks_its_inputs():
    with pytest.raises(ValueError, match="caption_to_image"):
        recall_at_k(torch.randn(4, 3), torch.randn(2, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"\(M, E\)"):
        recall_at_k(torch.randn(4, 3), torch.randn(2, 5), torch.tensor([0, 1, 1, 0]))


def test_chance_recall():
    assert chance_recall(1, 1618) == pytest.approx(100 / 1618)
    assert chance_recall(10, 4) == 100.0


def test_embeddings_and_retrieval_evaluation(model, text_encoder):
    images = _images(6)
    captions = [c for c in CAPTIONS[:6] for _ in range(2)]  # two captions per image
    caption_to_image = torch.arange(6).repeat_interleave(2)
    model.train()
    image_emb = compute_image_embeddings(model, images, batch_size=4)
    text_emb = compute_text_embeddings(model, precompute_text_features(text_encoder, captions), batch_size=5)
    assert image_emb.shape == (6, 8) and text_emb.shape == (12, 8) and model.training
    torch.testing.assert_close(image_emb.norm(dim=1), torch.ones(6))
    result = evaluate_retrieval(model, images, precompute_text_features(text_encoder, captions), caption_to_image)
    assert set(result) == {"R@1", "R@5", "R@10", "chance@1", "chance@5", "chance@10"}
    assert result["R@10"] == 100.0 and result["chance@1"] == pytest.approx(100 / 6)


def test_history_can_continue(model, text_encoder):
    loader = ImageTextLoader(_images(4), torch.randn(4, 32), batch_size=4)
    optimizer, _ = make_optimizer(model)
    history = train_clip(model, loader, 1, optimizer)
    history = train_clip(model, loader, 2, optimizer, history=history, start_epoch=1)
    assert isinstance(history, History) and len(history.epoch_loss) == 2
