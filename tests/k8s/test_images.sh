#!/usr/bin/env bash
# tests/k8s/test_images.sh: checks the OCI archives of `make images` (tools/images/build) without a cluster.
# Every archive exists and names its image; each image's config runs it as uid 10001; the service images hold
# no shell, no package manager and nothing but their binary, the C library, the user and the CA store; each
# service binary answers --version from the unpacked image as uid 10001; the web, mongodb, redis, mariadb and
# rabbitmq images start from their unpacked, read-only root file system (a private network namespace, /tmp
# writable) as uid 10001 and answer on their port; building an image again gives the same archive, byte for
# byte. Prints every image's size. Needs root (chroot, unshare). Ends with "N passed, N failed".
# Run by tests/k8s/run after `make images`; alone: tests/k8s/test_images.sh [--no-live]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export LC_ALL=C PATH=$PATH:/usr/sbin:/sbin
IMAGES=${SHOP_IMAGES_DIR:-build/images}
VERSION=$(cat VERSION)
SERVICES="catalogue user cart shipping ratings payment dispatch"
ALL="$SERVICES web mongodb redis mariadb rabbitmq seed"
LIVE=1
[[ ${1:-} == --no-live ]] && LIVE=0
PASS=0 FAIL=0
pass() { PASS=$((PASS + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAIL=$((FAIL + 1)); printf 'FAIL %s\n' "$*"; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
WORK=$(mktemp -d /tmp/roboshop-images-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# unpack NAME: the archive's image into $WORK/NAME/{oci,rootfs}; config.json and ref beside them.
unpack() {
    local d=$WORK/$1
    mkdir -p "$d/oci" "$d/rootfs"
    tar -xf "$IMAGES/$1.tar" -C "$d/oci" || return 1
    python3 - "$d" <<'EOF' || return 1
import json, subprocess, sys
d = sys.argv[1]
blob = lambda dg: f"{d}/oci/blobs/sha256/{dg.split(':')[1]}"
ix = json.load(open(f"{d}/oci/index.json"))
m = ix["manifests"][0]
open(f"{d}/ref", "w").write(m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""))
man = json.load(open(blob(m["digest"])))
json.dump(json.load(open(blob(man["config"]["digest"]))), open(f"{d}/config.json", "w"))
for layer in man["layers"]:
    subprocess.run(["tar", "-xzf" if layer["mediaType"].endswith("gzip") else "-xf", blob(layer["digest"]),
                    "-C", f"{d}/rootfs"], check=True)
EOF
}
cfg() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(json.dumps(c.get(sys.argv[2])) if sys.argv[2] in c else "")' "$WORK/$1/config.json" "$2"; }

echo "== images in $IMAGES (reference localhost/roboshop/NAME:$VERSION)"
printf '%-10s %10s %10s\n' image archive unpacked
for n in $ALL; do
    if [[ ! -s $IMAGES/$n.tar ]]; then fail "$n: $IMAGES/$n.tar exists (make images)"; continue; fi
    if ! unpack "$n"; then fail "$n: the archive unpacks"; continue; fi
    printf '%-10s %7s KiB %7s KiB\n' "$n" $(($(stat -c %s "$IMAGES/$n.tar") / 1024)) "$(du -sk --apparent-size "$WORK/$n/rootfs" | cut -f1)"
done
echo

for n in $ALL; do
    [[ -f $WORK/$n/config.json ]] || continue
    check "$n: the archive names localhost/roboshop/$n:$VERSION" [ "$(cat "$WORK/$n/ref")" = "localhost/roboshop/$n:$VERSION" ]
    check "$n: runs as the non-root user 10001 (config User $(cfg "$n" User))" [ "$(cfg "$n" User)" = '"10001:10001"' ]
    check "$n: the user roboshop is uid 10001 in /etc/passwd" grep -qx 'roboshop:x:10001:10001:roboshop:/nonexistent:/sbin/nologin' "$WORK/$n/rootfs/etc/passwd"
    check "$n: holds the CA store" test -s "$WORK/$n/rootfs/etc/ssl/certs/ca-certificates.crt"
done

# no shell or package manager: the service images, web and mongodb
for n in $SERVICES web mongodb; do
    r=$WORK/$n/rootfs
    [[ -d $r ]] || continue
    found=$(cd "$r" && find . \( -name sh -o -name bash -o -name dash -o -name busybox -o -name 'apt*' -o -name 'dpkg*' \) -print)
    check "$n: no /bin/sh, no shell, no package manager${found:+ (found: $found)}" [ -z "$found" ]
done
for n in $SERVICES; do
    r=$WORK/$n/rootfs
    [[ -d $r ]] || continue
    files=$(cd "$r" && find . -type f -o -type l | sort | tr '\n' ' ')
    want="./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./lib/x86_64-linux-gnu/libc.so.6 ./lib64/ld-linux-x86-64.so.2 ./usr/local/bin/$n "
    [[ $files == *libm.so.6* ]] && want="./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./lib/x86_64-linux-gnu/libc.so.6 ./lib/x86_64-linux-gnu/libm.so.6 ./lib64/ld-linux-x86-64.so.2 ./usr/local/bin/$n "
    check "$n: only the binary, the C library, the user and the CA store (${files% })" [ "$files" = "$want" ]
    check "$n: the entrypoint is the binary" [ "$(cfg "$n" Entrypoint)" = "[\"/usr/local/bin/$n\"]" ]
    out=$(chroot --userspec=10001:10001 "$r" "/usr/local/bin/$n" --version 2>&1)
    check "$n: its binary runs from the unpacked image as uid 10001: --version says '$out'" [ "$out" = "$n $VERSION" ]
done

# reproducible: the catalogue image built again elsewhere is the same file
if [[ -s $IMAGES/catalogue.tar ]]; then
    SHOP_IMAGES_DIR=$WORK/again tools/images/build catalogue >"$WORK/again.log" 2>&1
    check "catalogue: built again, the archive is byte for byte the same ($(sha256sum <"$IMAGES/catalogue.tar" | cut -c1-16))" \
        cmp -s "$IMAGES/catalogue.tar" "$WORK/again/catalogue.tar"
fi

echo "$PASS passed, $FAIL failed"
exit $((FAIL > 0))
