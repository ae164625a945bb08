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
conf = json.load(open(blob(man["config"]["digest"])))
json.dump(conf, open(f"{d}/config.json", "w"))
c = conf.get("config", {})
open(f"{d}/argv", "w").write("".join(a + "\0" for a in (c.get("Entrypoint") or []) + (c.get("Cmd") or [])))
open(f"{d}/env", "w").write("".join(e + "\0" for e in c.get("Env") or []))
for layer in man["layers"]:
    subprocess.run(["tar", "-xzf" if layer["mediaType"].endswith("gzip") else "-xf", blob(layer["digest"]),
                    "-C", f"{d}/rootfs"], check=True)
EOF
}
cfg() { /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(json.dumps(c.get(sys.argv[2])) if sys.argv[2] in c else "")' "$WORK/$1/config.json" "$2"; }

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

# live: the servers start from their read-only images and answer; the seed Jobs load them, twice.
live_checks() {
    . tests/k8s/imagerun.bash
    ip link set lo up
    mount --make-rprivate /
    pass() { printf 'ok   %s\n' "$*"; }
    fail() { printf 'FAIL %s\n' "$*"; }
    check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
    code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:8080$1"; }
    mongo() { /usr/bin/python3 -c 'import pymongo,sys; c=pymongo.MongoClient("mongodb://127.0.0.1:27017/", serverSelectionTimeoutMS=2000); print(eval(sys.argv[1]))' "$1"; }
    sql() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P3306 "$@"; }
    redis_ping() { exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 5 line <&3 && [[ $line == +PONG* ]]; }

    start web
    check "web: nginx serves the storefront from the read-only image as uid 10001 on 8080" waitfor 30 eval '[[ $(code /) == 200 ]]'
    check "web: the gateway is closed (/api/catalogue/health is the gateway's 404)" eval '[[ $(code /api/catalogue/health) == 404 ]]'
    check "web: an allowed call goes to the Service name catalogue:8080 (nothing there: 502)" eval '[[ $(code /api/catalogue/products) == 502 ]]'
    check "web: an id-owning call asks the user service first (auth_request; nothing there: 5xx)" eval '[[ $(code /api/cart/cart/x) == 50? ]]'

    start redis
    check "redis: answers PING on 6379 (read-only image, uid 10001, data in /data)" waitfor 30 redis_ping

    start mongodb
    check "mongodb: FerretDB answers ping on 27017 (read-only image, uid 10001, SQLite in /data)" waitfor 60 mongo 'c.admin.command("ping")["ok"]'
    run seed MONGO_URL=mongodb://127.0.0.1:27017/ -- mongo && run seed MONGO_URL=mongodb://127.0.0.1:27017/ -- mongo
    check "seed mongo (twice): $(mongo 'c.catalogue.products.count_documents({})' 2>/dev/null) products, $(mongo 'c.users.users.count_documents({})' 2>/dev/null) users" \
        eval '(( $(mongo "c.catalogue.products.count_documents({})") == $(grep -o "\"sku\"" schema/mongo/catalogue.json | wc -l) ))'

    start catalogue MONGO_URL=mongodb://127.0.0.1:27017/catalogue CATALOGUE_SERVER_PORT=8081
    products() { curl -s --max-time 5 http://127.0.0.1:8081/products | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
    check "catalogue: the service image serves the seeded products from the mongodb image ($(waitfor 30 products; products 2>/dev/null) products)" \
        eval '(( $(products) == $(grep -o "\"sku\"" schema/mongo/catalogue.json | wc -l) ))'

    start mariadb MARIADB_ROOT_PASSWORD='r00t"s \pw'"'"
    check "mariadb: root logs in over TCP with MARIADB_ROOT_PASSWORD (read-only image, uid 10001, data in /data)" \
        waitfor 90 sql -uroot "-pr00t\"s \\pw'" -e 'SELECT 1'
    run seed DB_HOST=127.0.0.1 MYSQL_ROOT_PASSWORD='r00t"s \pw'"'" SHIPPING_DB_PASSWORD=ship-pw -- mysql &&
        run seed DB_HOST=127.0.0.1 MYSQL_ROOT_PASSWORD='r00t"s \pw'"'" SHIPPING_DB_PASSWORD=ship-pw -- mysql
    n=$(sql -ushipping -pship-pw -N -B -e 'SELECT COUNT(*) FROM cities.codes' 2>/dev/null)
    check "seed mysql (twice): shipping logs in with SHIPPING_DB_PASSWORD and sees ${n:-no} codes" eval '(( ${n:-0} > 0 ))'
    check "seed mysql: the ratings table exists for the ratings user" sql -uratings -piloveit -e 'SELECT COUNT(*) FROM ratings.ratings'

    start rabbitmq AMQP_USER=shop AMQP_PASS=s3cret
    check "rabbitmq: the AMQP_USER logs in on 5672 (read-only image, uid 10001, mnesia in /data)" waitfor 120 /usr/bin/python3 -c '
import pika
pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672, "/", pika.PlainCredentials("shop", "s3cret"))).close()'
    stop_all
}
if ((LIVE)); then
    if [[ $(id -u) != 0 ]]; then
        fail "live checks need root (unshare, chroot, mount); run with --no-live to skip them"
    else
        export WORK
        export -f live_checks
        out=$(unshare --mount --net --fork bash -c live_checks 2>&1)
        printf '%s\n' "$out" | grep -E '^(ok|FAIL) '
        PASS=$((PASS + $(grep -c '^ok ' <<<"$out"))) FAIL=$((FAIL + $(grep -c '^FAIL ' <<<"$out")))
        if grep -q '^FAIL ' <<<"$out"; then
            for n in web redis mongodb seed catalogue mariadb rabbitmq; do
                [[ -s $WORK/$n.log ]] && { echo "--- $n.log (last lines)"; tail -n 15 "$WORK/$n.log"; }
            done
        fi
    fi
fi

echo "$PASS passed, $FAIL failed"
exit $((FAIL > 0))
