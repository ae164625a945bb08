#!/usr/bin/env bash
# tests/k8s/test_chart.sh: the Helm chart deploy/helm/roboshop without a cluster. `helm lint --strict`, then
# `helm template` with the defaults (backends in the chart) and with every backend external, and the assertions
# of chart_check.py on both renderings: every container non-root, read-only, no escalation, all capabilities
# dropped, seccomp RuntimeDefault; probes, resources, PDBs and HPAs; the services' variables as in their systemd
# env files; the NetworkPolicies allow exactly the shop's flows and nothing else; no published password.
# Called by the k8s suite (tests/k8s/run); runnable alone. Ends with "N passed, N failed".
#   HELM=/path/to/helm (default: helm on PATH, the cluster cache's, /tmp/k3-helm/helm)
#   CHART=/path/to/chart (default: deploy/helm/roboshop of this checkout)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHART=${CHART:-$ROOT/deploy/helm/roboshop}
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() { echo "test_chart: $pass passed, $fail failed"; exit $((fail > 0)); }

find_helm() {
    local h
    [[ -n ${HELM:-} ]] && { echo "$HELM"; return; }
    command -v helm 2>/dev/null && return
    for h in /var/cache/roboshop/k8s-*/bin/helm /var/cache/roboshop/k8s-*/helm /tmp/k3-helm/helm; do
        [[ -x $h ]] && { echo "$h"; return; }
    done
}
HELM=$(find_helm)
if [[ -z $HELM || ! -x $HELM ]]; then
    bad "no helm binary (set HELM=, or build it: GOBIN=DIR go install helm.sh/helm/v4/cmd/helm@v4.0.4)"
    finish
fi
echo "helm: $HELM ($("$HELM" version --short 2>/dev/null))"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. lint, strict (warnings fail too), with the defaults and with external backends
EXTERNAL=(--set external.mongodb.url='mongodb://mongo.example.net:27017/?tls=true'
    --set external.redis.url=redis://redis.example.net:6380 --set external.redis.existingSecret=redis-creds
    --set external.mysql.url=mysql://db.example.net:3307 --set external.mysql.cidr=10.20.0.0/16
    --set external.rabbitmq.url=amqp://mq.example.net:5671 --set external.rabbitmq.existingSecret=mq-creds
    --set credentials.existingSecret=shop-creds
    --set tracing.endpoint=http://otel.monitoring:4318
    --set 'tracing.peers[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring')
if out=$("$HELM" lint --strict "$CHART" 2>&1); then ok "helm lint --strict (defaults)"; else bad "helm lint --strict (defaults)"; echo "$out"; fi
if out=$("$HELM" lint --strict "$CHART" "${EXTERNAL[@]}" 2>&1); then ok "helm lint --strict (external backends)"
else bad "helm lint --strict (external backends)"; echo "$out"; fi

# 2. render both ways and check the manifests
if "$HELM" template shop "$CHART" -n roboshop >"$work/in-chart.yaml" 2>"$work/err"; then
    ok "helm template renders with in-chart backends"
    python3 "$ROOT/tests/k8s/chart_check.py" in-chart "$work/in-chart.yaml" "$ROOT" >"$work/check1" 2>&1
    grep '^FAIL' "$work/check1"
    p=$(sed -n 's/^chart_check .*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/check1")
    [[ -n $p ]] || { bad "chart_check in-chart did not finish: $(tail -n 3 "$work/check1")"; p="0 0"; }
    pass=$((pass + ${p% *})) fail=$((fail + ${p#* }))
    echo "in-chart: ${p% *} assertions passed, ${p#* } failed"
else
    bad "helm template with in-chart backends: $(cat "$work/err")"
fi
if "$HELM" template shop "$CHART" -n roboshop "${EXTERNAL[@]}" >"$work/external.yaml" 2>"$work/err"; then
    ok "helm template renders with external backends"
    python3 "$ROOT/tests/k8s/chart_check.py" external "$work/external.yaml" "$ROOT" >"$work/check2" 2>&1
    grep '^FAIL' "$work/check2"
    p=$(sed -n 's/^chart_check .*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/check2")
    [[ -n $p ]] || { bad "chart_check external did not finish: $(tail -n 3 "$work/check2")"; p="0 0"; }
    pass=$((pass + ${p% *})) fail=$((fail + ${p#* }))
    echo "external: ${p% *} assertions passed, ${p#* } failed"
else
    bad "helm template with external backends: $(cat "$work/err")"
fi

# 3. persistence on: each backend claims a volume instead of an emptyDir
if "$HELM" template shop "$CHART" --set persistence.enabled=true >"$work/pv.yaml" 2>"$work/err"; then
    n=$(python3 -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="StatefulSet" and d["spec"].get("volumeClaimTemplates")))' "$work/pv.yaml")
    [[ $n == 4 ]] && ok "persistence.enabled: four StatefulSets with volumeClaimTemplates" ||
        bad "persistence.enabled: $n StatefulSets with volumeClaimTemplates, want 4"
else
    bad "helm template with persistence: $(cat "$work/err")"
fi

# 4. the other switches: no policies, an Ingress, a NodePort, Redis without ACL users, MongoDB URLs from a Secret,
#    a fixed replica count without autoscaler
if "$HELM" template shop "$CHART" --set networkPolicy.enabled=false --set ingress.enabled=true \
    --set ingress.host=shop.example.com --set web.service.type=NodePort --set web.service.nodePort=30080 \
    --set external.redis.url=redis://r:6379 --set external.redis.acl=false --set external.mongodb.url=mongodb://m:27017 \
    --set external.mongodb.existingSecret=mongo-urls --set external.mongodb.catalogueUrlKey=cat \
    --set external.mongodb.usersUrlKey=users --set catalogue.hpa.enabled=false --set catalogue.replicas=3 \
    >"$work/variants.yaml" 2>"$work/err"; then
    out=$(python3 - "$work/variants.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
env = lambda n: {e["name"]: e for e in by[("Deployment", n)]["spec"]["template"]["spec"]["containers"][0]["env"]}
checks = {
    "networkPolicy.enabled=false: no NetworkPolicy": not any(d["kind"] == "NetworkPolicy" for d in docs),
    "ingress.enabled: an Ingress to web for its host": by.get(("Ingress", "web"), {}).get("spec", {}).get("rules", [{}])[0].get("host") == "shop.example.com",
    "web.service.type=NodePort with its nodePort": by[("Service", "web")]["spec"]["ports"][0].get("nodePort") == 30080,
    "external.redis.acl=false: REDIS_URL without user": env("cart")["REDIS_URL"].get("value") == "redis://r:6379",
    "external.mongodb.existingSecret: MONGO_URL from the Secret": env("catalogue")["MONGO_URL"].get("valueFrom", {}).get("secretKeyRef") == {"name": "mongo-urls", "key": "cat"},
    "hpa disabled: the Deployment has the replicas, no HPA": by[("Deployment", "catalogue")]["spec"].get("replicas") == 3 and ("HorizontalPodAutoscaler", "catalogue") not in by,
    "hpa enabled: the Deployment leaves replicas to the HPA": "replicas" not in by[("Deployment", "cart")]["spec"],
    "two backends external: two StatefulSets": sorted(n for k, n in by if k == "StatefulSet") == ["mysql", "rabbitmq"],
}
for what, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + what)
EOF
)
    echo "$out"
    pass=$((pass + $(grep -c '^ok' <<<"$out"))) fail=$((fail + $(grep -c '^FAIL' <<<"$out")))
else
    bad "helm template with the other switches: $(cat "$work/err")"
fi

# 5. every value of values.yaml is documented in the chart's README
missing=$(python3 - "$CHART" <<'EOF'
import re, sys, yaml
chart = sys.argv[1]
vals = yaml.safe_load(open(f"{chart}/values.yaml"))
readme = open(f"{chart}/README.md").read()
LEAF = {"resources", "env", "podLabels", "podAnnotations", "nodeSelector", "affinity", "namespaceSelector",
        "podSelector", "annotations", "readiness", "liveness"}  # documented as a whole
SVC = r"^(catalogue|user|cart|shipping|ratings|payment|dispatch|web)(?=\.|$)"
def walk(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        yield key
        if isinstance(v, dict) and v and k not in LEAF:
            yield from walk(v, key + ".")
print(" ".join(k for k in walk(vals) if f"`{re.sub(SVC, '<service>', k)}`" not in readme))
EOF
)
[[ -z $missing ]] && ok "README.md documents every value" || bad "README.md does not document: $missing"
finish
