"""The local stack (`make run`, the test stack) listens on loopback only (issue 14): every TCP socket
in LISTEN state held by a process the stack started -- the seven services, nginx, FerretDB, Redis,
MariaDB, RabbitMQ (beam.smp and its children) and its epmd -- is bound to a loopback address, so a
laptop on a shared network serves nothing to its neighbours.

The processes are this stack's own, never another checkout's: the pids in $SHOP_STATE_DIR/run/*.pid,
their descendants, the other members of their sessions (a daemon that forked away from its parent
keeps its session), and any process whose environment names this SHOP_STATE_DIR. Their listening
sockets are found through /proc/<pid>/fd and /proc/net/tcp{,6}. rabbitmqctl, which the stack and
the tests run now and then, starts an Erlang node of its own with a listener in the stack's control
port range while it runs: that one is caught in the act.
"""
import glob
import ipaddress
import os
import re
import socket
import struct
import subprocess
import threading

import pytest
import requests

from conftest import ROOT, rabbitmqctl, stop_service, wait_for

SERVICES = ["catalogue", "user", "cart", "shipping", "ratings", "payment", "dispatch"]
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def state_dir():
    state = os.environ.get("SHOP_STATE_DIR")
    if not state:
        pytest.skip("SHOP_STATE_DIR is unset: not the local stack (run through tests/run)")
    return os.path.abspath(state)


def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:  # the process ended meanwhile, or the file is gone
        return None


def stat_fields(pid):
    """(ppid, session id) of a live process, or None (gone, or a zombie)."""
    text = read("/proc/%d/stat" % pid)
    if not text:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[3])


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def recorded_pids(state):
    """{component: pid} for each pid file of the stack whose process is alive."""
    out = {}
    for path in sorted(glob.glob(os.path.join(state, "run", "*.pid"))):
        text = (read(path) or "").strip()
        if text.isdigit() and stat_fields(int(text)):
            out[os.path.basename(path)[:-4]] = int(text)
    return out


def adopt_descendants(owner, stats):
    """Gives every descendant of an owned process (however deep) its ancestor's component."""
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in stats.items():
            if pid not in owner and ppid in owner:
                owner[pid] = owner[ppid]
                grew = True


def ancestors_of_self(stats):
    """This test's process and its ancestors (the runner's shells carry SHOP_STATE_DIR too)."""
    pid, out = os.getpid(), set()
    while pid in stats and pid not in out:
        out.add(pid)
        pid = stats[pid][0]
    return out


def stack_processes(state, roots):
    """{pid: component} of every process that belongs to this stack."""
    stats = {pid: s for pid in all_pids() if (s := stat_fields(pid))}
    owner = {pid: comp for comp, pid in roots.items()}
    adopt_descendants(owner, stats)
    sessions = {stats[pid][1]: comp for comp, pid in roots.items() if pid in stats}
    marker = ("SHOP_STATE_DIR=" + state).encode()
    runner = ancestors_of_self(stats)
    for pid, (_, sid) in stats.items():
        if pid in owner or pid in runner:
            continue
        if sid in sessions:
            owner[pid] = sessions[sid] + " (session)"
        elif marker in (read("/proc/%d/environ" % pid, "rb") or b"").split(b"\0"):
            owner[pid] = "(environment)"
    adopt_descendants(owner, stats)
    return owner


def socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def decode_address(hexaddr):
    """/proc/net/tcp's address (32-bit words in host byte order) as an ip_address."""
    words = [struct.pack("=I", int(hexaddr[i:i + 8], 16)) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(words)
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return ipaddress.ip_address(socket.inet_ntop(family, raw))


def listening_sockets():
    """{inode: (address, port)} of every TCP socket in LISTEN state in this network namespace."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (read(table) or "").splitlines()[1:]:
            f = line.split()
            if f[3] != LISTEN:
                continue
            addr, port = f[1].split(":")
            out[f[9]] = (decode_address(addr), int(port, 16))
    return out


def is_loopback(ip):
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def comm(pid):
    return (read("/proc/%d/comm" % pid) or "?").strip()


def test_everything_the_stack_started_listens_on_loopback_only():
    state = state_dir()
    roots = recorded_pids(state)
    missing = [s for s in SERVICES if s not in roots]
    assert not missing, "services without a live pid in %s/run: %s" % (state, missing)
    owner = stack_processes(state, roots)
    sockets = listening_sockets()
    listeners = {}  # component -> [(comm, pid, address, port)]
    for pid, comp in owner.items():
        for inode in socket_inodes(pid) & sockets.keys():
            listeners.setdefault(comp, []).append((comm(pid), pid) + sockets[inode])

    # every recorded component listens somewhere: nothing was overlooked, the test cannot pass empty
    silent = sorted(set(roots) - set(listeners))
    assert not silent, "no listening socket found for %s" % silent
    exposed = sorted("%s: %s (pid %d) listens on %s port %d" % ((comp,) + entry)
                     for comp, entries in listeners.items() for entry in entries
                     if not is_loopback(entry[2]))
    assert not exposed, "listening beyond loopback:\n" + "\n".join(exposed)


@pytest.mark.parametrize("name", SERVICES)
def test_service_listens_on_its_port_at_loopback(name):
    """Each service holds exactly its configured port, on 127.0.0.1 (the stack's SHOP_BIND)."""
    state = state_dir()
    pid = recorded_pids(state).get(name)
    assert pid, "%s has no live pid in %s/run" % (name, state)
    sockets = listening_sockets()
    held = sorted({sockets[i] for i in socket_inodes(pid) & sockets.keys()})
    port = int(os.environ["%s_PORT" % name.upper()])
    assert held == [(ipaddress.ip_address("127.0.0.1"), port)], held


def ctl_port_range():
    base = int(os.environ.get("SHOP_PORT_BASE", "0"))
    with open(os.path.join(ROOT, "deploy", "local", "ports.env")) as f:
        offsets = dict(re.findall(r"^PORT_OFFSET_(RABBITMQ_CTL_M[AI][XN])=(\d+)$", f.read(), re.M))
    return base + int(offsets["RABBITMQ_CTL_MIN"]), base + int(offsets["RABBITMQ_CTL_MAX"])


def test_rabbitmqctl_node_listens_on_loopback_only():
    """rabbitmqctl's own Erlang node (the stack's start-up and the tests' broker checks run it, with
    the stack's rabbitmq-env.conf) listens on loopback only while it runs. A call is kept running
    until its listener has been looked at: the broker waits for a file this test creates."""
    state = state_dir()
    low, high = ctl_port_range()
    release = os.path.join(state, "run", "listen-test-release")
    if os.path.exists(release):
        os.unlink(release)
    expr = ('F = fun W(0) -> timeout; W(N) -> case filelib:is_file("%s") of true -> ok; '
            'false -> timer:sleep(100), W(N - 1) end end, F(600).' % release)
    result = []
    call = threading.Thread(target=lambda: result.append(rabbitmqctl("eval", expr)), daemon=True)
    call.start()
    try:
        held = wait_for(lambda: [a for a in listening_sockets().values() if low <= a[1] <= high], 45)
    finally:
        open(release, "w").close()
        call.join(70)
    os.unlink(release)
    assert result == ["ok\n"], "the rabbitmqctl call did not end well: %r" % result
    assert held, "no rabbitmqctl listener seen on ports %d-%d" % (low, high)
    exposed = ["%s port %d" % a for a in held if not is_loopback(a[0])]
    assert not exposed, "rabbitmqctl's node listens beyond loopback: %s" % exposed


# ---- SHOP_BIND itself (libshop: every service's HTTP listener) -----------------------------------------

def binary(name):
    return os.path.join(os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin")), name)


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1:8080", "127.0.0.256", "[::1]:80"])
def test_bad_bind_address_stops_the_service_naming_it(value):
    """SHOP_BIND takes an address literal only: anything else stops the service at start (exit 1)
    with one line naming the variable, before it listens anywhere."""
    # port 0: should it start after all, it listens on a port the kernel gave it, nobody's
    env = dict(os.environ, SHOP_BIND=value, CATALOGUE_SERVER_PORT="0")
    p = subprocess.run([binary("catalogue")], env=env, capture_output=True, timeout=20)
    assert p.returncode == 1, p.stderr.decode(errors="replace")[-500:]
    lines = [line for line in p.stderr.decode(errors="replace").splitlines() if "config: SHOP_BIND=" in line]
    assert len(lines) == 1 and value in lines[0], p.stderr.decode(errors="replace")[-500:]


def test_ipv6_bind_address_listens_there_only():
    """SHOP_BIND=::1 puts the listener on the IPv6 loopback alone: it answers there, and nothing of
    the process listens on 127.0.0.1 or anywhere else. The service binds port 0 (any free port)
    itself, and the test reads the port it got from the process's sockets: nothing is probed."""
    state_dir()
    env = dict(os.environ, SHOP_BIND="::1", CATALOGUE_SERVER_PORT="0")
    proc = subprocess.Popen([binary("catalogue")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def held():
        sockets = listening_sockets()
        return sorted({sockets[i] for i in socket_inodes(proc.pid) & sockets.keys()})

    def healthy(url):
        try:
            return requests.get(url + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None  # died: stop waiting
    try:
        assert wait_for(lambda: held() or proc.poll() is not None, 30) and proc.poll() is None, \
            "catalogue exited with %s before it listened" % proc.poll()
        port = held()[0][1]
        assert port != 0
        assert wait_for(lambda: healthy("http://[::1]:%d" % port), 30) and proc.poll() is None
        assert held() == [(ipaddress.ip_address("::1"), port)], held()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop_service(proc)
