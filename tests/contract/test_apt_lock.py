"""Package installs wait for a held dpkg lock instead of failing (issue 16: on a fresh cloud machine unattended
upgrades hold it in the first minutes). tools/apt-get-wait is the one door of every apt-get in the project; here a
helper process holds /var/lib/dpkg/lock-frontend the way apt does (an fcntl write lock), and installing a package
that is already there must wait, say whom it waits for, and succeed once the lock is released. Needs no stack."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT, wait_for

WAIT = os.path.join(ROOT, "tools", "apt-get-wait")
FRONTEND = "/var/lib/dpkg/lock-frontend"
# an installed package; --no-upgrade: never change the machine, even when a newer version is available
INSTALL = ["install", "-y", "-qq", "--no-upgrade", "coreutils"]
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")

# Holds the lock like apt (lockf = fcntl F_SETLKW), says "held", releases on a line on stdin (or after 120 s).
HOLDER = r"""
import fcntl, select, sys
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX)
print("held", flush=True)
select.select([sys.stdin], [], [], 120)
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("apt-get") or not os.path.exists(FRONTEND),
    reason="needs root on a Debian-like machine (apt-get and the dpkg lock)")


@pytest.fixture
def held_lock():
    """Holds the dpkg frontend lock until the test calls the returned release(); never leaves it held."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, FRONTEND], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"

        def release():
            holder.stdin.write("release\n")
            holder.stdin.flush()
            holder.wait(timeout=30)

        yield holder.pid, release
    finally:
        holder.kill()
        holder.wait()


def run(cmd, **kw):
    return subprocess.run(cmd, env=kw.pop("env", ENV), capture_output=True, text=True, timeout=300, **kw)


def test_install_waits_for_held_dpkg_lock(held_lock):
    pid, release = held_lock
    # apt-get itself sees the lock as held: alone it fails at once
    plain = run(["apt-get", *INSTALL])
    assert plain.returncode != 0 and "Could not get lock" in plain.stderr, plain.stderr

    # bounded: with SHOP_APT_WAIT=1 it gives up, naming the holder
    bounded = run([WAIT, *INSTALL], env=dict(ENV, SHOP_APT_WAIT="1"))
    assert bounded.returncode != 0
    assert "still held by python3 (pid %d)" % pid in bounded.stderr, bounded.stderr

    # default bound: waits while the lock is held, says so once, and installs once it is released
    with tempfile.TemporaryFile("w+") as err:
        waiter = subprocess.Popen([WAIT, *INSTALL], env=ENV, stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            said = "waiting for the dpkg lock held by python3 (pid %d)" % pid

            def waiting():
                err.seek(0)
                return said in err.read()

            assert wait_for(waiting, timeout=60), "no waiting message"
            assert waiter.poll() is None, "apt-get-wait ended while the lock was held"
            release()
            assert waiter.wait(timeout=300) == 0
        finally:
            waiter.kill()
            waiter.wait()
        err.seek(0)
        out = err.read()
    assert out.count("apt-get-wait: waiting") == 1, out
    assert "Could not get lock" not in out, out
