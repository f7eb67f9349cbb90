"""Writes notebooks/quickstart.ipynb (run it with
`jupyter nbconvert --to notebook --execute --inplace notebooks/quickstart.ipynb`)."""

import os

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# gtnjax quickstart\n\n"
        "Meta-train a Generative Teaching Network on the embedded 8x8 digits from Python, "
        "look at what it generates, and compare learners trained for the same few steps on "
        "its synthetic data and on real data. Runs on a laptop CPU in a few minutes; set "
        "`QUICK = False` for the full default run."),
    nbf.v4.new_code_cell(
        "import json, os, tempfile\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "from gtnjax import config as gconfig, configs, export, report, train, visualize\n\n"
        "QUICK = os.environ.get('GTNJAX_NOTEBOOK_QUICK', '1') == '1'\n"
        "cfg = gconfig.load_config_file(configs.DIGITS)   # the embedded digits run\n"
        "if QUICK:\n"
        "    cfg.inner_steps, cfg.inner_batch_size, cfg.num_meta_steps = 8, 16, 60\n"
        "    cfg.population = 1\n"
        "    cfg.eval_seeds, cfg.baseline_lrs, cfg.baseline_momenta = 2, (0.1, 0.3), (0.5,)\n"
        "workdir = tempfile.mkdtemp(prefix='gtnjax_')\n"
        "print(cfg)"),
    nbf.v4.new_code_cell(
        "summary = report.train_and_evaluate(cfg, workdir, progress=False)\n"
        "for key in ('gtn_test_accuracy', 'untrained_teacher_test_accuracy', "
        "'real_data_test_accuracy', 'real_data_learned_schedule_test_accuracy'):\n"
        "    print(f\"{key:42s} {summary[key]['mean']:.3f} ± {summary[key]['std']:.3f}\")"),
    nbf.v4.new_markdown_cell("Meta-training curves, from `metrics.jsonl`:"),
    nbf.v4.new_code_cell(
        "records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]\n"
        "fig, axes = plt.subplots(1, 2, figsize=(9, 3))\n"
        "axes[0].plot([r['step'] for r in records], [r['meta_loss'] for r in records])\n"
        "axes[0].set_title('meta-loss'); axes[0].set_xlabel('meta-step')\n"
        "axes[1].plot([r['step'] for r in records], [r['meta_accuracy'] for r in records])\n"
        "axes[1].set_title('probe accuracy'); axes[1].set_xlabel('meta-step')\n"
        "plt.show()"),
    nbf.v4.new_markdown_cell(
        "The synthetic curriculum, exported as plain arrays (rows: inner steps; "
        "columns: classes):"),
    nbf.v4.new_code_cell(
        "run, params, step = train.load_teacher(workdir)\n"
        "arrays = export.export_curriculum(run, params, os.path.join(workdir, 'curriculum.npz'))\n"
        "grid = visualize.sample_grid(arrays['x'], arrays['y'], arrays['mean'], arrays['std'])\n"
        "plt.figure(figsize=(6, 5)); plt.imshow(grid); plt.axis('off'); plt.show()\n"
        "print('learned learning rates', np.round(arrays['lr'], 3))\n"
        "print('learned momenta       ', np.round(arrays['momentum'], 3))"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {
    "name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(nb, os.path.join(os.path.dirname(os.path.abspath(__file__)), "quickstart.ipynb"))
