"""Run configuration of "simclr": everything a run mode changes (see course_utils.configs)."""

MODES = {
    "full": dict(
        data="stl10", image_size=96,
        unlabeled_size=100_000,  # the report's 100,000 unlabelled images (uint8 in memory: 2.8 GB)
        train_size=5_000, test_size=8_000,  # STL-10's labelled splits
        backbone="conv",  # "conv": the report's 4 conv layers of width 128; "resnet18": timm's ResNet-18
        width=128, projection_dim=128, temperature=0.1, batch_size=256, label_batch_size=256, lr=1e-3,
        pretrain_epochs=30, supervised_epochs=40, probe_epochs=30, finetune_epochs=20,
        metric_points=2_000,  # test images whose features give the silhouette and Dunn's index
    ),
    "quick": dict(
        data="shapes", image_size=64,
        unlabeled_size=2_000, train_size=500, test_size=1_000,  # minutes on 2 CPU cores
        backbone="conv", width=64, projection_dim=64, temperature=0.1, batch_size=128, lr=2e-3,
        label_batch_size=32,  # 16 steps per epoch on the 500 labelled images
        pretrain_epochs=12, supervised_epochs=15, probe_epochs=40, finetune_epochs=8,
        metric_points=1_000,
    ),
    "grading": dict(
        data="shapes", image_size=64,
        unlabeled_size=64, train_size=64, test_size=64,
        backbone="conv", width=16, projection_dim=16, temperature=0.1, batch_size=32, label_batch_size=32, lr=1e-3,
        pretrain_epochs=1, supervised_epochs=1, probe_epochs=1, finetune_epochs=1,
        metric_points=64,
    ),
}

# What quick mode shows (test accuracy in percent on the 1,000 held-out shapes, 10 classes, chance 10%), measured
# on 2 CPU cores with the solution notebook; the notebook's text and the README quote these ranges.
QUICK_FIGURES = {
    "supervised baseline accuracy": (55, 75),
    "random-encoder probe accuracy": (8, 15),
    "SimCLR linear probe accuracy": (16, 27),
    "SimCLR fine-tuned accuracy": (40, 60),
}
QUICK_MINUTES = 5
