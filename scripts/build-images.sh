#!/usr/bin/env bash
# Builds the container images (BuildKit) and optionally pushes them.
#   scripts/build-images.sh                      # gpujobs:cpu and gpujobs:gpu
#   scripts/build-images.sh --cpu-only           # no CUDA base image needed
#   IMAGE=registry.example.com/gpujobs scripts/build-images.sh --push
# IMAGE (default gpujobs) names the repository; the tags are `cpu` and `gpu`, plus
# `cpu-VERSION` and `gpu-VERSION` with the workspace version.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
image="${IMAGE:-gpujobs}"
push=0
gpu=1
for arg in "$@"; do
    case "$arg" in
        --push) push=1 ;;
        --cpu-only) gpu=0 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done
command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "no Docker engine answers (is dockerd running?)" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
export DOCKER_BUILDKIT=1
flavours=(cpu)
[ "$gpu" -eq 1 ] && flavours+=(gpu)
for f in "${flavours[@]}"; do
    echo "== $image:$f ($image:$f-$version)"
    docker build -f "deploy/docker/$f.Dockerfile" -t "$image:$f" -t "$image:$f-$version" .
    if [ "$push" -eq 1 ]; then
        docker push "$image:$f"
        docker push "$image:$f-$version"
    fi
done
# A quick look inside: the binary runs and knows its version.
docker run --rm --entrypoint gpujobs "$image:cpu" --version
