"""Run configuration of "contrastive_shapes": everything a run mode changes (see course_utils.configs)."""

MODES = {
    "full": dict(
        image_size=128,  # as in the report: 128x128 images
        shapes_splits=(45_000, 5_000),  # (train, held out): the report's 50,000 images, 5,000 held out
        ae_epochs=30, contrastive_epochs=30, batch_size=32,  # the report trained 100 epochs of batch 32
        map_points=2_000,  # held-out images drawn in the 2-D maps (t-SNE time grows with it)
    ),
    "quick": dict(
        image_size=64,
        shapes_splits=(3_000, 1_000),  # minutes on 2 CPU cores
        ae_epochs=8, contrastive_epochs=5, batch_size=32,
        map_points=1_000,
    ),
    "grading": dict(
        image_size=32,
        shapes_splits=(64, 64),
        ae_epochs=1, contrastive_epochs=1, batch_size=32,
        map_points=64,
    ),
}
