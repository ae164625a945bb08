#!/usr/bin/env python3
"""chart_check.py - assertions on the manifests `helm template` renders from deploy/helm/roboshop.

Usage: chart_check.py MODE MANIFESTS.yaml REPO_ROOT
  MODE in-chart: the default values (backends in the chart, NetworkPolicies on)
  MODE external: every backend external (URLs, existingSecret), tracing on
Prints one "ok"/"FAIL" line per check and exits 1 when any check failed.
"""
import base64
import re
import sys

import yaml

SERVICES = ["catalogue", "user", "cart", "shipping", "ratings", "payment", "dispatch"]
STATELESS = SERVICES + ["web"]
BACKENDS = {"mongodb": 27017, "redis": 6379, "mysql": 3306, "rabbitmq": 5672}
# The topology (deploy/roboshop DEPS, the services' env files, web/nginx): caller -> callee.
FLOWS = {
    "web": ["catalogue", "user", "cart", "shipping", "payment", "ratings"],
    "catalogue": ["mongodb"],
    "user": ["mongodb", "redis"],
    "cart": ["catalogue", "redis"],
    "shipping": ["cart", "mysql"],
    "ratings": ["catalogue", "mysql"],
    "payment": ["cart", "user", "redis", "rabbitmq"],
    "dispatch": ["rabbitmq", "redis"],
    "seed-mongo": ["mongodb"],
    "seed-mysql": ["mysql"],
}
# Passwords published in the course and the reference: never in a rendered manifest.
PUBLISHED = ["RoboShop@1", "iloveit", "roboshop123", "guest"]

failures = 0
passes = 0


def check(cond, what):
    global failures, passes
    if cond:
        passes += 1
        print(f"ok   {what}")
    else:
        failures += 1
        print(f"FAIL {what}")


def port_of(name):
    return BACKENDS.get(name, 8080)


def component(labels):
    return (labels or {}).get("app.kubernetes.io/component")


def pod_specs(docs):
    """(kind/name, component, pod spec) of every workload."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            t = d["spec"]["template"]
            yield f'{d["kind"]}/{d["metadata"]["name"]}', component(t["metadata"].get("labels")), t["spec"]


def containers(spec):
    return spec.get("containers", []) + spec.get("initContainers", [])


def check_security(docs):
    for where, _, spec in pod_specs(docs):
        check(spec.get("automountServiceAccountToken") is False and spec.get("enableServiceLinks") is False,
              f"{where}: no service account token, no service-link variables")
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001
              and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{where}: pod runs as non-root uid 10001 with seccomp RuntimeDefault")
        for c in containers(spec):
            sc = c.get("securityContext", {})
            ok = (sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001
                  and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                  and "ALL" in sc.get("capabilities", {}).get("drop", [])
                  and not sc.get("capabilities", {}).get("add")
                  and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
                  and not sc.get("privileged"))
            check(ok, f"{where}/{c['name']}: non-root 10001, read-only root, no escalation, drop ALL, seccomp")
            res = c.get("resources", {})
            check(res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")
                  and res.get("requests", {}).get("cpu") and res.get("limits", {}).get("cpu"),
                  f"{where}/{c['name']}: cpu and memory requests and limits")


def mi(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", str(q))
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1) if m else None


def check_services(docs, root):
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name in STATELESS:
        d = deps.get(name)
        check(d is not None, f"Deployment {name} exists")
        if not d:
            continue
        c = d["spec"]["template"]["spec"]["containers"][0]
        rp = c.get("readinessProbe", {}).get("httpGet", {})
        want = "/_health" if name == "ratings" else "/health"
        check(rp.get("path") == want and rp.get("port") in ("http", 8080),
              f"{name}: readiness probe on {want} (got {rp.get('path')})")
        lp = c.get("livenessProbe", {}).get("httpGet", {})
        check(lp.get("path") in ("/metrics", "/health") and lp.get("port") in ("http", 8080),
              f"{name}: liveness probe (got {lp.get('path')})")
        check(any(p.get("containerPort") == 8080 for p in c.get("ports", [])), f"{name}: listens on 8080")
        limit = mi(c["resources"]["limits"]["memory"])
        check(limit is not None and limit <= 128, f"{name}: memory limit {limit} Mi, sized from the benchmarks (<= 128 Mi)")
        if name == "web":
            continue
        env = {e["name"]: e for e in c.get("env", [])}
        # the same variables as the systemd units' env files
        with open(f"{root}/deploy/systemd/env/{name}.env") as f:
            keys = [ln.split("=", 1)[0] for ln in f if re.match(r"^[A-Z_]+=", ln)]
        missing = [k for k in keys if k not in env]
        check(not missing, f"{name}: every variable of deploy/systemd/env/{name}.env is set (missing: {missing})")
        for k, e in env.items():
            if re.search(r"PASS|PASSWORD|SECRET", k):
                check("valueFrom" in e and "secretKeyRef" in e["valueFrom"], f"{name}: {k} comes from a Secret")
        for k in ("REDIS_URL", "MONGO_URL"):
            if k in env and "value" in env[k]:
                check(not re.search(r"://[^/@]*:[^/@$]+@", env[k]["value"]) or "$(" in env[k]["value"],
                      f"{name}: {k} carries no literal password")
    svcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for name in STATELESS:
        s = svcs.get(name)
        check(s is not None and s["spec"]["ports"][0]["port"] == 8080, f"Service {name} on port 8080")
    pdbs = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    hpas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    for name in STATELESS:
        check(name in pdbs, f"{name}: PodDisruptionBudget")
        h = hpas.get(name)
        check(h is not None and h["apiVersion"] == "autoscaling/v2"
              and h["spec"]["metrics"][0]["resource"]["name"] == "cpu", f"{name}: HorizontalPodAutoscaler v2 on CPU")


def selected(policy, comp):
    ml = policy["spec"]["podSelector"].get("matchLabels", {})
    return not ml or ml.get("app.kubernetes.io/component") == comp


def peer_components(peers):
    """Components a list of NetworkPolicyPeer objects names; 'ANY' for an empty or unrestricted list."""
    if not peers:
        return {"ANY"}
    out = set()
    for p in peers:
        if "podSelector" in p and "namespaceSelector" not in p:
            out.add(p["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component", "ANY"))
        elif "ipBlock" in p:
            out.add("ip:" + p["ipBlock"]["cidr"])
        else:
            out.add("NS")
    return out


def allowed_flows(pols, comps):
    """(src, dst, port) pairs allowed by the policies: egress of src AND ingress of dst must both allow."""
    egress, ingress, dns = set(), set(), set()
    for pol in pols:
        for comp in comps:
            if not selected(pol, comp):
                continue
            for rule in pol["spec"].get("egress") or []:
                ports = [(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [{"port": "ANY"}])]
                for dst in peer_components(rule.get("to")):
                    for proto, port in ports:
                        if dst == "NS" and port == 53:
                            dns.add(comp)
                        else:
                            egress.add((comp, dst, port))
            for rule in pol["spec"].get("ingress") or []:
                ports = [p["port"] for p in rule.get("ports", [{"port": "ANY"}])]
                for src in peer_components(rule.get("from")):
                    for port in ports:
                        ingress.add((src, comp, port))
    return egress, ingress, dns


def check_policies(docs, mode):
    pols = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [p for p in pols if not p["spec"]["podSelector"] and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    check(len(deny) == 1, "NetworkPolicy: default deny (ingress and egress) for every pod of the namespace")
    inchart = mode == "in-chart"
    comps = set(FLOWS) | (set(BACKENDS) if inchart else set())
    egress, ingress, dns = allowed_flows(pols, comps)
    check(dns == comps, f"NetworkPolicy: DNS egress for every component (missing: {sorted(comps - dns)})")
    want_egress = set()
    for src, dsts in FLOWS.items():
        for dst in dsts:
            if dst in BACKENDS and not inchart:  # outside: its CIDR when given, else any address, on its port
                want_egress.add((src, "ip:" + EXTERNAL_CIDR[dst] if dst in EXTERNAL_CIDR else "ANY", EXTERNAL_PORT[dst]))
            else:
                want_egress.add((src, dst, port_of(dst)))
    if not inchart:  # tracing is on in the external rendering: every service may reach the collector
        for s in SERVICES:
            want_egress.add((s, "NS", 4318))
    extra = egress - want_egress
    missing = want_egress - egress
    check(not missing, f"NetworkPolicy: every flow of the topology allowed out (missing: {sorted(missing)})")
    check(not extra, f"NetworkPolicy: no other egress (extra: {sorted(extra)})")
    want_ingress = {(src, dst, port_of(dst)) for src, dsts in FLOWS.items() for dst in dsts
                    if inchart or dst not in BACKENDS}
    want_ingress.add(("ANY", "web", 8080))
    extra = ingress - want_ingress
    missing = want_ingress - ingress
    check(not missing, f"NetworkPolicy: every flow of the topology allowed in (missing: {sorted(missing)})")
    check(not extra, f"NetworkPolicy: no other ingress (extra: {sorted(extra)})")


# The external rendering (test_chart.sh): these backends get a CIDR, the others none.
EXTERNAL_CIDR = {"mysql": "10.20.0.0/16"}
EXTERNAL_PORT = {"mongodb": 27017, "redis": 6380, "mysql": 3307, "rabbitmq": 5671}


def check_secrets(text, docs, mode):
    for pw in PUBLISHED:
        check(pw not in text, f"no published password {pw!r} in the manifests")
    for d in docs:
        if d["kind"] == "Secret":
            check("stringData" not in d, f"Secret {d['metadata']['name']}: no stringData")
            for k, v in (d.get("data") or {}).items():
                val = base64.b64decode(v).decode()
                check(len(val) >= 16 and val not in PUBLISHED and re.fullmatch(r"[A-Za-z0-9]+", val),
                      f"Secret {d['metadata']['name']}/{k}: generated (24 letters and digits)")
    secrets = [d for d in docs if d["kind"] == "Secret"]
    if mode == "in-chart":
        check(len(secrets) == 1, "one generated credentials Secret")
    else:
        check(not secrets, "existingSecret: the chart makes no Secret")


def check_backends(docs, mode):
    sts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "StatefulSet"}
    jobs = [d["metadata"]["name"] for d in docs if d["kind"] == "Job"]
    check(any(j.startswith("seed-mongo") for j in jobs) and any(j.startswith("seed-mysql") for j in jobs),
          "seed Jobs for MongoDB and MariaDB")
    if mode == "in-chart":
        check(set(sts) == set(BACKENDS), f"StatefulSets for the four backends (got {sorted(sts)})")
        for name, d in sts.items():
            spec = d["spec"]["template"]["spec"]
            c = spec["containers"][0]
            check(c.get("readinessProbe") and c.get("livenessProbe"), f"{name}: readiness and liveness probes")
            check(any(v["name"] == "data" for v in spec.get("volumes", [])) or d["spec"].get("volumeClaimTemplates"),
                  f"{name}: a data volume")
        redis = sts["redis"]["spec"]["template"]["spec"]["containers"][0]["args"]
        check("default" in redis and redis[redis.index("default") + 1] == "off", "redis: the default user is off")
        check(all(u in redis for u in ("cart", "user", "payment", "dispatch")), "redis: ACL users per service")
    else:
        check(not sts, "external backends: no StatefulSet")
        envs = {}
        for d in docs:
            if d["kind"] == "Deployment":
                for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
                    envs.setdefault(d["metadata"]["name"], {})[e["name"]] = e
        check(envs["catalogue"]["MONGO_URL"]["value"] == "mongodb://mongo.example.net:27017/catalogue?tls=true",
              "external: catalogue's MONGO_URL from external.mongodb.url")
        check(envs["cart"]["REDIS_URL"]["value"] == "redis://cart:$(REDIS_PASSWORD)@redis.example.net:6380",
              "external: cart's REDIS_URL from external.redis.url")
        check(envs["shipping"]["DB_HOST"]["value"] == "db.example.net" and envs["shipping"]["DB_PORT"]["value"] == "3307",
              "external: shipping's DB_HOST/DB_PORT from external.mysql.url")
        check(envs["payment"]["AMQP_PASS"]["valueFrom"]["secretKeyRef"]["name"] == "mq-creds",
              "external: payment's AMQP_PASS from external.rabbitmq.existingSecret")
        check(envs["payment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel.monitoring:4318",
              "tracing: OTEL_EXPORTER_OTLP_ENDPOINT from tracing.endpoint")


def check_images(docs, mode):
    names = set(SERVICES) | {"web", "mongodb", "redis", "mariadb", "rabbitmq", "seed"}
    for where, _, spec in pod_specs(docs):
        for c in containers(spec):
            m = re.fullmatch(r"localhost/roboshop/([a-z]+):0\.1\.0", c["image"])
            check(m and m.group(1) in names, f"{where}/{c['name']}: image {c['image']} is one of make images'")


def main():
    mode, path, root = sys.argv[1:4]
    text = open(path).read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    check_security(docs)
    check_services(docs, root)
    check_policies(docs, mode)
    check_secrets(text, docs, mode)
    check_backends(docs, mode)
    check_images(docs, mode)
    print(f"chart_check {mode}: {passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
