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

# What quick mode shows (5-NN purity by colour and by shape on the 1,000 held-out images, in percent), measured on
# 2 CPU cores with the solution notebook (tests/test_student_runtime.py runs it and fails when a figure leaves its
# range; the notebook's text and the README quote these ranges), and the minutes the whole quick-mode notebook may
# take there. The lesson: crops keep colour and lose shape, recolourings the reverse (chance: 11% and 10%).
QUICK_FIGURES = {"crop-triplet colour": (90, 100), "crop-triplet shape": (10, 25),
                 "recolor-triplet colour": (8, 16), "recolor-triplet shape": (35, 55)}
QUICK_MINUTES = 5
