#!/usr/bin/env python3
"""Consistency checks on the deployment files that schema validation cannot see.

Usage: check_deploy.py KUSTOMIZE_OUTPUT.yaml COMPOSE_CONFIG.yaml

- Every worker's pod grace period (Kubernetes) and stop_grace_period (compose) is longer
  than the drain the worker is given with --grace, so a drain is never cut off.
- GPU workers ask for nvidia.com/gpu, select GPU nodes and tolerate their taint; the
  compose GPU worker reserves a GPU.
- Every Secret a pod reads is the one scripts/deploy-k8s.sh creates.
- Every pod that talks to Redis carries the label the Redis NetworkPolicy admits.
- KEDA objects (no published schema to validate against here): each ScaledObject
  targets an existing Deployment, uses redis-streams triggers with known metadata keys,
  covers every priority stream of its lane, and authenticates through an existing
  TriggerAuthentication that reads the Redis Secret.
"""

import re
import sys

import yaml

SECRET = "gpujobs-redis"
PART_OF = ("app.kubernetes.io/part-of", "gpujobs")
PRIORITIES = ("high", "normal", "low")
KEDA_REDIS_KEYS = {
    "address", "host", "port", "addressFromEnv", "hostFromEnv", "portFromEnv",
    "usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup",
    "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
    "enableTLS", "unsafeSsl", "databaseIndex",
}

errors = []


def fail(msg):
    errors.append(msg)


def grace_arg(args):
    """The worker's --grace (default 30 s, as in `gpujobs worker --help`)."""
    args = [str(a) for a in args or []]
    if "--grace" in args:
        return float(args[args.index("--grace") + 1])
    return 30.0


def seconds(text):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text))
    if not m or not any(m.groups()):
        raise ValueError(f"cannot read duration {text!r}")
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def check_kubernetes(docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    redis_clients = []
    for kind in ("Deployment", "StatefulSet"):
        for name, d in by_kind.get(kind, {}).items():
            pod = d["spec"]["template"]
            spec = pod["spec"]
            labels = pod["metadata"].get("labels", {})
            for c in spec["containers"]:
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref and ref["name"] != SECRET:
                        fail(f"{kind}/{name} reads Secret {ref['name']}, not {SECRET}")
                    if e["name"] == "GPUJOBS_REDIS_URL":
                        redis_clients.append(name)
                        if labels.get(PART_OF[0]) != PART_OF[1]:
                            fail(f"{kind}/{name} talks to Redis but lacks label {PART_OF[0]}")
                args = [str(a) for a in c.get("args", [])]
                if args[:1] == ["worker"]:
                    grace = grace_arg(args)
                    period = spec.get("terminationGracePeriodSeconds", 30)
                    if period < grace + 5:
                        fail(f"{kind}/{name}: terminationGracePeriodSeconds {period} does not cover --grace {grace} plus a margin")
                    if "cuda" in args:
                        limits = c.get("resources", {}).get("limits", {})
                        if int(limits.get("nvidia.com/gpu", 0)) < 1:
                            fail(f"{kind}/{name}: a cuda worker without an nvidia.com/gpu limit")
                        if not spec.get("nodeSelector"):
                            fail(f"{kind}/{name}: a cuda worker without a node selector")
                        tol = [t for t in spec.get("tolerations", []) if t.get("key") == "nvidia.com/gpu"]
                        if not tol:
                            fail(f"{kind}/{name}: a cuda worker that does not tolerate the nvidia.com/gpu taint")
    if not redis_clients:
        fail("no pod sets GPUJOBS_REDIS_URL")
    # The NetworkPolicy admits the part-of label to the Redis pods.
    policies = by_kind.get("NetworkPolicy", {})
    admitted = False
    for p in policies.values():
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") != "redis":
            continue
        for rule in p["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if peer.get("podSelector", {}).get("matchLabels", {}).get(PART_OF[0]) == PART_OF[1]:
                    admitted = True
    if not admitted:
        fail("no NetworkPolicy admits gpujobs pods to Redis")
    # KEDA.
    auths = by_kind.get("TriggerAuthentication", {})
    for name, a in auths.items():
        for ref in a["spec"].get("secretTargetRef", []):
            if ref["name"] != SECRET:
                fail(f"TriggerAuthentication/{name} reads Secret {ref['name']}, not {SECRET}")
    scaled = by_kind.get("ScaledObject", {})
    if not scaled:
        fail("no ScaledObject")
    for name, s in scaled.items():
        target = s["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            fail(f"ScaledObject/{name} targets missing Deployment {target}")
            continue
        args = [str(a) for a in deployments[target]["spec"]["template"]["spec"]["containers"][0].get("args", [])]
        lane = args[args.index("--backend") + 1] if "--backend" in args else "cpu"
        lane = "gpu" if lane == "cuda" else "cpu"
        if s["spec"].get("minReplicaCount", 0) > s["spec"].get("maxReplicaCount", 100):
            fail(f"ScaledObject/{name}: minReplicaCount above maxReplicaCount")
        streams = set()
        for t in s["spec"]["triggers"]:
            if t["type"] != "redis-streams":
                fail(f"ScaledObject/{name}: trigger type {t['type']}")
                continue
            unknown = set(t["metadata"]) - KEDA_REDIS_KEYS
            if unknown:
                fail(f"ScaledObject/{name}: unknown redis-streams metadata {sorted(unknown)}")
            for key in ("streamLength", "pendingEntriesCount", "lagCount"):
                if key in t["metadata"] and not str(t["metadata"][key]).isdigit():
                    fail(f"ScaledObject/{name}: {key} must be a number in a string")
            streams.add(t["metadata"]["stream"])
            ref = t.get("authenticationRef", {}).get("name")
            if ref not in auths:
                fail(f"ScaledObject/{name}: authenticationRef {ref} does not exist")
        want = {f"{{gpujobs}}:lane:{lane}:{p}" for p in PRIORITIES}
        if streams != want:
            fail(f"ScaledObject/{name} watches {sorted(streams)}, the {lane} lane is {sorted(want)}")


def check_compose(doc):
    services = doc["services"]
    for name, s in services.items():
        command = [str(a) for a in s.get("command", []) or []]
        if command[:1] != ["worker"]:
            continue
        grace = grace_arg(command)
        stop = seconds(s.get("stop_grace_period", "10s"))
        if stop < grace + 5:
            fail(f"compose {name}: stop_grace_period {stop}s does not cover --grace {grace} plus a margin")
        if "cuda" in command:
            devices = s.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
            if not any("gpu" in d.get("capabilities", []) for d in devices):
                fail(f"compose {name}: a cuda worker that reserves no GPU")
    redis = services.get("redis", {})
    cmd = " ".join(str(a) for a in redis.get("command", []))
    for want in ("--appendonly yes", "--maxmemory-policy noeviction", "--requirepass"):
        if want not in cmd:
            fail(f"compose redis: missing {want}")
    def on_data(v):
        return v.get("target") == "/data" if isinstance(v, dict) else str(v).split(":")[1:2] == ["/data"]

    if not any(on_data(v) for v in redis.get("volumes", [])):
        fail("compose redis: /data is not on a volume")


def main():
    k8s, compose = sys.argv[1], sys.argv[2]
    with open(k8s) as f:
        check_kubernetes([d for d in yaml.safe_load_all(f) if d])
    with open(compose) as f:
        check_compose(yaml.safe_load(f))
    for e in errors:
        print(f"error: {e}")
    if errors:
        sys.exit(1)
    print("deployment consistency: ok")


if __name__ == "__main__":
    main()
