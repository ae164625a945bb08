"""The rules of deploy/monitoring (promtool check and unit tests) and the Grafana dashboard, offline."""
import glob
import json
import os
import subprocess

import yaml

from conftest import MON

RULES = sorted(glob.glob(os.path.join(MON, "rules", "*.yml")))
TESTS = sorted(glob.glob(os.path.join(MON, "tests", "*.test.yml")))
DASHBOARD = os.path.join(MON, "grafana", "roboshop.json")


def alert_names():
    names = []
    for f in RULES:
        for group in yaml.safe_load(open(f))["groups"]:
            names += [r["alert"] for r in group["rules"] if "alert" in r]
    return names


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    assert RULES
    r = promtool("check", "rules", *RULES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_test_rules():
    assert TESTS
    r = subprocess.run(["promtool", "test", "rules", *[os.path.basename(t) for t in TESTS]],
                       capture_output=True, text=True, timeout=120, cwd=os.path.join(MON, "tests"))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_alert_has_a_firing_unit_test():
    fired = set()
    for t in TESTS:
        for case in yaml.safe_load(open(t))["tests"]:
            for a in case.get("alert_rule_test", []):
                if a.get("exp_alerts"):
                    fired.add(a["alertname"])
    missing = [a for a in alert_names() if a not in fired]
    assert not missing, "alerts without a unit test that makes them fire: %s" % missing
    assert len(alert_names()) == len(set(alert_names())), "an alert name is used twice"


def test_dashboard_covers_every_alert():
    d = json.load(open(DASHBOARD))
    panels = [p for p in d["panels"] if p["type"] != "row"]
    assert d["uid"] and panels
    for p in panels:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
    titles = " ".join(p["title"] for p in panels)
    missing = [a for a in alert_names() if a not in titles]
    assert not missing, "alerts without a dashboard panel: %s" % missing
