#!/usr/bin/env bash
# Deploys gpujobs to the cluster of the current kubectl context (kubectl 1.21 or newer).
#
#   IMAGE=registry.example.com/gpujobs scripts/deploy-k8s.sh [options]
#
#   --no-gpu     leave out the GPU worker (a cluster without GPU nodes)
#   --no-keda    leave out the KEDA autoscaling (left out by itself when the cluster
#                has no ScaledObject CRD)
#   --render     print the manifests that would be applied, touch no cluster
#
# Steps: the namespace; the Secret `gpujobs-redis` with a random password, unless it
# exists (rotate it by deleting it and restarting the pods); the manifests of deploy/k8s
# with IMAGE's `cpu` and `gpu` tags; then waits for the rollouts and runs
# `gpujobs doctor --redis-only` inside a scheduler pod.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
image="${IMAGE:-gpujobs}"
ns=gpujobs
gpu=1
keda=auto
render=0
for arg in "$@"; do
    case "$arg" in
        --no-gpu) gpu=0 ;;
        --no-keda) keda=0 ;;
        --render) render=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done
command -v kubectl >/dev/null || { echo "kubectl is not installed" >&2; exit 1; }
if [ "$keda" = auto ]; then
    if [ "$render" -eq 1 ] || kubectl get crd scaledobjects.keda.sh >/dev/null 2>&1; then
        keda=1
    else
        echo "note: KEDA is not installed (no scaledobjects.keda.sh CRD): workers keep their fixed replica counts" >&2
        keda=0
    fi
fi

# A copy of deploy/k8s with the image name set and the left-out parts removed from its
# resource list: plain files, so every kustomize reads it.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$root"/deploy/k8s/*.yaml "$work/"
drop=()
[ "$gpu" -eq 0 ] && drop+=(worker-gpu.yaml autoscaling-gpu.yaml)
[ "$keda" -eq 0 ] && drop+=(keda-auth.yaml autoscaling-cpu.yaml autoscaling-gpu.yaml)
for f in "${drop[@]}"; do
    sed -i "/^  - ${f//./\\.}\$/d" "$work/kustomization.yaml"
done
sed -i "s#^    newName: gpujobs\$#    newName: $image#" "$work/kustomization.yaml"
overlay="$work"

if [ "$render" -eq 1 ]; then
    kubectl kustomize "$overlay"
    exit 0
fi

kubectl apply -f "$root/deploy/k8s/namespace.yaml"
if ! kubectl -n "$ns" get secret gpujobs-redis >/dev/null 2>&1; then
    echo "creating Secret gpujobs-redis with a random password"
    kubectl -n "$ns" create secret generic gpujobs-redis \
        --from-literal=password="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
fi
kubectl apply -k "$overlay"
kubectl -n "$ns" rollout status statefulset/redis --timeout=5m
kubectl -n "$ns" rollout status deployment/scheduler --timeout=5m
kubectl -n "$ns" rollout status deployment/worker-cpu --timeout=5m
if [ "$gpu" -eq 1 ]; then
    kubectl -n "$ns" rollout status deployment/worker-gpu --timeout=10m
fi
kubectl -n "$ns" exec deploy/scheduler -- gpujobs doctor --redis-only
