#!/usr/bin/python3
"""The chart's NetworkPolicies, checked as rendered (tests/k8s/run): the test cluster's bridge CNI does not enforce
policies, so instead of sending a forbidden packet this reads `helm template` output and works out, for every pair
of the chart's workloads and for the world outside, whether the policies let a connection through to the
destination's port. Exactly the shop's flows must be allowed: each one, and nothing else.

The shop's flows are not taken from the chart: each service's own configuration (deploy/systemd/env/*.env, the
hosts it is told to reach) gives them, plus the front door (web reaches every service but dispatch; only web is
reachable from outside the shop) and the seed Jobs (seed-mongo loads MongoDB, seed-mysql MariaDB).

Usage: policies.py RENDERED.yaml   (prints the allowed flows; exit status 0 when they are exactly the shop's)
"""
import glob
import os
import re
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PORTS = {"mongodb": 27017, "redis": 6379, "mysql": 3306, "rabbitmq": 5672}
OUTSIDE = "(outside)"


def expected_flows():
    flows = set()
    for f in glob.glob(os.path.join(ROOT, "deploy/systemd/env/*.env")):
        src = os.path.basename(f)[:-4]
        for dst in re.findall(r"\b([a-z]+)\.roboshop\.internal\b", open(f).read()):
            if dst != src:
                flows.add((src, dst))
    flows |= {("web", s) for s in ("catalogue", "user", "cart", "shipping", "ratings", "payment")}
    flows |= {("seed-mongo", "mongodb"), ("seed-mysql", "mysql"), (OUTSIDE, "web")}
    return flows


def workloads(docs):
    """component name -> its pods' labels, for every Deployment, StatefulSet and Job."""
    out = {}
    for d in docs:
        if d.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            out[labels.get("app.kubernetes.io/component", d["metadata"]["name"])] = labels
    return out


def selects(selector, labels):
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        has, vals = e["key"] in labels, e.get("values") or []
        op = e["operator"]
        if (op == "In" and labels.get(e["key"]) not in vals) or (op == "NotIn" and labels.get(e["key"]) in vals) \
                or (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def peer_matches(peer, other):
    """Does a NetworkPolicyPeer cover `other` (a workload's labels, or OUTSIDE for anything beyond the release)?"""
    if other == OUTSIDE:
        return "ipBlock" in peer or "namespaceSelector" in peer
    if "ipBlock" in peer:
        return False  # pods of the release are reached by their pod addresses, not by a policy's ipBlock
    if "namespaceSelector" in peer and peer["namespaceSelector"] != {}:
        return False  # another namespace: not the release's pods
    return selects(peer.get("podSelector", {}), other)


def port_matches(ports, port):
    if not ports:
        return True
    for p in ports:
        if "port" not in p or p["port"] == port or (
                isinstance(p["port"], int) and p["port"] <= port <= p.get("endPort", p["port"])):
            return True
    return False


def direction_allows(policies, kind, own, other, port):
    """kind Ingress: `own` receives from `other`; Egress: `own` sends to `other` on port."""
    mine = [p for p in policies if kind in p["spec"].get("policyTypes", ["Ingress"]) and own != OUTSIDE
            and selects(p["spec"].get("podSelector", {}), own)]
    if own == OUTSIDE or not mine:
        return True  # no policy of this direction selects it: everything goes
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for p in mine:
        for rule in p["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(peer_matches(x, other) for x in peers)) and port_matches(rule.get("ports"), port):
                return True
    return False


def main():
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    work = workloads(docs)
    if not policies:
        print("no NetworkPolicy rendered")
        return 1
    allowed = set()
    for dst, dlabels in work.items():
        port = PORTS.get(dst, 8080)
        for src in list(work) + [OUTSIDE]:
            slabels = work.get(src, OUTSIDE)
            if src != dst and direction_allows(policies, "Ingress", dlabels, slabels, port) and \
                    direction_allows(policies, "Egress", slabels, dlabels, port):
                allowed.add((src, dst))
    want = {f for f in expected_flows() if f[1] in work and (f[0] in work or f[0] == OUTSIDE)}
    print("  %d NetworkPolicies over %d workloads; flows allowed:" % (len(policies), len(work)))
    for s, d in sorted(allowed):
        print("    %-12s -> %s:%d" % (s, d, PORTS.get(d, 8080)))
    missing, extra = want - allowed, allowed - want
    for s, d in sorted(missing):
        print("  MISSING: %s -> %s is a flow of the shop but the policies refuse it" % (s, d))
    for s, d in sorted(extra):
        print("  EXTRA: %s -> %s is no flow of the shop but the policies allow it" % (s, d))
    return 1 if missing or extra else 0


if __name__ == "__main__":
    sys.exit(main())
