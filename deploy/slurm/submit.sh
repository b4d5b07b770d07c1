#!/bin/bash
# Submits a distributed audit to Slurm: phase 1 as an array of N tasks, the merge when all of them
# succeeded, phase 2 and the final merge after it (they exit at once when no second pass is
# needed). Usage: N=8 deploy/slurm/submit.sh   with LAYERPROBE_MODEL, LAYERPROBE_DATASET,
# LAYERPROBE_SHARDS, LAYERPROBE_RUN exported (docs/distributed.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${N:?set N to the number of shards}
: "${LAYERPROBE_MODEL:?}" "${LAYERPROBE_DATASET:?}" "${LAYERPROBE_SHARDS:?}" "${LAYERPROBE_RUN:?}"
mkdir -p "$LAYERPROBE_SHARDS"
# A stale means file would send phase 2 to an old run's means: start clean.
rm -f "$LAYERPROBE_SHARDS/means.lpshard"

p1=$(sbatch --parsable --export=ALL --array="0-$((n - 1))" "$here/audit.sbatch" 1)
m1=$(sbatch --parsable --export=ALL --dependency="afterok:$p1" "$here/merge.sbatch" 1 "$n")
p2=$(sbatch --parsable --export=ALL --dependency="afterok:$m1" --array="0-$((n - 1))" "$here/audit.sbatch" 2)
m2=$(sbatch --parsable --export=ALL --dependency="afterok:$p2" "$here/merge.sbatch" 2 "$n")
echo "phase 1: $p1  merge: $m1  phase 2: $p2  final merge: $m2"
echo "run folder: $LAYERPROBE_RUN"
