"""Writes notebooks/nas.ipynb (run it with
`jupyter nbconvert --to notebook --execute --inplace notebooks/nas.ipynb`)."""

import os

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# GTN-NAS: ranking architectures with a few steps on GTN data\n\n"
        "The cell search space, then the committed study: every proxy's ranking of the "
        "ground-truth table (`results/nas_fmnist/`, made by `gtnjax nas --config "
        "experiments/configs/nas_fmnist.py`, whose teacher is meta-trained on one plain CNN "
        "larger than every candidate, the winner of the NAS study in `RESULTS.md`). Set "
        "`GTNJAX_NAS_DIR` to another `gtnjax nas` workdir to look at it instead."),
    nbf.v4.new_code_cell(
        "import csv, json, os\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "import gtnjax\n"
        "from gtnjax.nas import network, space\n\n"
        "rng = np.random.default_rng(0)\n"
        "cell = space.sample(rng)\n"
        "print('a cell:', space.to_string(cell))\n"
        "print('its output as an expression of its input x:', space.canonical_form(cell))\n"
        "a = space.from_string('conv3x3-none-none-skip-skip-none')\n"
        "b = space.from_string('none-conv3x3-none-skip-none-skip')  # nodes 1 and 2 swapped\n"
        "print('isomorphic cells share a hash:', space.canonical_hash(a) == space.canonical_hash(b))\n"
        "dead = space.from_string('none-conv3x3-conv3x3-none-conv3x3-none')\n"
        "print('output ignores the input:', space.output_ignores_input(dead))\n"
        "spec = network.make(cell, (28, 28, 1), 10, channels=8)\n"
        "print(f'{network.count_params(spec)} parameters, {network.count_flops(spec)} '\n"
        "      'multiply-adds per image')"),
    nbf.v4.new_markdown_cell("The study's table: each proxy against the ground truth "
                             "(validation accuracy after the full training budget)."),
    nbf.v4.new_code_cell(
        "repo = os.path.dirname(os.path.dirname(os.path.dirname(gtnjax.__file__)))\n"
        "NAS_DIR = os.environ.get('GTNJAX_NAS_DIR') or os.path.join(repo, 'results', 'nas_fmnist')\n"
        "summary = json.load(open(os.path.join(NAS_DIR, 'summary.json')))\n"
        "print(f\"{summary['num_candidates']} candidates of {summary['num_candidates_planned']} \"\n"
        "      f\"planned; ground truth {summary['ground_truth_steps']} steps, GTN \"\n"
        "      f\"{summary['gtn_steps']} steps, long real-data proxy {summary['real_9x_steps']}\")\n"
        "if 'test_retest' in summary:\n"
        "    t = summary['test_retest']\n"
        "    print(f\"test-retest Spearman (two seeds of the ground truth, n={t['num_candidates']}): \"\n"
        "          f\"{t['spearman']:.3f}\")\n"
        "print(f\"{'proxy':16s} {'Spearman [95% CI]':>24s} {'top half':>9s} {'P@10%':>6s} \"\n"
        "      f\"{'picked':>7s} {'s/cand.':>8s}\")\n"
        "for name, p in summary['proxies'].items():\n"
        "    lo, hi = p['spearman_interval']\n"
        "    sec = p['proxy_seconds']\n"
        "    print(f\"{name:16s} {p['spearman']:+.3f} [{lo:+.3f}, {hi:+.3f}]     \"\n"
        "          f\"{p['spearman_top_half']:+.3f} {p['precision_top10pct']:6.2f} \"\n"
        "          f\"{p['picked_accuracy']:7.4f} {sec if sec is None else round(sec, 3)!s:>8s}\")"),
    nbf.v4.new_code_cell(
        "rows = {int(r['index']): r for r in csv.DictReader(open(os.path.join(NAS_DIR, 'ground_truth.csv')))}\n"
        "scores = list(csv.DictReader(open(os.path.join(NAS_DIR, 'proxies.csv'))))\n"
        "truth = np.array([float(rows[int(s['index'])]['val_acc_seed0']) for s in scores])\n"
        "names = ['gtn', 'gtn_untrained', 'real_same_steps', 'real_9x_steps', 'synflow', 'naswot']\n"
        "fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3))\n"
        "for ax, name in zip(axes, names):\n"
        "    x = np.array([float(s[name]) for s in scores])\n"
        "    if name == 'synflow':\n"
        "        x = np.log10(x)\n"
        "    ax.scatter(x, truth, s=8)\n"
        "    ax.set_title(f\"{name}: rho {summary['proxies'][name]['spearman']:+.2f}\")\n"
        "axes[0].set_ylabel('ground-truth validation accuracy')\n"
        "plt.tight_layout(); plt.show()"),
    nbf.v4.new_markdown_cell(
        "Searches driven by each proxy over the table (random search and regularised "
        "evolution; the top-k by proxy are then looked up in the real-data ground truth):"),
    nbf.v4.new_code_cell(
        "best = summary['search']['best_in_table_validation']\n"
        "for name in ('gtn', 'real_9x_steps', 'synflow', 'params'):\n"
        "    s = summary['search'][name]\n"
        "    print(f\"{name:14s} evolution picks {s['evolution']['chosen']}: validation \"\n"
        "          f\"{s['evolution']['chosen_validation']:.4f} (best in table {best:.4f})\")"),
    nbf.v4.new_markdown_cell(
        "The teachers side by side: the GTN proxy's Spearman under each committed teacher "
        "(the default larger CNN; the first study's fixed cell; four cells; a random cell per "
        "learner, the paper's protocol), where its run is in `results/`."),
    nbf.v4.new_code_cell(
        "for label, run in (('larger CNN (default)', 'nas_fmnist'), ('fixed cell', 'nas_fmnist_fixed_cell'),\n"
        "                   ('four cells', 'nas_fmnist_population'),\n"
        "                   ('random cells (paper)', 'nas_fmnist_random_cells')):\n"
        "    path = os.path.join(repo, 'results', run, 'summary.json')\n"
        "    if os.path.exists(path):\n"
        "        g = json.load(open(path))['proxies']['gtn']\n"
        "        lo, hi = g['spearman_interval']\n"
        "        print(f\"{label:22s} {g['num_candidates']:4d} candidates: GTN Spearman \"\n"
        "              f\"{g['spearman']:+.3f} [{lo:+.3f}, {hi:+.3f}]\")"),
]

notebook = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(notebook, os.path.join(os.path.dirname(os.path.abspath(__file__)), "nas.ipynb"))
