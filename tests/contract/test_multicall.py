"""The multi-call binary (services/roboshop.c, issue 16): the seven services are one binary,
SHOP_BIN_DIR/roboshop, and SHOP_BIN_DIR/<svc> are hard links to it (one inode: the services of one host
share its pages). The service is the program's name, or roboshop's first argument; an unknown name
exits 2 naming it."""
import os
import re
import signal
import subprocess

import pytest
import requests

from conftest import ROOT, closed_port, listener, sanitizer_reports, spawn, url_of, wait_for

SERVICES = ["catalogue", "user", "cart", "shipping", "ratings", "payment", "dispatch"]
BIN = os.path.abspath(os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin")))
MULTI = os.path.join(BIN, "roboshop")
# the bin directories of this run: the one the stack runs, and the plain build the releases are made of
PLAIN = os.path.join(ROOT, "build", "bin")
BIN_DIRS = sorted({BIN} | ({PLAIN} if os.path.exists(os.path.join(PLAIN, "roboshop")) else set()))


def version():
    with open(os.path.join(ROOT, "VERSION")) as f:
        return f.read().strip()


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("bin_dir", BIN_DIRS)
def test_every_service_is_a_hard_link_of_one_binary(bin_dir):
    multi = os.stat(os.path.join(bin_dir, "roboshop"))
    for svc in SERVICES:
        st = os.stat(os.path.join(bin_dir, svc))
        assert (st.st_dev, st.st_ino) == (multi.st_dev, multi.st_ino), "%s/%s is another file" % (bin_dir, svc)
    assert multi.st_nlink >= 1 + len(SERVICES)


def test_every_service_directory_is_in_the_table():
    """A service added under services/ without its row in the dispatcher's table would be a link
    that only says "unknown service"."""
    dirs = sorted(d for d in os.listdir(os.path.join(ROOT, "services"))
                  if os.path.isdir(os.path.join(ROOT, "services", d)))
    p = run([MULTI, "--help"])
    assert p.returncode == 0, p.stderr
    listed = re.search(r"^services: (.*)$", p.stdout, re.M)
    assert listed, p.stdout
    assert sorted(listed.group(1).split()) == dirs
    assert listed.group(1).split() == SERVICES


def test_roboshop_version_lists_the_services():
    p = run([MULTI, "--version"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == "roboshop %s\nservices: %s\n" % (version(), " ".join(SERVICES))


@pytest.mark.parametrize("svc", SERVICES)
def test_each_name_is_its_service_version(svc, tmp_path):
    """--version names the service whichever way it is called: its hard link, a symbolic link of
    its name (argv[0] is the link's name), the name make install gives it, or roboshop's argument."""
    want = "%s %s\n" % (svc, version())
    os.symlink(MULTI, str(tmp_path / svc))
    os.symlink(MULTI, str(tmp_path / ("roboshop-" + svc)))
    for argv in ([os.path.join(BIN, svc), "--version"], [str(tmp_path / svc), "--version"],
                 [str(tmp_path / ("roboshop-" + svc)), "--version"], [MULTI, svc, "--version"]):
        p = run(argv)
        assert (p.returncode, p.stdout) == (0, want), (argv, p.stdout, p.stderr[-500:])


@pytest.mark.parametrize("form", ["link", "argument"])
@pytest.mark.parametrize("svc", SERVICES)
def test_each_name_starts_its_service(svc, form, tmp_path):
    """The process started as SHOP_BIN_DIR/<svc>, or as `roboshop <svc>`, serves that service: its
    /metrics says shop_build_info{service="<svc>"}. (dispatch gets a broker port that refuses, so
    this second consumer takes no order of the stack's; it answers /metrics all the same.)"""
    argv = [os.path.join(BIN, svc)] if form == "link" else [MULTI, svc]
    env = dict(os.environ)
    refused = closed_port()
    if svc == "dispatch":
        env.update(AMQP_HOST="127.0.0.1", AMQP_PORT=str(refused.getsockname()[1]))
    log = tmp_path / "out.log"
    with refused, listener() as sock, open(str(log), "wb") as out:
        proc = spawn(argv, sock, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = url_of(sock)

        def metrics():
            try:
                r = requests.get(url + "/metrics", timeout=10)
                return r.text if r.status_code == 200 else None
            except requests.RequestException:
                return None
        try:
            text = None
            assert wait_for(lambda: proc.poll() is not None or metrics(), 60)
            text = metrics()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(60)
    said = log.read_text(errors="replace")[-800:]
    assert text, said
    m = re.search(r'^shop_build_info\{service="([a-z]+)",version="([^"]+)"\} 1$', text, re.M)
    assert m and m.groups() == (svc, version()), text[-500:]
    assert rc == 0, said
    assert not sanitizer_reports(proc.pid)


def test_unknown_name_exits_2_naming_it(tmp_path):
    """A link of another name, and an unknown first argument: exit 2 with a line naming it and the
    services; roboshop alone prints its usage and exits 2."""
    odd = tmp_path / "catalogues"
    os.symlink(MULTI, str(odd))
    for argv, name in (([str(odd)], "catalogues"), ([str(odd), "--version"], "catalogues"),
                       ([MULTI, "nosuch"], "nosuch"), ([MULTI, "nosuch", "--version"], "nosuch")):
        p = run(argv)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        assert p.stdout == ""
        assert "roboshop: unknown service '%s'; one of: %s\n" % (name, " ".join(SERVICES)) in p.stderr, p.stderr
    p = run([MULTI])
    assert p.returncode == 2 and "usage: roboshop SERVICE" in p.stderr, p.stderr
