"""The quick-mode figures a notebook prints, and the check that what the notebooks and the README state about
them holds. The stated ranges live once, in ``QUICK_FIGURES`` of the problem set's run configuration
(``course_utils/configs/<id>.py``); the notebook's text and the README must quote each range as written there."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measured_figures(pset_id: str, printed: dict, minutes: float) -> dict:
    """{figure name: value} from the text the notebook's cells printed ({grade_id: text})."""
    text = "\n".join(printed.values())
    found = {"minutes": round(minutes, 2)}
    for method, test in re.findall(r"Method\s+(I{1,3}): train accuracy\s+[\d.]+%\s+test accuracy\s+([\d.]+)%", text):
        found[f"method {method}"] = float(test)
    for name, test in re.findall(r"(CLIP image encoder|control: before CLIP): train accuracy\s+[\d.]+%\s+"
                                 r"test accuracy\s+([\d.]+)%", text):
        found["probe " + ("clip" if name.startswith("CLIP") else "control")] = float(test)
    for k, value in re.findall(r"Recall@(\d+)\s+([\d.]+)%", text):
        found[f"recall@{k}"] = float(value)
    for name, colour, shape in re.findall(r"^((?:crop|recolor)-(?:triplet|InfoNCE)|autoencoder)\s+([\d.]+)%\s+"
                                          r"([\d.]+)%\s*$", text, flags=re.M):  # contrastive_shapes' purity table
        found[f"{name} colour"], found[f"{name} shape"] = float(colour), float(shape)
    for kind, noisy, denoised in re.findall(r"^(gaussian|salt_pepper|speckle)\s+noisy MSE ([\d.]+)\s+denoised MSE "
                                            r"([\d.]+)", text, flags=re.M):  # vae_denoising's noise table
        found[f"{kind} noisy MSE"], found[f"{kind} denoised MSE"] = float(noisy), float(denoised)
    for latent, elbo in re.findall(r"VAE \(latent (\d+)\): test negative ELBO ([\d.]+) nats", text):
        found[f"negative ELBO, latent {latent}"] = float(elbo)
    for test in re.findall(r"Transfer \(frozen encoder.*test accuracy ([\d.]+)%", text):
        found["transfer test accuracy"] = float(test)
    for mse in re.findall(r"Autoencoder test MSE: ([\d.]+)", text):
        found["autoencoder test MSE"] = float(mse)
    for data, per_value in re.findall(r"^(digits|colour)\s+latent 16\s+[\d.]+\s+[\d.]+\s+-?\d+%\s+[\d.]+\s+([\d.]+)\s*$",
                                      text, flags=re.M):  # vae_denoising's comparison table
        found[f"{data} negative ELBO per value"] = float(per_value)
    for method, accuracy in re.findall(r"^(supervised baseline|random-encoder probe|SimCLR linear probe|SimCLR "
                                       r"fine-tuned)\s+([\d.]+)%", text, flags=re.M):  # simclr's metric table
        found[f"{method} accuracy"] = float(accuracy)
    return found


def quick_figures(pset_id: str) -> dict:
    """{figure name: (low, high)} that the notebook and the README state for quick mode."""
    return dict(getattr(importlib.import_module(f"course_utils.configs.{pset_id}"), "QUICK_FIGURES", {}))


def quote(low: float, high: float) -> str:
    """How a stated range is written in the notebook and the README: ``5–7``."""
    return f"{low:g}–{high:g}"


def stated_figures_hold(pset_id: str, measured: dict) -> list:
    """What is wrong: a stated figure that was not measured or fell outside its range, or that the notebook or
    the README does not quote."""
    problems = []
    notebook = (ROOT / "source" / pset_id / f"{pset_id}.ipynb").read_text()
    readme = (ROOT / "README.md").read_text()
    config = importlib.import_module(f"course_utils.configs.{pset_id}")
    limit = getattr(config, "QUICK_MINUTES", None)
    if limit is not None:
        if measured.get("minutes", 0) > limit:
            problems.append(f"{pset_id}: the quick-mode notebook took {measured['minutes']} min, more than the "
                            f"stated {limit}")
        if f"at most {limit} minutes" not in notebook:
            problems.append(f"{pset_id}: the notebook does not state 'at most {limit} minutes'")
    for name, (low, high) in quick_figures(pset_id).items():
        value = measured.get(name)
        if value is None:
            problems.append(f"{pset_id}: {name} was not printed by the notebook (measured: {measured})")
        elif not low <= value <= high:
            problems.append(f"{pset_id}: {name} measured {value}, outside the stated {quote(low, high)} "
                            f"(course_utils/configs/{pset_id}.py QUICK_FIGURES)")
        for where, text in (("the notebook", notebook), ("README.md", readme)):
            if quote(low, high) not in text:
                problems.append(f"{pset_id}: {where} does not state {name} as {quote(low, high)}")
    return problems
