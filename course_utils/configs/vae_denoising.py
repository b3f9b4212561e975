"""Run configuration of "vae_denoising": everything a run mode changes (see course_utils.configs)."""

MODES = {
    "full": dict(
        digits="mnist", colour="cifar10",  # MNIST through torchvision; CIFAR-10 for the comparison
        digit_splits=(48_000, 12_000, 10_000),  # (train, validation, test) as in the report
        colour_splits=(50_000, 10_000),  # CIFAR-10's own (train, test)
        batch_size=128, lr=1e-3,  # the report's best batch size; Adam
        ae_latent=33, denoise_epochs=20, vae_epochs=20, vae_latent=16, transfer_epochs=10,
        optuna_trials=30, optuna_epochs=3, optuna_images=12_000,  # the report ran 100 trials on all 48,000
        compare_epochs=10, compare_batch=50, compare_lr=1e-4, compare_width=1.0,  # the CIFAR-10 report's recipe
        map_points=2_000,  # points of the PCA / t-SNE maps
    ),
    "quick": dict(
        digits="digits", colour="shapes",  # scikit-learn's 1,797 handwritten digits; the kit's shapes
        digit_splits=(1_297, 250, 250),
        colour_splits=(1_000, 250),
        batch_size=64, lr=3e-3,
        ae_latent=33, denoise_epochs=40, vae_epochs=20, vae_latent=16, transfer_epochs=30,
        optuna_trials=6, optuna_epochs=3, optuna_images=600,
        compare_epochs=20, compare_batch=50, compare_lr=1e-3, compare_width=0.5,  # narrower layers on a CPU
        map_points=250,
    ),
    "grading": dict(
        digits="digits", colour="shapes",
        digit_splits=(64, 32, 32),
        colour_splits=(64, 32),
        batch_size=32, lr=1e-3,
        ae_latent=33, denoise_epochs=1, vae_epochs=1, vae_latent=16, transfer_epochs=1,
        optuna_trials=2, optuna_epochs=1, optuna_images=32,
        compare_epochs=1, compare_batch=32, compare_lr=1e-3, compare_width=0.25,
        map_points=32,
    ),
}

# What quick mode shows, measured on 2 CPU cores with the solution notebook (tests/test_student_runtime.py runs it and
# fails when a figure leaves its range; the notebook's text and the README quote these ranges), and the minutes the
# whole quick-mode notebook may take there. The lesson: for every kind of noise the denoised output is far closer to
# the clean digits than the noisy input (MSE per pixel, 250 test digits); the negative ELBO the VAEs reach; and, for the
# latent-16 VAE of the comparison, the negative ELBO per pixel value of digits against colour images.
QUICK_FIGURES = {"gaussian noisy MSE": (0.21, 0.25), "gaussian denoised MSE": (0.005, 0.02),
                 "salt_pepper noisy MSE": (0.017, 0.023), "salt_pepper denoised MSE": (0.003, 0.012),
                 "speckle noisy MSE": (0.028, 0.037), "speckle denoised MSE": (0.004, 0.014),
                 "negative ELBO, latent 2": (300, 345), "negative ELBO, latent 16": (280, 320),
                 "transfer test accuracy": (92, 100), "autoencoder test MSE": (0.004, 0.009),
                 "digits negative ELBO per value": (0.4, 0.47), "colour negative ELBO per value": (0.64, 0.72)}
QUICK_MINUTES = 5
