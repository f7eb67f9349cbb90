"""The `gtnjax` command.

  gtnjax train    --config FILE.py[:ARG] [--config.FIELD=VALUE ...] --workdir DIR
  gtnjax evaluate --workdir DIR [--learner NAME] [--seeds N] [--tune-schedule]
  gtnjax export   --workdir DIR --out FILE.npz
  gtnjax samples  --workdir DIR --out FILE.png
  gtnjax plot     --workdir DIR --out FILE.png
  gtnjax nas      --config FILE.py[:ARG] --workdir DIR [--ground-truth FILE.csv]
                  [--no-ground-truth-training]

Bad input (unknown config field or value, missing data set, a workdir without
a run) prints one line `gtnjax: error: ...` and exits with status 2 before
anything is compiled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from gtnjax import configs

# The embedded digits run, shipped inside the package: found from any folder.
DEFAULT_CONFIG = configs.DIGITS


class UsageError(ValueError):
  pass


def _split_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """Separate `--config.FIELD=VALUE` (or `--config.FIELD VALUE`) from other args."""
  rest, overrides = [], {}
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      field, eq, value = arg[len("--config."):].partition("=")
      if not eq:
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
          raise UsageError(f"{arg} needs a value: {arg}=VALUE")
        value = argv[i + 1]
        i += 1
      overrides[field] = value
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
  """Adds `--some-flag`, the documented spelling, and accepts `--some_flag` too."""
  dashed = "--" + name.lstrip("-").replace("_", "-")
  underscored = dashed.replace("-", "_").replace("__", "--", 1)
  names = [dashed] + ([underscored] if underscored != dashed else [])
  parser.add_argument(*names, dest=dashed[2:].replace("-", "_"), **kwargs)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="gtnjax", description="Generative Teaching Networks in JAX")
  parser.add_argument("--verbose", action="store_true", help="log at INFO level")
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("train", help="meta-train a teacher (resumes if DIR has a checkpoint)")
  p.add_argument("--config", default=None,
                 help="FILE.py[:ARG] with get_config(ARG) (default: the embedded digits run, "
                 "gtnjax/configs/digits.py); override fields with --config.FIELD=VALUE")
  p.add_argument("--workdir", required=True)
  _flag(p, "--no-progress", action="store_true", help="no progress bar")
  _flag(p, "--stop-after", type=int, default=None,
        help="stop with a checkpoint after this many meta-steps in total")
  _flag(p, "--coordinator-address", default=None, help="multi-process: host:port of process 0")
  _flag(p, "--num-processes", type=int, default=None)
  _flag(p, "--process-id", type=int, default=None)

  p = sub.add_parser("evaluate", help="train fresh learners on the teacher's data; print JSON")
  p.add_argument("--workdir", required=True)
  p.add_argument("--learner", default=None, help="architecture to evaluate (default: the run's)")
  p.add_argument("--seeds", type=int, default=None, help="learners per evaluation")
  _flag(p, "--tune-schedule", action="store_true",
                 help="also tune the learned schedule per learner on validation (lr scale, "
                      "momentum), as the real-data baseline is tuned")

  p = sub.add_parser("export", help="write the synthetic curriculum as an .npz of plain arrays")
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)

  p = sub.add_parser("samples", help="PNG grid of generated images by inner step and class")
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)

  p = sub.add_parser("plot", help="PNG of the meta-training curves in metrics.jsonl")
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)

  p = sub.add_parser("nas", help="GTN-NAS: ground truth, proxies, rankings, searches "
                     "(resumes; writes DIR/summary.json)")
  p.add_argument("--config", default=os.path.join("experiments", "configs", "nas_fmnist.py"),
                 help="FILE.py[:ARG] returning a gtnjax.nas.config config")
  p.add_argument("--workdir", required=True)
  _flag(p, "--ground-truth", default=None,
        help="the ground-truth CSV to use and extend (default: DIR/ground_truth.csv)")
  _flag(p, "--no-ground-truth-training", action="store_true",
        help="rank over the ground-truth rows already present; train none")
  _flag(p, "--no-progress", action="store_true")
  return parser


def _load_train_config(args, overrides):
  from gtnjax import config as gconfig
  config = gconfig.load_config_file(args.config or DEFAULT_CONFIG)
  return gconfig.apply_overrides(config, overrides)


def _nas(args) -> int:
  from gtnjax import preemption
  from gtnjax.nas import config as nas_config
  from gtnjax.nas import pipeline
  config = nas_config.load(args.config)
  try:
    summary = pipeline.run(config, args.workdir, ground_truth_path=args.ground_truth,
                           train_ground_truth=not args.no_ground_truth_training,
                           progress=not args.no_progress)
  except preemption.Preempted as e:
    print(f"the teacher's meta-training stopped at meta-step {e.step} with a checkpoint "
          f"in {args.workdir}/teacher; rerun the same command to resume")
    return 0
  print(f"{summary['num_candidates']} candidates; summary in "
        f"{os.path.join(args.workdir, 'summary.json')}")
  return 0


def _train(args, overrides) -> int:
  config = _load_train_config(args, overrides)
  if args.stop_after is not None and args.stop_after < 1:
    raise UsageError("--stop-after must be a positive number of meta-steps")
  from gtnjax import parallel, report
  parallel.initialize_distributed(args.coordinator_address, args.num_processes,
                                  args.process_id)
  summary = report.train_and_evaluate(config, args.workdir, progress=not args.no_progress,
                                      stop_after=args.stop_after)
  if summary.get("preempted"):
    print(f"stopped at meta-step {summary['step']} with a checkpoint in {args.workdir}; "
          "rerun the same command to resume")
    return 0
  gtn, real = summary["gtn_test_accuracy"], summary["real_data_test_accuracy"]
  print(f"{summary['dataset']} / {summary['learner']}, {summary['inner_steps']} inner steps: "
        f"GTN test accuracy {gtn['mean']:.4f} ± {gtn['std']:.4f} (n={gtn['n']}), "
        f"real data {real['mean']:.4f} ± {real['std']:.4f} (n={real['n']}, lr={real['lr']}, "
        f"momentum={real['momentum']})")
  learned = summary.get("real_data_learned_schedule_test_accuracy")
  if learned:
    print(f"  real data with a meta-learned schedule {learned['mean']:.4f} ± "
          f"{learned['std']:.4f} (n={learned['n']})")
  match = summary["real_data_steps_to_match"]
  print(f"  real-data steps to match GTN's accuracy: "
        f"{match if match else 'more than ' + str(real['steps_curve'][-1]['steps'])}; "
        f"{summary['wall_seconds']:.0f} s; summary in "
        f"{os.path.join(args.workdir, 'summary.json')}")
  return 0


def _check_out(args) -> None:
  suffix = {"export": ".npz", "samples": ".png", "plot": ".png"}[args.command]
  if not args.out.endswith(suffix):
    raise UsageError(f"--out {args.out!r}: `gtnjax {args.command}` writes a {suffix} file; "
                     f"name it ...{suffix}")
  parent = os.path.dirname(os.path.abspath(args.out))
  if not os.path.isdir(parent):
    raise UsageError(f"--out {args.out!r}: folder {parent} does not exist; create it first")


def _plot(args) -> int:
  from gtnjax import rundir, visualize
  path = os.path.join(args.workdir, rundir.METRICS_FILE)
  if not os.path.exists(path):
    raise UsageError(f"{args.workdir} has no {rundir.METRICS_FILE}: train a run there first")
  visualize.plot_curves(path, args.out)
  print(f"wrote {args.out}")
  return 0


def _from_teacher(args) -> int:
  """evaluate, export, samples: a trained teacher loaded from its workdir."""
  from gtnjax import export, registry, report, train
  names = None
  if args.command == "evaluate":
    if args.seeds is not None and args.seeds < 1:
      raise UsageError("--seeds must be a positive integer")
    if args.learner is not None:
      error = registry.name_error(args.learner)
      if error:
        raise UsageError(f"--learner: {error}")
      names = (args.learner,)
  run, params, step = train.load_teacher(args.workdir)
  if args.command == "evaluate":
    result = report.summarise(run, params, learner_names=names, num_seeds=args.seeds,
                              tune_schedule=args.tune_schedule)
    result["checkpoint_step"] = step
    print(json.dumps(result, indent=1))
  elif args.command == "export":
    arrays = export.export_curriculum(run, params, args.out)
    print(f"wrote {args.out}: x {arrays['x'].shape}, y {arrays['y'].shape} "
          f"(checkpoint step {step})")
  else:
    import numpy as np
    from gtnjax import visualize
    arrays = export.curriculum_arrays(run, params)
    grid = visualize.sample_grid(arrays["x"], arrays["y"], np.asarray(arrays["mean"]),
                                 np.asarray(arrays["std"]))
    visualize.save_png(grid, args.out)
    print(f"wrote {args.out} (rows: inner steps, columns: classes; checkpoint step {step})")
  return 0


def _run(args, overrides) -> int:
  if args.command != "train" and overrides:
    raise UsageError(f"--config.* overrides only apply to `gtnjax train` (got "
                     f"{', '.join(overrides)}); the run's config is in its workdir")
  if args.command == "nas":
    return _nas(args)
  if args.command == "train":
    return _train(args, overrides)
  if args.command in ("export", "samples", "plot"):
    _check_out(args)
  if args.command == "plot":
    return _plot(args)
  return _from_teacher(args)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = _parser()
  try:
    rest, overrides = _split_overrides(argv)
  except UsageError as e:
    parser.exit(2, f"gtnjax: error: {e}\n")
  args = parser.parse_args(rest)
  logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                      format="%(levelname)s %(name)s: %(message)s")
  if args.command == "nas" and "xla_backend_optimization_level" not in os.environ.get(
      "XLA_FLAGS", ""):
    # NAS compiles one program per candidate on CPU; XLA:CPU's optimisation
    # level 1 halves that compile time at an unchanged step time (measured,
    # RESULTS.md). Read when the backend starts, so set before JAX is used.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=1").strip()
  from gtnjax.checkpointing import CheckpointError
  from gtnjax.config import ConfigError
  from gtnjax.data import DatasetError
  from gtnjax.train import NonFiniteMetaLoss
  try:
    return _run(args, overrides)
  except (UsageError, ConfigError, DatasetError, CheckpointError) as e:
    print(f"gtnjax: error: {e}", file=sys.stderr)
    return 2
  except NonFiniteMetaLoss as e:
    print(f"gtnjax: error: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
