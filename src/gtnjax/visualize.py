"""Figures: generated samples by inner step and class, and meta-training curves."""

from __future__ import annotations

import json
import os

import numpy as np


def sample_grid(x: np.ndarray, y: np.ndarray, mean: np.ndarray, std: np.ndarray,
                max_steps: int = 8) -> np.ndarray:
  """An image grid: one row per (evenly spaced) inner step, one column per class.

  Args:
    x: [T, B, H, W, C] images in the normalised input space.
    y: [T, B, K] targets; each cell shows the first image whose argmax is that class.
    mean, std: [C], mapping back to pixel/255 units.
    max_steps: rows shown.

  Returns:
    uint8 [rows * (H + 1) + 1, K * (W + 1) + 1, 3] image (grey separators; a
    cell with no image of that class in the step stays dark).
  """
  t, _, h, w, c = x.shape
  k = y.shape[-1]
  rows = np.unique(np.linspace(0, t - 1, min(max_steps, t)).round().astype(int))
  pixels = np.clip(x * std + mean, 0.0, 1.0)
  grid = np.full((len(rows) * (h + 1) + 1, k * (w + 1) + 1, 3), 0.5, np.float32)
  labels = y.argmax(-1)
  for r, step in enumerate(rows):
    for cls in range(k):
      found = np.flatnonzero(labels[step] == cls)
      cell = pixels[step, found[0]] if found.size else np.zeros((h, w, c))
      cell = np.repeat(cell, 3, axis=-1) if c == 1 else cell[..., :3]
      grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + cls * (w + 1):1 + cls * (w + 1) + w] = cell
  return (grid * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: str, scale: int = 4) -> None:
  from PIL import Image
  img = Image.fromarray(image)
  img = img.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  img.save(path)


def plot_curves(metrics_path: str, out_path: str) -> None:
  """Meta-loss, meta-accuracy and gradient norm against meta-step, from metrics.jsonl."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  with open(metrics_path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  if not records:
    raise ValueError(f"{metrics_path} has no metrics yet: train first")
  steps = [r["step"] for r in records]
  fields = [("meta_loss", "meta-loss (sum of probe losses)"),
            ("meta_accuracy", "final probe accuracy"), ("grad_norm", "meta-gradient norm")]
  fig, axes = plt.subplots(1, len(fields), figsize=(4 * len(fields), 3.2))
  for ax, (field, title) in zip(axes, fields):
    ax.plot(steps, [r[field] for r in records], lw=1)
    ax.set_title(title)
    ax.set_xlabel("meta-step")
    if field == "grad_norm":
      ax.set_yscale("log")
  fig.tight_layout()
  fig.savefig(out_path, dpi=120)
  plt.close(fig)
