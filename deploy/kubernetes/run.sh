#!/bin/sh
# Runs a distributed audit on Kubernetes in order: phase 1 (Indexed Job), merge, and — only when
# that merge wrote the means file — phase 2 (Indexed Job) and the final merge. Each step waits for
# the one before. Usage: deploy/kubernetes/run.sh [namespace]   (docs/distributed.md)
set -eu
here=$(dirname "$0")
ns=${1:-default}
timeout=${LAYERPROBE_TIMEOUT:-24h}

step() {
  # $1: manifest, $2: Job name
  kubectl --namespace "$ns" delete job "$2" --ignore-not-found
  kubectl --namespace "$ns" apply -f "$1"
  kubectl --namespace "$ns" wait --for=condition=complete --timeout="$timeout" "job/$2"
}

step "$here/audit-phase1.yaml" layerprobe-audit-phase1
# merge.yaml holds both merges; the first one decides whether phase 2 runs.
kubectl --namespace "$ns" delete job layerprobe-merge-phase1 layerprobe-merge-final --ignore-not-found
kubectl --namespace "$ns" apply -f "$here/merge.yaml" --selector layerprobe/step=merge-phase1
kubectl --namespace "$ns" wait --for=condition=complete --timeout="$timeout" job/layerprobe-merge-phase1
if kubectl --namespace "$ns" logs job/layerprobe-merge-phase1 | grep -q '^phase 2 needed'; then
  step "$here/audit-phase2.yaml" layerprobe-audit-phase2
  kubectl --namespace "$ns" apply -f "$here/merge.yaml" --selector layerprobe/step=merge-final
  kubectl --namespace "$ns" wait --for=condition=complete --timeout="$timeout" job/layerprobe-merge-final
fi
echo "run folder: /shared/runs/audit on the layerprobe-shared volume"
