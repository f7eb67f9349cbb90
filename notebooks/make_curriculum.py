"""Writes notebooks/curriculum.ipynb (run it with
`jupyter nbconvert --to notebook --execute --inplace notebooks/curriculum.ipynb`)."""

import os

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# What a GTN teaches, step by step\n\n"
        "A trained teacher's samples along the inner steps, its learned learning rate and "
        "momentum per step, and the accuracy of fresh learners after each step on its data "
        "against real data (with the best constant schedule, and with a meta-learned "
        "schedule). Set `WORKDIR` to a finished `gtnjax train` run to look at it; by default "
        "the notebook meta-trains a small digits teacher first (a minute on a laptop CPU)."),
    nbf.v4.new_code_cell(
        "import functools, os, tempfile\n"
        "import jax\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "from gtnjax import baselines, config as gconfig, configs, evaluation, export, report, train, visualize\n\n"
        "WORKDIR = os.environ.get('GTNJAX_CURRICULUM_WORKDIR', '')\n"
        "if not WORKDIR:\n"
        "    cfg = gconfig.load_config_file(configs.DIGITS)   # the digits run, at a quick scale\n"
        "    cfg.inner_steps, cfg.inner_batch_size, cfg.num_meta_steps = 8, 16, 60\n"
        "    cfg.population = 1\n"
        "    cfg.eval_seeds, cfg.baseline_lrs, cfg.baseline_momenta = 2, (0.1, 0.3), (0.5,)\n"
        "    WORKDIR = tempfile.mkdtemp(prefix='gtnjax_curriculum_')\n"
        "    report.train_and_evaluate(cfg, WORKDIR, progress=False)\n"
        "run, params, step = train.load_teacher(WORKDIR)\n"
        "print(f'{WORKDIR}: {run.config.dataset}, T={run.config.inner_steps}, '\n"
        "      f'meta-step {step}')"),
    nbf.v4.new_markdown_cell("Samples (rows: inner steps; columns: classes):"),
    nbf.v4.new_code_cell(
        "arrays = export.curriculum_arrays(run, params)\n"
        "grid = visualize.sample_grid(arrays['x'], arrays['y'], arrays['mean'], arrays['std'],\n"
        "                             max_steps=run.config.inner_steps)\n"
        "plt.figure(figsize=(6, 6)); plt.imshow(grid); plt.axis('off'); plt.show()"),
    nbf.v4.new_markdown_cell("The learned schedule:"),
    nbf.v4.new_code_cell(
        "fig, axes = plt.subplots(1, 2, figsize=(9, 3))\n"
        "axes[0].plot(arrays['lr'], marker='o'); axes[0].set_title('learning rate')\n"
        "axes[1].plot(arrays['momentum'], marker='o'); axes[1].set_title('momentum')\n"
        "for ax in axes: ax.set_xlabel('inner step')\n"
        "plt.show()\n"
        "print('learned learning rates', np.round(arrays['lr'], 3))\n"
        "print('learned momenta       ', np.round(arrays['momentum'], 3))"),
    nbf.v4.new_markdown_cell(
        "Test accuracy of fresh learners after each inner step (mean over "
        "`eval_seeds` learners):"),
    nbf.v4.new_code_cell(
        "config = run.config\n"
        "spec = run.learner_spec(gconfig.learner_names(config)[0])\n"
        "curve = functools.partial(evaluation.learning_curve, spec, run.dataset,\n"
        "                          seed=config.seed, num_seeds=config.eval_seeds)\n"
        "curves = {'GTN': curve(jax.tree_util.Partial(run.teacher_spec.batches, params))}\n"
        "best = baselines.constant_schedule(run, spec.name, config.eval_seeds)\n"
        "curves['real data, best constant lr'] = curve(functools.partial(\n"
        "    evaluation.real_batches, num_classes=spec.num_classes,\n"
        "    inner_steps=config.inner_steps, batch_size=config.inner_batch_size,\n"
        "    lr=best['lr'], momentum=best['momentum']))\n"
        "learned = report.trained_learned_schedule(run)\n"
        "if learned is not None:\n"
        "    baseline_run, baseline_params = learned\n"
        "    curves['real data, learned schedule'] = curve(\n"
        "        jax.tree_util.Partial(baseline_run.teacher_spec.batches, baseline_params))\n"
        "for name, c in curves.items():\n"
        "    plt.plot(c['steps'], c['mean'], marker='o', label=name)\n"
        "    print(f\"{name:30s}\", ' '.join(f'{v:.3f}' for v in c['mean']))\n"
        "plt.xlabel('inner step'); plt.ylabel('test accuracy'); plt.legend(); plt.show()"),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {
    "name": "python3", "display_name": "Python 3", "language": "python"}})
nbf.write(nb, os.path.join(os.path.dirname(os.path.abspath(__file__)), "curriculum.ipynb"))
