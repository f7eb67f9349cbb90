#!/bin/bash
# After logs/run_queue_1205d.sh (issue #22, 2026-12-05): the per-architecture
# teachers on the three outside networks (registered today, before they ran),
# seed 1 then seed 0, with seed 0's cnn_gap and cell rows (schedule tuned on
# validation; its cnn row exists); then seed 2's two-conv CNN evaluation
# (part 4). Seed 2's teacher checkpoint was not kept, so it is meta-trained
# again with today's code (worktree /work/frozen5 at 0ab0641) into a scratch
# results root, its metrics compared with the committed ones, and only then
# evaluated. Logs under runs/ (ignored); rerun to resume.
cd /work/main
while pgrep -f run_queue_1205d.sh > /dev/null; do sleep 30; done
export TFDS_DATA_DIR=/work/shared/tfds
RUN="python experiments/gtn_vs_real_data.py --workdir-root /work/main/runs/gtn_vs_real_data --results /work/main/results/gtn_vs_real_data"
echo "=== per_learner_s1 outside networks $(date)"
$RUN --only mnist_population_cnn_small_mlp_gap_schedule_per_learner_s1 --code /work/frozen4 > runs/gtn_vs_real_data_schedule_per_learner_s1_outside.log 2>&1
echo "=== done rc=$? $(date)"
echo "=== per_learner_s0 tuned and outside evaluations $(date)"
$RUN --only mnist_population_cnn_small_mlp_gap_schedule_per_learner_s0 --code /work/frozen4 > runs/gtn_vs_real_data_schedule_per_learner_s0_tuned.log 2>&1
echo "=== done rc=$? $(date)"
echo "=== mnist_population_cnn_small_mlp_s2 meta-trained again $(date)"
python - <<'PY' > runs/retrain_population_s2.log 2>&1
import sys
sys.path.insert(0, "experiments")
import gtn_vs_real_data as g, runner
name = "mnist_population_cnn_small_mlp_s2"
config, overrides = g.SUITE[name]
runner.run_one(name, config, overrides, "/work/main/runs/gtn_vs_real_data",
               "/work/main/runs/retrained_results", "/work/frozen5")
PY
echo "=== done rc=$? $(date)"
# Every logged number but the step times ("seconds") must be equal.
if python - <<'PY'
import json, sys
def read(path):
  return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in open(path)]
committed = read("results/gtn_vs_real_data/mnist_population_cnn_small_mlp_s2/metrics.jsonl")
again = read("runs/retrained_results/mnist_population_cnn_small_mlp_s2/metrics.jsonl")
print(f"{len(committed)} / {len(again)} meta-steps; equal: {committed == again}")
sys.exit(0 if committed == again else 1)
PY
then
  echo "=== metrics identical to the committed run: evaluating $(date)"
  $RUN --only mnist_population_cnn_small_mlp_s2 --code /work/frozen5 > runs/gtn_vs_real_data_population_s2_eval.log 2>&1
  echo "=== done rc=$? $(date)"
else
  echo "=== metrics differ from the committed run: not evaluated $(date)"
fi
