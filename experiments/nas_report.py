"""The GTN-NAS tables of RESULTS.md, from the committed files alone (issue #10).

    python experiments/nas_report.py        # writes results/nas_fmnist/table.md

Reads `results/nas_fmnist/` (the default, larger-CNN teacher's `gtnjax nas`
run), `results/nas_fmnist_fixed_cell/` (the first study's fixed-cell
teacher's), `results/nas_fmnist_population/` (the four-cell teacher's) and,
when present, `results/nas_fmnist_random_cells/`, each a copy of a `gtnjax nas` workdir's
`summary.json` and `proxies.csv`, plus the ground truth. Writes four tables:
every proxy's ranking metrics and cost; the searches each proxy drove; the
teachers' GTN proxies side by side (with a paired bootstrap over the
candidates both scored); and the GTN and real-data scores grouped by how many
convolutions a cell has on its longest live path (where GTN fails).
"""

from __future__ import annotations

import argparse
import csv
import json
import os

import numpy as np
from gtnjax.nas import metrics, space

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "results")
DEFAULT_RUN = "nas_fmnist"
TEACHER_RUNS = (("larger CNN (default)", DEFAULT_RUN), ("fixed cell", "nas_fmnist_fixed_cell"),
                ("four cells", "nas_fmnist_population"),
                ("random cells (paper)", "nas_fmnist_random_cells"))


def _column(path: str, name: str) -> dict[int, float]:
  with open(path) as f:
    return {int(r["index"]): float(r[name]) for r in csv.DictReader(f) if r.get(name)}


def _load(root: str, run: str):
  path = os.path.join(root, run, "summary.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _interval(e: dict, key: str) -> str:
  low, high = e[f"{key}_interval"]
  return f"{e[key]:+.3f} [{low:+.3f}, {high:+.3f}]"


def proxy_table(summary: dict) -> list[str]:
  best = summary["proxies"]["gtn"]["best_in_sample"]
  lines = [f"| proxy | Spearman [95% bootstrap] | Kendall | top half [95%] | P@10% | "
           f"picked (best in sample {best:.4f}) | GTN − proxy, paired [95%] | "
           "s / candidate (training part) | learner steps |",
           "|---|---|---|---|---|---|---|---|---|"]
  for name, e in summary["proxies"].items():
    paired = e.get("gtn_minus_this_spearman")
    paired_text = (f"{paired['difference']:+.3f} [{paired['interval'][0]:+.3f}, "
                   f"{paired['interval'][1]:+.3f}]" if paired else "")
    seconds = e["proxy_seconds"]
    if seconds is None:
      cost = ""
    elif e["learner_steps"]:
      cost = f"{seconds:.2f} ({e['proxy_training_seconds']:.2f})"
    else:
      cost = f"{seconds:.3f}"
    lines.append(f"| {name} | {_interval(e, 'spearman')} | {e['kendall']:+.3f} | "
                 f"{_interval(e, 'spearman_top_half')} | {e['precision_top10pct']:.2f} | "
                 f"{e['picked_accuracy']:.4f} | {paired_text} | {cost} | "
                 f"{e['learner_steps'] if e['learner_steps'] is not None else ''} |")
  return lines


def search_table(summary: dict) -> list[str]:
  search = summary["search"]
  lines = [f"Best validation accuracy in the table: {search['best_in_table_validation']:.4f}.",
           "", "| proxy | random search: chosen val / test | evolution: chosen val / test |",
           "|---|---|---|"]
  for name, result in search.items():
    if name == "best_in_table_validation":
      continue
    cells = [f"{result[k]['chosen_validation']:.4f} / {result[k]['chosen_test']:.4f}"
             for k in ("random", "evolution")]
    lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
  return lines


def teacher_table(root: str, truth: dict[int, float], resamples: int) -> list[str]:
  """Each teacher's GTN proxy over the candidates it scored, and the paired
  difference in Spearman from the default teacher over the candidates both
  scored."""
  default = _column(os.path.join(root, DEFAULT_RUN, "proxies.csv"), "gtn")
  lines = ["| teacher | candidates | GTN Spearman [95%] | top half | P@10% | "
           "− default teacher, paired over shared candidates [95%] | "
           "its first training learner: GTN / real data, 16 steps (test) |",
           "|---|---|---|---|---|---|---|"]
  for label, run in TEACHER_RUNS:
    summary = _load(root, run)
    if summary is None:
      continue
    e = summary["proxies"]["gtn"]
    paired = ""
    if run != DEFAULT_RUN:
      gtn = _column(os.path.join(root, run, "proxies.csv"), "gtn")
      shared = sorted(set(gtn) & set(default) & set(truth))
      d = metrics.paired_bootstrap(
          metrics.spearman, np.array([gtn[i] for i in shared]),
          np.array([default[i] for i in shared]), np.array([truth[i] for i in shared]),
          num_resamples=resamples)
      paired = (f"{d['difference']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}] "
                f"(n={len(shared)})")
    teacher = summary["teacher"]
    own = (f"{teacher['gtn_test_accuracy']['mean']:.3f} / "
           f"{teacher['real_data_test_accuracy']['mean']:.3f}")
    lines.append(f"| {label} | {e['num_candidates']} | {_interval(e, 'spearman')} | "
                 f"{e['spearman_top_half']:+.3f} | {e['precision_top10pct']:.2f} | {paired} | "
                 f"{own} |")
  return lines


def depth_table(root: str, truth: dict[int, float]) -> list[str]:
  lines = ["| teacher | convs on longest live path | cells | median GTN | median real, "
           "16 steps | median ground truth | GTN below 0.35 | real 16 steps below 0.35 |",
           "|---|---|---|---|---|---|---|---|"]
  for label, run in TEACHER_RUNS:
    path = os.path.join(root, run, "proxies.csv")
    if not os.path.exists(path):
      continue
    with open(path) as f:
      rows = list(csv.DictReader(f))
    gtn = np.array([float(r["gtn"]) for r in rows])
    real = np.array([float(r["real_same_steps"]) for r in rows])
    gt = np.array([truth[int(r["index"])] for r in rows])
    depth = np.array([space.conv_depth(space.from_string(r["encoding"])) for r in rows])
    for k in sorted(set(depth.tolist())):
      m = depth == k
      lines.append(f"| {label} | {k} | {m.sum()} | {np.median(gtn[m]):.3f} | "
                   f"{np.median(real[m]):.3f} | {np.median(gt[m]):.3f} | "
                   f"{(gtn[m] < 0.35).sum()} | {(real[m] < 0.35).sum()} |")
  return lines


def report(root: str = RESULTS, resamples: int = 1000) -> str:
  summary = _load(root, DEFAULT_RUN)
  if summary is None:
    raise SystemExit(f"no {root}/{DEFAULT_RUN}/summary.json: run `gtnjax nas` and copy it "
                     "there first (RESULTS.md has the commands)")
  truth = _column(os.path.join(root, DEFAULT_RUN, "ground_truth.csv"), "val_acc_seed0")
  retest = summary["test_retest"]
  parts = [
      f"# GTN-NAS on Fashion-MNIST: {summary['num_candidates']} candidates",
      "", "Written by `python experiments/nas_report.py` from the committed results.",
      f"Ground truth: validation accuracy after {summary['ground_truth_steps']} real-data "
      f"steps (seed 0); its test-retest Spearman over {retest['num_candidates']} two-seed "
      f"candidates {retest['spearman']:.3f} [{retest['spearman_interval'][0]:.3f}, "
      f"{retest['spearman_interval'][1]:.3f}]. GTN: {summary['gtn_steps']} steps; long "
      f"real-data proxy: {summary['real_9x_steps']} steps. Picked: mean over 1000 random "
      f"samples of {summary['picked_sample_size']} candidates.",
      "", "## Every proxy (default teacher: the larger plain CNN)", "", *proxy_table(summary),
      "", "## Searches driven by each proxy (top 3 by proxy, then their real-data training)",
      "", *search_table(summary),
      "", "## The teachers' GTN proxies", "", *teacher_table(root, truth, resamples),
      "", "## By depth: convolutions on a cell's longest live path", "",
      *depth_table(root, truth), ""]
  text = "\n".join(parts)
  with open(os.path.join(root, DEFAULT_RUN, "table.md"), "w") as f:
    f.write(text)
  return text


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results", default=RESULTS, help="the results folder")
  print(report(parser.parse_args().results))


if __name__ == "__main__":
  main()
