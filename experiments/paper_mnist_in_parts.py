"""The `paper` MNIST run (T=32, B=128, the paper's CNN, 2000 meta-steps) on a
small machine, a part at a time (issue #22, part 2).

    TFDS_DATA_DIR=../shared/tfds python experiments/paper_mnist_in_parts.py --meta-steps 100
    git add results/paper_mnist && git commit -m "paper MNIST: meta-steps up to N"

Each call resumes `gtnjax train --config experiments/configs/mnist.py:paper`
in `--workdir` from its last checkpoint, meta-trains `--meta-steps` more (a
SIGTERM also stops it with a checkpoint), and copies what exists so far into
`results/paper_mnist/`: `config.json`, `metrics.jsonl` (the meta-training
curve: real-data probe loss and accuracy of every meta-step), `progress.json`
(meta-steps done of the total, wall seconds of each part) and, once all 2000
are done, the run's `summary.json` with its test-set evaluation. The cosine
meta-lr schedule is the 2000-step run's throughout, so the parts add up to
exactly the run one uninterrupted call would make.

The checkpoints (86 MB each: the generator, its curriculum and Adam's moments)
stay in `--workdir`, outside git. On a fresh clone the part refuses to start
rather than silently begin again; `--from-scratch` meta-trains the saved
steps again, prints how far the new curve is from the saved one, and replaces
the results only once it has gone past them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from gtnjax import rundir

import runner

CONFIG = os.path.join(runner.CONFIGS, "mnist.py") + ":paper"


def steps_done(workdir: str) -> int:
  """The last meta-step recorded in the workdir's metrics (0 before the first)."""
  records = rundir.read_metrics(workdir) if os.path.isdir(workdir) else []
  return max((int(r["step"]) for r in records), default=0)


def saved_steps(results: str) -> int:
  """The meta-steps already copied into `results` (0 before the first part)."""
  progress = rundir.read_json(os.path.join(results, "progress.json")) or {}
  return int(progress.get("meta_steps_done", 0))


def report_reproduction(workdir: str, results: str, saved: int) -> None:
  """Prints how far the workdir's curve is from the one saved in `results`
  over the steps both hold: 0 where a run restarted from scratch reproduced it."""
  old = {r["step"]: r for r in rundir.read_metrics(os.path.join(results, rundir.METRICS_FILE))}
  new = {r["step"]: r for r in rundir.read_metrics(workdir) if r["step"] <= saved}
  shared = sorted(set(old) & set(new))
  if not shared:
    return
  keys = sorted(k for k in old[shared[0]] if k not in ("step", "seconds") and
                isinstance(old[shared[0]][k], (int, float)))
  gap = max(abs(old[s][k] - new[s][k]) for s in shared for k in keys if k in new[s])
  print(f"steps 1..{shared[-1]} against the saved curve: largest difference {gap:.3g} "
        f"over {', '.join(keys)}", flush=True)


def copy_results(workdir: str, out: str, part_seconds: float, config: str) -> dict:
  """Copies the run's files so far into `out` and appends this part to progress.json."""
  os.makedirs(out, exist_ok=True)
  for name in (rundir.CONFIG_FILE, rundir.METRICS_FILE, rundir.SUMMARY_FILE):
    if os.path.exists(os.path.join(workdir, name)):
      shutil.copy(os.path.join(workdir, name), os.path.join(out, name))
  path = os.path.join(out, "progress.json")
  progress = rundir.read_json(path) or {"config": config, "parts": []}
  done = steps_done(workdir)
  progress["parts"].append({"ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "meta_steps_done": done, "wall_seconds": round(part_seconds)})
  progress["meta_steps_done"] = done
  progress["num_meta_steps"] = rundir.load_config(workdir).num_meta_steps
  progress["finished"] = rundir.read_summary(workdir) is not None
  rundir.write_json(path, progress)
  return progress


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
  parser.add_argument("--meta-steps", type=int, default=100,
                      help="meta-steps to add in this part (~29 s each on 2 cores)")
  parser.add_argument("--config", default=CONFIG)
  parser.add_argument("--from-scratch", action="store_true",
                      help="meta-train again the steps saved in --results whose checkpoint "
                           "is not in --workdir (a fresh machine)")
  parser.add_argument("--workdir", default=os.path.join(runner.REPO, "runs", "paper_mnist"))
  parser.add_argument("--results", default=os.path.join(runner.REPO, "results", "paper_mnist"))
  args = parser.parse_args()
  if args.meta_steps < 1:
    parser.error("--meta-steps must be a positive number of meta-steps to add")
  saved = saved_steps(args.results)
  done = steps_done(args.workdir)
  if done < saved and not args.from_scratch:
    parser.error(
        f"{args.results} holds {saved} meta-steps but {args.workdir} only {done}: its "
        "checkpoints are not on this machine (a fresh clone). Point --workdir at the "
        "run's old workdir to resume, or pass --from-scratch to meta-train again from "
        f"step {done} (the run is deterministic: the saved curve is reproduced and "
        "checked, and the results are only replaced once this part passes it)")
  stop_after = max(done, saved) + args.meta_steps
  command = [sys.executable, "-m", "gtnjax.cli", "train", "--config", args.config,
             "--workdir", args.workdir, "--no-progress", "--stop-after", str(stop_after)]
  os.makedirs(args.workdir, exist_ok=True)
  start = time.time()
  print(f"[{time.strftime('%H:%M:%S')}] meta-training up to step {stop_after}", flush=True)
  with open(os.path.join(args.workdir, "log.txt"), "a") as log:
    status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
  if status != 0:
    sys.exit(f"gtnjax train exited {status}; see {args.workdir}/log.txt (nothing copied; "
             "the last checkpoint is kept, rerun to resume)")
  done = steps_done(args.workdir)
  if done < saved:
    sys.exit(f"stopped at meta-step {done}, before the {saved} already in {args.results}: "
             "nothing copied (the checkpoint is kept, rerun to resume)")
  report_reproduction(args.workdir, args.results, saved)
  progress = copy_results(args.workdir, args.results, time.time() - start, args.config)
  print(f"{progress['meta_steps_done']} of {progress['num_meta_steps']} meta-steps done"
        + ("; finished" if progress["finished"] else "") + f"; files in {args.results}",
        flush=True)


if __name__ == "__main__":
  main()
