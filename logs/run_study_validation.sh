#!/bin/bash
# Issue #22 part 1: the meta-training study's choices restated on validation.
# Re-trains every study row (deterministic: the rerun also checks the old test
# accuracies and prints the largest change) with a gtnjax that records the
# fresh learners' validation accuracy, one row at a time, each replacing its
# results/study_mnist/NAME/ only once it has finished. About 60-100 min on 2
# idle cores; resumable: rows already recording validation are skipped.
# Code: a worktree frozen at the commit this script is started from.
set -u
cd "$(dirname "$0")/.."
repo=$(pwd)
frozen=${FROZEN:-/tmp/gtnjax_frozen_$(git rev-parse --short HEAD)}
[ -d "$frozen" ] || git worktree add -q --detach "$frozen" HEAD
mkdir -p runs
for name in $(python -c "
import json, os, sys
sys.path.insert(0, 'experiments')
import meta_training_study as m
# The rows behind the study's choices first: population 4 against 1, and
# 600 meta-steps (the other way to more initialisations).
first = ['base', 'population_4', 'meta_steps_600']
for name in first + [n for n in m.RUNS if n not in first]:
  path = os.path.join('results/study_mnist', name, 'summary.json')
  if 'gtn_validation_accuracy' not in json.load(open(path)):
    print(name)"); do
  echo "=== $name $(date)"
  TFDS_DATA_DIR=${TFDS_DATA_DIR:-$repo/../shared/tfds} python experiments/meta_training_study.py \
    --only "$name" --rerun --code "$frozen" --workdir-root "$repo/runs/study_mnist" \
    --results "$repo/results/study_mnist"
  echo "=== done rc=$? $(date)"
done
