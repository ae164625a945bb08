#!/usr/bin/python3
"""tests/deploy/flows_check.py: checks the firewall rules and unit address lists `deploy/roboshop render DIR` wrote
for every host of an inventory against the shop's topology, written out here a second time on purpose (not read
from the tool): every flow between components on different hosts is allowed on the server's host from exactly the
client's host, and nothing else is (ssh from the admin range, the web tier's 80/443 from anywhere, the monitoring
sources to the services' ports; with a prometheus host: its port from the admin range, and in the monitoring chain
the prometheus host to every service and exporter of each host; with OTLP=ADDR:PORT naming one of the hosts: that
port from every host running services). Each service unit's IPAddressAllow holds loopback, the monitoring sources,
the prometheus and OTLP hosts and the hosts of its clients and dependencies, nothing more.

    flows_check.py DIR ADMIN MONITOR [OTLP]   prints one line per problem and "flows: N hosts, M flows, P problems"
    flows_check.py --pairs COMPONENT...       prints "CLIENT SERVER" for each flow between the components named
                                              (what the live one-host-per-component probe must find open)
"""
import os
import re
import shlex
import sys

# server component -> the components that open connections to it (the shop's call graph and its backends)
FLOWS = {
    "mongodb": ["catalogue", "user"], "redis": ["user", "cart", "payment", "dispatch"],
    "mysql": ["shipping", "ratings"], "rabbitmq": ["payment", "dispatch"],
    "catalogue": ["cart", "ratings", "web"], "user": ["payment", "web"], "cart": ["shipping", "payment", "web"],
    "shipping": ["web"], "ratings": ["web"], "payment": ["web"], "dispatch": [],
    "prometheus": ["web"],  # the operations page on the web host reads its query API
}
# the exporters Prometheus scrapes, on the host of what they watch (RabbitMQ: its own plugin)
EXPORTERS = {"redis": 9121, "mysql": 9104, "web": 9113, "rabbitmq": 15692}
SERVICES = ["catalogue", "user", "cart", "shipping", "ratings", "payment", "dispatch"]
RULE = re.compile(r"^\s*ip6? saddr (\S+) tcp dport (\{[^}]*\}|\d+) accept")
PUBLIC = re.compile(r"^\s*tcp dport (\d+) accept comment \"[^\"]*: public\"")


def plan_of(path):
    plan = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(?:export )?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.rstrip("\n"))
            if m and not m.group(2).startswith("("):
                words = shlex.split(m.group(2))
                plan[m.group(1)] = words[0] if words else ""
    return plan


def ports_of(spec):
    return {int(p) for p in re.findall(r"\d+", spec)}


def pairs(components):
    for server, clients in FLOWS.items():
        for c in clients:
            if server in components and c in components:
                print(c, server)
    return 0


def main():
    if sys.argv[1] == "--pairs":
        return pairs(sys.argv[2:])
    root, admin, monitor = sys.argv[1], sys.argv[2].removesuffix("/32"), sys.argv[3]
    otlp = sys.argv[4].rsplit(":", 1) if len(sys.argv) > 4 else None
    plans = {h: plan_of(os.path.join(root, h, "plan.sh")) for h in sorted(os.listdir(root))}
    host_of, ip_of, port_of = {}, {}, {}
    for h, p in plans.items():
        ip_of[h] = p["HOST_IP"]
        for c in p["HOST_COMPONENTS"].split():
            host_of[c] = h
            if "PORT_" + c in p:
                port_of[c] = int(p["PORT_" + c])
    problems, flows = [], 0
    prom = ip_of[host_of["prometheus"]] if "prometheus" in host_of else None
    otlp_host = [h for h in plans if otlp and ip_of[h] == otlp[0]]
    service_hosts = {ip_of[host_of[s]] for s in SERVICES if s in host_of}
    for h, p in plans.items():
        want = {(admin, 22)}
        if host_of.get("web") == h:
            want_public = {port_of["web"], 443}
        else:
            want_public = set()
        for server, clients in FLOWS.items():
            if host_of.get(server) != h:
                continue
            for c in clients:
                if c in host_of and host_of[c] != h:
                    want.add((ip_of[host_of[c]], port_of[server]))
                    flows += 1
        want_monitor = {(monitor, port_of[s]) for s in SERVICES if host_of.get(s) == h}
        if prom:
            want_monitor |= {(prom, port_of[s]) for s in SERVICES if host_of.get(s) == h}
            want_monitor |= {(prom, p) for c, p in EXPORTERS.items() if host_of.get(c) == h}
        if host_of.get("prometheus") == h:
            want.add((admin, port_of["prometheus"]))
        if prom and host_of.get("web") == h:
            want.add((admin, 9180))  # the operations page
        if otlp_host == [h]:
            want_monitor |= {(ip, int(otlp[1])) for ip in service_hosts}
        got, got_public, got_monitor, chain = set(), set(), set(), None
        with open(os.path.join(root, h, "firewall.nft")) as f:
            for line in f:
                m = re.match(r"^\s*chain (\w+) \{", line)
                if m:
                    chain = m.group(1)
                m = RULE.match(line)
                if m:
                    for port in ports_of(m.group(2)):
                        (got_monitor if chain == "monitoring" else got).add((m.group(1), port))
                m = PUBLIC.match(line)
                if m:
                    got_public.add(int(m.group(1)))
        for what, w, g in (("flow", want, got), ("public port", want_public, got_public),
                           ("monitoring flow", want_monitor, got_monitor)):
            for x in sorted(w - g, key=str):
                problems.append("%s: missing %s %s" % (h, what, x))
            for x in sorted(g - w, key=str):
                problems.append("%s: %s %s is allowed but no component needs it" % (h, what, x))
        for s in SERVICES:
            if host_of.get(s) != h:
                continue
            peers = set(p.get("PEERS_" + s, "").split())
            deps = [d for d, clients in FLOWS.items() if s in clients]
            need = {"127.0.0.0/8", "::1", monitor} | {ip_of[host_of[x]] for x in deps + FLOWS[s] if x in host_of}
            need |= {x for x in (prom, otlp and otlp[0]) if x}
            if peers != need:
                problems.append("%s: %s's IPAddressAllow %s, want %s" % (h, s, sorted(peers), sorted(need)))
    for line in problems:
        print(line)
    print("flows: %d hosts, %d flows between hosts, %d problems" % (len(plans), flows, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
