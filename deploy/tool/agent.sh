#!/usr/bin/env bash
# deploy/tool/agent.sh: the part of deploy/roboshop that runs ON a host (as root, shipped over SSH with the
# host's staged files). It converges one component at a time and counts what it changed.
#   agent.sh prepare              hostname, packages, user, directories for every component of this host
#   agent.sh apply COMPONENT      mongodb redis mysql rabbitmq mongodata mysqldata <service> web
#   agent.sh redeploy SVC VERSION zero-downtime switch of a service to another release (canary, handover, rollback)
#   agent.sh doctor | status      checks as an instructor would / one line per component
# Every change prints "changed: <what>"; the last line is "CHANGES <n>". The plan (what this host runs, ports,
# versions, addresses) is $STAGE/plan.sh, written by deploy/roboshop.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STAGE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$STAGE/plan.sh"

OPT=/opt/roboshop
ETC=/etc/roboshop
UNITS=/etc/systemd/system
CHANGES=0
PROBLEMS=0
KEEP_RELEASES=${KEEP_RELEASES:-3}
DRAIN_WAIT=${SHOP_DRAIN_WAIT:-30}

say() { printf '%s: %s\n' "$HOST_NAME" "$*"; }
changed() { CHANGES=$((CHANGES + 1)); printf 'changed: %s: %s\n' "$HOST_NAME" "$*"; }
die() { printf 'error: %s: %s\n' "$HOST_NAME" "$*" >&2; echo "CHANGES $CHANGES"; exit 1; }
finish() { echo "CHANGES $CHANGES"; }
is_service() { [[ " $ALL_SERVICES " == *" $1 "* ]]; }
health_path() { if [[ $1 == ratings ]]; then echo /_health; else echo /health; fi; }
port_of() { local v="PORT_$1"; echo "${!v}"; }
version_of() { local v="VERSION_$1"; echo "${!v}"; }
# Variables naming the listen port of each service (all aliases, so a canary moves whichever one it reads).
port_vars() {
    case $1 in
        shipping) echo "SHIPPING_SERVER_PORT SERVER_PORT" ;;
        payment) echo "SHOP_PAYMENT_PORT PAYMENT_SERVER_PORT" ;;
        *) echo "${1^^}_SERVER_PORT" ;;
    esac
}

# ---- small building blocks ---------------------------------------------------------------------------------
# put SRC DST MODE: install a file when its content or mode differs. Returns 0 when it changed something.
put() {
    local src=$1 dst=$2 mode=$3
    if [[ -f $dst ]] && cmp -s "$src" "$dst" && [[ $(stat -c %a "$dst") == "${mode#0}" ]]; then return 1; fi
    mkdir -p "$(dirname "$dst")"
    install -m "$mode" "$src" "$dst.roboshop-new"
    mv -f "$dst.roboshop-new" "$dst"
    changed "file $dst"
    return 0
}
# put_text DST MODE <<< text
put_text() {
    local tmp rc=0
    tmp=$(mktemp)
    cat >"$tmp"
    put "$tmp" "$1" "$2" || rc=1
    rm -f "$tmp"
    return $rc
}
APT_UPDATED=0
pkg_ensure() {
    local p missing=()
    for p; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    # apt-get-wait (tools/apt-get-wait, staged next to this script) waits for a dpkg lock held by unattended upgrades
    local apt=(bash "$STAGE/apt-get-wait")
    if ((APT_UPDATED == 0)); then "${apt[@]}" update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
    say "installing ${missing[*]}"
    "${apt[@]}" --log /tmp/roboshop-apt.log install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
        "${missing[@]}" ||
        { tail -n 20 /tmp/roboshop-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
    changed "packages ${missing[*]}"
}
unit_enable() { systemctl is-enabled -q "$1" 2>/dev/null || { systemctl enable -q "$1" 2>/dev/null; changed "enabled $1"; }; }
unit_start() { systemctl is-active -q "$1" || { systemctl start "$1" || die "$1 did not start: $(journal "$1")"; changed "started $1"; }; }
journal() { journalctl -u "$1" -p warning -n 4 --no-pager -o cat 2>/dev/null | tr '\n' '|' || true; }
daemon_reload() { systemctl daemon-reload; }
port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
wait_for() { # wait_for SECONDS CMD...
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.3; done
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true; }
# Through the web host's closed gateway (D20) only the shop's public calls reach a service (its /health is 404
# there). web_probe SVC PORT: "ok" when SVC answered a harmless public call through nginx on PORT, else what came
# back. cart and payment have no public read that answers 200 without a cart: their own 4xx (an unknown cart, a
# non-JSON pay body that places nothing) proves the upstream answered; the gateway's "no such route" does not.
web_probe() {
    local svc=$1 base="http://127.0.0.1:$2" out code body
    local -a req
    case $svc in
        catalogue) req=("$base/api/catalogue/categories") ;;
        user) req=("$base/api/user/uniqueid") ;;
        cart) req=("$base/api/cart/cart/doctor-probe") ;;
        shipping) req=("$base/api/shipping/codes") ;;
        payment) req=(-X POST -H 'Content-Type: text/plain' --data-binary x "$base/api/payment/pay/doctor-probe") ;;
        ratings) req=("$base/api/ratings/api/fetch/Watson") ;;
        *) echo "no probe for $svc"; return ;;
    esac
    out=$(curl -s --max-time 3 -w '\n%{http_code}' "${req[@]}" 2>/dev/null) || true
    code=${out##*$'\n'} body=${out%$'\n'*}
    case $svc:$code in
        cart:4[0-9][0-9] | payment:4[0-9][0-9]) [[ $body != "no such route" ]] && { echo ok; return; } ;;
        *:200) echo ok; return ;;
    esac
    echo "${code:-no answer}${body:+ ${body:0:60}}"
}
healthy() { [[ $(http_code "http://127.0.0.1:$2$(health_path "$1")") == 200 ]]; }
# The version the process on PORT reports in /metrics (shop_build_info{service,version}).
served_version() {
    curl -s --max-time 3 "http://127.0.0.1:$2/metrics" 2>/dev/null |
        sed -n "s/^shop_build_info{.*version=\"\([^\"]*\)\".*/\1/p" | head -n 1
}
tcp_open() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# ---- prepare: what every component of this host needs before the ordered steps -----------------------------
ensure_hostname() {
    local h
    h=$(hostname)
    getent hosts "$h" >/dev/null && return 0
    echo "127.0.1.1 $h" >>/etc/hosts
    changed "/etc/hosts: $h resolves (RabbitMQ's node name needs it)"
}

cmd_prepare() {
    ensure_hostname
    # shellcheck disable=SC2086
    pkg_ensure $PACKAGES
    if [[ -n $HOST_SERVICES ]]; then
        if ! id roboshop >/dev/null 2>&1; then
            useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
                --comment "roboshop system user" roboshop
            changed "user roboshop"
        fi
        local d
        for d in "$OPT" "$OPT/releases" "$OPT/current" "$OPT/next"; do
            [[ -d $d ]] || { mkdir -p "$d"; changed "directory $d"; }
        done
    fi
    [[ -d $ETC ]] || { install -d -m 0755 "$ETC"; changed "directory $ETC"; }
    finish
}

# ---- backends -------------------------------------------------------------------------------------------------
# Unpacks a zip into DIR when the zip's checksum differs from the one recorded there. Returns 0 on change.
unpack() { # unpack ZIP DIR [quiet]
    local zip=$1 dir=$2 quiet=${3:-} sum
    sum=$(sha256sum "$zip" | cut -d' ' -f1)
    [[ -f $dir/.zip.sha256 && $(<"$dir/.zip.sha256") == "$sum" ]] && return 1
    rm -rf "$dir.new" && mkdir -p "$dir.new"
    unzip -q -o "$zip" -d "$dir.new"
    echo "$sum" >"$dir.new/.zip.sha256"
    rm -rf "$dir.old"; [[ -e $dir ]] && mv "$dir" "$dir.old"
    mv "$dir.new" "$dir"; rm -rf "$dir.old"
    [[ -n $quiet ]] || changed "unpacked $(basename "$zip") into $dir"
    return 0
}

apply_mongodb() {
    local p restart=0
    p=$(port_of mongodb)
    unpack "$STAGE/files/ferretdb.zip" "$OPT/ferretdb" && restart=1
    put "$OPT/ferretdb/ferretdb.service" "$UNITS/ferretdb.service" 0644 && restart=1
    put_text "$ETC/ferretdb.env" 0644 <<<"FERRETDB_LISTEN=0.0.0.0:$p" && restart=1
    ((restart)) && daemon_reload
    unit_enable ferretdb.service
    if ((restart)) && systemctl is-active -q ferretdb.service; then systemctl restart ferretdb.service; changed "restarted ferretdb"; fi
    unit_start ferretdb.service
    wait_for 30 tcp_open 127.0.0.1 "$p" || die "FerretDB does not answer on $p: $(journal ferretdb)"
    finish
}

apply_redis() {
    local p restart=0
    p=$(port_of redis)
    put_text /etc/redis/roboshop.conf 0644 <<EOF && restart=1
# RoboShop (deploy/roboshop): reachable from the application hosts (the course's bind/protected-mode edit).
bind 0.0.0.0 -::1
protected-mode no
port $p
EOF
    if ! grep -qx 'include /etc/redis/roboshop.conf' /etc/redis/redis.conf; then
        echo 'include /etc/redis/roboshop.conf' >>/etc/redis/redis.conf
        changed "/etc/redis/redis.conf includes roboshop.conf"; restart=1
    fi
    unit_enable redis-server.service
    if ((restart)) && systemctl is-active -q redis-server; then systemctl restart redis-server; changed "restarted redis-server"; fi
    unit_start redis-server.service
    wait_for 20 eval "[[ \$(redis-cli -p $p ping) == PONG ]]" || die "redis does not answer on $p"
    finish
}

apply_mysql() {
    local p restart=0
    p=$(port_of mysql)
    put_text /etc/mysql/mariadb.conf.d/60-roboshop.cnf 0644 <<EOF && restart=1
# RoboShop (deploy/roboshop): reachable from the application hosts.
[mysqld]
bind-address = 0.0.0.0
port = $p
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
EOF
    unit_enable mariadb.service
    if ((restart)) && systemctl is-active -q mariadb; then systemctl restart mariadb; changed "restarted mariadb"; fi
    unit_start mariadb.service
    wait_for 30 mariadb-admin ping || die "mariadb does not answer"
    finish
}

apply_rabbitmq() {
    local p
    p=$(port_of rabbitmq)
    if [[ $p != 5672 ]]; then
        put_text /etc/rabbitmq/conf.d/60-roboshop.conf 0644 <<<"listeners.tcp.default = $p" &&
            { systemctl restart rabbitmq-server; changed "restarted rabbitmq-server"; }
    fi
    unit_enable rabbitmq-server.service
    unit_start rabbitmq-server.service
    rabbitmqctl -q await_startup --timeout 60 >/dev/null || die "rabbitmq did not start: $(journal rabbitmq-server)"
    if ! rabbitmqctl -q list_users 2>/dev/null | grep -q '^roboshop[[:space:]]'; then
        rabbitmqctl -q add_user roboshop roboshop123 >/dev/null
        changed "rabbitmq user roboshop"
    fi
    if ! rabbitmqctl -q list_user_permissions roboshop 2>/dev/null | grep -q '^/[[:space:]]*\.\*[[:space:]]*\.\*[[:space:]]*\.\*'; then
        rabbitmqctl -q set_permissions -p / roboshop '.*' '.*' '.*' >/dev/null
        changed "rabbitmq permissions of roboshop on /"
    fi
    finish
}

SCHEMA=$OPT/schema
schema_unpack() { unpack "$STAGE/files/schema.zip" "$SCHEMA" || true; }

apply_mongodata() {
    local dir=$SCHEMA p f out n
    schema_unpack
    p=$(port_of mongodb)
    wait_for 30 tcp_open 127.0.0.1 "$p" || die "no MongoDB on $p"
    for f in catalogue:products:sku users:users:name; do
        IFS=: read -r db coll key <<<"$f"
        [[ -f $dir/mongo/$db.json ]] || continue
        out=$("$dir/shop-mongo-seed" "mongodb://127.0.0.1:$p/" "$db" "$coll" "$key" "$dir/mongo/$db.json") ||
            die "loading $db.$coll failed: $out"
        n=${out#*: }; n=${n%% inserted*}
        if [[ $n =~ ^[0-9]+$ ]] && ((n > 0)); then changed "data $out"; else say "data $out"; fi
    done
    finish
}

mysql_q() { mariadb -N -B -e "$1" 2>/dev/null; }
mysql_data_ok() {
    local want have
    want=$(gzip -dc "$1/mysql/cities.sql.gz" | head -n 10 | sed -n 's/^-- \(cities\|codes\)-rows: \([0-9]*\)$/\2/p' | tr '\n' ' ')
    have=$(mysql_q "SELECT (SELECT COUNT(*) FROM cities.cities), (SELECT COUNT(*) FROM cities.codes)" | tr '\t' ' ')
    [[ "$have " == "$want" ]] || return 1
    [[ $(mysql_q "SELECT COUNT(*) FROM mysql.user WHERE user IN ('shipping','ratings')") -ge 2 ]] || return 1
    [[ $(mysql_q "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='ratings' AND table_name='ratings'") == 1 ]]
}

apply_mysqldata() {
    local dir=$SCHEMA out
    schema_unpack
    if mysql_data_ok "$dir"; then say "data: cities, users shipping/ratings and ratings table present"; finish; return; fi
    out=$(SHOP_MARIADB_SOCKET=/run/mysqld/mysqld.sock bash "$dir/loaders/30-mysql" 2>&1) || die "loading the MySQL data failed: $out"
    changed "data ${out//$'\n'/; }"
    finish
}

# ---- services --------------------------------------------------------------------------------------------------
release_dir() { echo "$OPT/releases/$2/$1"; }

# Installs release VERSION of SVC from its zip (kept side by side with the others). Checks --version.
release_install() {
    local svc=$1 ver=$2 zip=$3 dir got
    dir=$(release_dir "$svc" "$ver")
    if [[ -f $dir/.zip.sha256 ]]; then
        [[ $(<"$dir/.zip.sha256") == "$(sha256sum "$zip" | cut -d' ' -f1)" ]] ||
            die "release $ver of $svc is already installed with other content; give the new build a new version"
        return 0
    fi
    mkdir -p "$OPT/releases/$ver"
    unpack "$zip" "$dir" quiet
    got=$("$dir/$svc" --version 2>/dev/null || true)
    [[ $got == "$svc $ver" ]] || { rm -rf "$dir"; die "$zip: the binary reports '$got', not '$svc $ver'"; }
    chmod -R go-w "$dir"
    changed "release $svc $ver in $dir"
}

current_version() { # the release the current link of SVC points at ("" if none)
    local t
    t=$(readlink "$OPT/current/$1" 2>/dev/null) || return 0
    t=${t%/"$1"}; echo "${t##*/}"
}
set_link() { # set_link LINK TARGET: atomic symlink switch
    ln -sfn "$2" "$1.new" && mv -Tf "$1.new" "$1"
}

# The units of every service are instances of one template: roboshop@<svc>.service on roboshop@<svc>.socket, shared
# by the services of this host (deploy/roboshop stages them from the newest release among those services), plus the
# per-service port drop-in of the socket and the hand-over template roboshop-next@.service (the same unit running
# /opt/roboshop/next/<svc> on the service's socket).
unit_of() { echo "roboshop@$1.service"; }
socket_of() { echo "roboshop@$1.socket"; }
next_of() { echo "roboshop-next@$1.service"; }
UNIT_STAMPS=/var/lib/roboshop/units

# Installs the units of SVC. Returns 0 when anything SVC runs with changed since this tool last (re)started it: the
# shared templates are installed once per host, so each service keeps its own record of what it last saw (units_seen).
install_units() {
    local svc=$1 port=$2 rc=1 tmp sum stamp=$UNIT_STAMPS/$1.sha256
    put "$STAGE/units/roboshop@.service" "$UNITS/roboshop@.service" 0644 || true
    put "$STAGE/units/roboshop@.socket" "$UNITS/roboshop@.socket" 0644 || true
    tmp=$(mktemp)
    sed -e "s#^ExecStart=$OPT/current/#ExecStart=$OPT/next/#" \
        -e "s#^Description=\(.*\)#Description=\1 (hand-over instance)#" \
        -e '/^\[Service\]/a Sockets=roboshop@%i.socket' -e 's/^Restart=.*/Restart=no/' \
        -e '/^\[Install\]/,$d' -e '2,/^\[Unit\]/{/^#/d}' \
        -e "1s|.*|# roboshop-next@.service: written by deploy/roboshop from roboshop@.service; runs only during a redeploy.|" \
        "$STAGE/units/roboshop@.service" >"$tmp"
    put "$tmp" "$UNITS/roboshop-next@.service" 0644 || true
    rm -f "$tmp"
    PORT_CHANGED=0
    put_text "$UNITS/$(socket_of "$svc").d/50-port.conf" 0644 <<EOF && PORT_CHANGED=1
# deploy/roboshop: the port of $svc on this host (also in /etc/roboshop/$svc.env and the nginx upstreams)
[Socket]
ListenStream=
ListenStream=$port
EOF
    UNITS_SUM=$(cat "$UNITS/roboshop@.service" "$UNITS/roboshop@.socket" "$UNITS/roboshop-next@.service" \
        "$UNITS/$(socket_of "$svc").d/50-port.conf" | sha256sum | cut -d' ' -f1)
    [[ -f $stamp && $(<"$stamp") == "$UNITS_SUM" ]] || rc=0
    return $rc
}
UNITS_SUM=""
units_seen() { [[ -z $UNITS_SUM ]] || { mkdir -p "$UNIT_STAMPS" && echo "$UNITS_SUM" >"$UNIT_STAMPS/$1.sha256"; }; }

# A host deployed by a release of this tool from before the template: SVC runs as <svc>.service on <svc>.socket.
# Moves it to roboshop@<svc>: the old socket closes and the new one binds the same port, so connections arriving in
# that moment (well under a second) are refused; requests in flight finish (the old process drains). Two sockets
# cannot share the port (the old one lacks SO_REUSEPORT), hence no lossless hand-over here. Removes the old units.
# Returns 1 when there is nothing to move.
migrate_units() {
    local svc=$1 old=$UNITS/$1.service oldport="" i
    grep -qs "^ExecStart=$OPT/current/$svc/" "$old" || return 1 # none, or the course's unit (not ours)
    say "moving $svc from $svc.service/$svc.socket to $(unit_of "$svc")/$(socket_of "$svc")"
    systemctl disable -q "$svc.socket" "$svc.service" 2>/dev/null || true
    systemctl stop "$svc-next.service" 2>/dev/null || true
    if systemctl is-active -q "$svc.service"; then
        oldport=$(systemctl show -p Listen --value "$svc.socket" | sed -n 's/.*:\([0-9]*\) (Stream).*/\1/p' | head -n 1)
        systemctl stop "$svc.socket"             # systemd's copy of the socket; the process still accepts on its own
        systemctl stop --no-block "$svc.service" # SIGTERM: it closes its socket at once, then drains in-flight requests
        for ((i = 0; i < 600; i++)); do [[ -n $oldport ]] && port_listening "$oldport" || break; sleep 0.05; done
        systemctl start "$(socket_of "$svc")" "$(unit_of "$svc")" ||
            die "$(unit_of "$svc") did not start: $(journal "$(unit_of "$svc")")"
        wait_for 60 eval "! systemctl is-active -q $svc.service" || say "$svc.service is still draining"
        units_seen "$svc"
        changed "moved $svc to $(unit_of "$svc") (its port changed hands: a moment of refused connections)"
    fi
    rm -rf "$old" "$UNITS/$svc.socket" "$UNITS/$svc.socket.d" "$UNITS/$svc-next.service"
    daemon_reload
    systemctl reset-failed "$svc.service" "$svc.socket" "$svc-next.service" 2>/dev/null || true
    changed "removed the per-service units of $svc (the layout of releases before the template)"
}

# Starts release VERSION of SVC alone on a spare port (port + 1000), outside the shop's traffic, and checks that it
# becomes healthy, reports VERSION and stays healthy for a moment. Stops it again in any case.
canary() {
    local svc=$1 ver=$2 port=$3 cport=$((port + 1000)) bin unit=$1-canary v vars=() ok=0 i
    bin=$(release_dir "$svc" "$ver")/$svc
    for v in $(port_vars "$svc"); do vars+=("$v=$cport"); done
    systemctl stop "$unit" >/dev/null 2>&1 || true
    systemctl reset-failed "$unit" >/dev/null 2>&1 || true
    port_listening "$cport" && { say "canary: port $cport is taken"; return 1; }
    say "canary: $svc $ver on port $cport"
    if systemd-run --quiet --unit="$unit" --service-type=notify -p User=roboshop -p Group=roboshop \
        -p EnvironmentFile="$ETC/$svc.env" -p TimeoutStartSec=20 -p NoNewPrivileges=yes -p PrivateTmp=yes \
        -p ProtectSystem=strict -p ProtectHome=yes /usr/bin/env "${vars[@]}" "$bin"; then
        if wait_for 15 healthy "$svc" "$cport"; then
            v=$(served_version "$svc" "$cport")
            if [[ $v == "$ver" ]]; then
                ok=1
                for ((i = 0; i < 6; i++)); do sleep 0.5; healthy "$svc" "$cport" || { ok=0; break; }; done
                if ((ok)); then say "canary: healthy, reports $ver, stayed healthy for 3 s"; else say "canary: $svc $ver became unhealthy"; fi
            else
                say "canary: $svc on $cport reports version '$v', expected $ver"
            fi
        else
            say "canary: $svc $ver is not healthy on $cport (health $(http_code "http://127.0.0.1:$cport$(health_path "$svc")"))"
        fi
    else
        say "canary: $svc $ver did not start: $(journal "$unit")"
    fi
    systemctl stop "$unit" >/dev/null 2>&1 || true
    systemctl reset-failed "$unit" >/dev/null 2>&1 || true
    ((ok))
}

# Hands the listening socket of SVC over to release VERSION without refusing a connection: the -next unit (new
# release, same socket) starts and accepts next to the old process; `current` switches; the main unit restarts
# (the old process stops accepting, drains and exits while -next serves); -next stops and drains. Both steps keep
# at least one process accepting on the socket, and the kernel queues connections in between.
handover() {
    local svc=$1 ver=$2 port=$3 unit next
    unit=$(unit_of "$svc") next=$(next_of "$svc")
    systemctl stop "$next" >/dev/null 2>&1 || true
    set_link "$OPT/next/$svc" "../releases/$ver/$svc"
    systemctl reset-failed "$next" >/dev/null 2>&1 || true
    systemctl start "$next" || { systemctl stop "$next" 2>/dev/null || true; say "handover: $next did not start: $(journal "$next")"; return 1; }
    say "handover: $next ($ver) accepts on port $port beside the old process"
    set_link "$OPT/current/$svc" "../releases/$ver/$svc"
    systemctl restart "$unit" || { say "handover: $unit did not restart: $(journal "$unit")"; return 1; }
    say "handover: the old process drained and exited; $unit runs $ver"
    systemctl stop "$next" 2>/dev/null
    units_seen "$svc"
    wait_for 15 healthy "$svc" "$port" || { say "handover: $svc not healthy on $port after the switch"; return 1; }
    [[ $(served_version "$svc" "$port") == "$ver" ]] || { say "handover: $svc on $port does not report $ver"; return 1; }
    say "handover: $next drained and stopped; port $port answers $ver"
}

# Zero-downtime switch of a running service to VERSION, with a canary gate before and a rollback after.
switch_release() {
    local svc=$1 ver=$2 port=$3 old
    old=$(current_version "$svc")
    if ! canary "$svc" "$ver" "$port"; then
        say "ROLLBACK: $svc stays on $old (release $ver failed its health gate and never took traffic)"
        return 1
    fi
    if handover "$svc" "$ver" "$port"; then
        changed "switched $svc from ${old:-none} to $ver"
        return 0
    fi
    say "ROLLBACK: $svc back to $old"
    if [[ -n $old ]] && handover "$svc" "$old" "$port"; then
        say "ROLLBACK: $svc serves $old again"
    else
        set_link "$OPT/current/$svc" "../releases/$old/$svc"; systemctl restart "$(unit_of "$svc")" || true
    fi
    return 1
}

prune_releases() {
    local svc=$1 keep cur d n=0
    cur=$(current_version "$svc")
    # newest first by modification time; keep the current one and the KEEP_RELEASES-1 most recent others
    while read -r d; do
        [[ -n $d ]] || continue
        [[ $(basename "$(dirname "$d")") == "$cur" ]] && continue
        n=$((n + 1))
        ((n < KEEP_RELEASES)) && continue
        rm -rf "$d"; rmdir --ignore-fail-on-non-empty "$(dirname "$d")"
        changed "pruned old release $d"
    done < <(ls -dt "$OPT"/releases/*/"$svc" 2>/dev/null)
    return 0
}

apply_service() {
    local svc=$1 ver port cur units_changed=0 env_changed=0 unit sock
    ver=$(version_of "$svc"); port=$(port_of "$svc"); unit=$(unit_of "$svc"); sock=$(socket_of "$svc")
    release_install "$svc" "$ver" "$STAGE/files/$svc.zip"
    put "$STAGE/env/$svc.env" "$ETC/$svc.env" 0640 && env_changed=1
    install_units "$svc" "$port" && units_changed=1
    ((units_changed)) && daemon_reload
    if migrate_units "$svc"; then
        systemctl is-active -q "$unit" && units_changed=0 env_changed=0 # it just started with everything new
    fi
    cur=$(current_version "$svc")
    if ! systemctl is-active -q "$unit"; then
        [[ $cur == "$ver" ]] || { set_link "$OPT/current/$svc" "../releases/$ver/$svc"; changed "current $svc -> $ver"; }
        if ((units_changed)) && systemctl is-active -q "$sock"; then systemctl restart "$sock"; fi
        unit_enable "$sock"; unit_start "$sock"
        unit_enable "$unit"; unit_start "$unit"
        units_seen "$svc"
    else
        unit_enable "$sock"; unit_enable "$unit"
        if [[ $cur != "$ver" ]]; then
            switch_release "$svc" "$ver" "$port" || die "$svc: release $ver rolled back"
        elif ((units_changed || env_changed)); then
            if ((PORT_CHANGED)); then
                # a new port is a new socket: this one step refuses connections for a moment
                systemctl stop "$sock" "$unit" 2>/dev/null
                systemctl start "$sock" "$unit" || die "$svc did not start on port $port: $(journal "$unit")"
                units_seen "$svc"
                changed "moved $svc to port $port"
            else
                handover "$svc" "$ver" "$port" || die "$svc did not come back after its settings changed"
                changed "restarted $svc without downtime (settings changed)"
            fi
        fi
    fi
    wait_for 30 healthy "$svc" "$port" ||
        die "$svc is not healthy on port $port (health $(http_code "http://127.0.0.1:$port$(health_path "$svc")")): $(journal "$unit")"
    prune_releases "$svc"
    finish
}

cmd_redeploy() {
    local svc=$1 ver=$2 port cur start=$SECONDS
    is_service "$svc" || die "unknown service $svc"
    port=$(port_of "$svc")
    release_install "$svc" "$ver" "$STAGE/files/$svc.zip"
    cur=$(current_version "$svc")
    if [[ $cur == "$ver" ]] && systemctl is-active -q "$(unit_of "$svc")"; then
        say "$svc already runs $ver"; finish; return 0
    fi
    systemctl is-active -q "$(unit_of "$svc")" || die "$svc is not running here ($(unit_of "$svc")); run deploy first"
    if switch_release "$svc" "$ver" "$port"; then
        say "$svc now serves $ver on port $port ($((SECONDS - start)) s; previous: $cur)"
        prune_releases "$svc"
        finish
    else
        say "$svc still serves $(served_version "$svc" "$port") on port $port"
        echo "CHANGES $CHANGES"; exit 3
    fi
}

# ---- web --------------------------------------------------------------------------------------------------------
apply_web() {
    local html=/usr/share/nginx/html sum reload=0
    sum=$(sha256sum "$STAGE/files/web.zip" | cut -d' ' -f1)
    if [[ ! -f $html/.roboshop-web.sha256 || $(<"$html/.roboshop-web.sha256") != "$sum" ]]; then
        rm -rf "$html.new" && mkdir -p "$html.new"
        unzip -q "$STAGE/files/web.zip" -d "$html.new"
        echo "$sum" >"$html.new/.roboshop-web.sha256"
        chmod -R a+rX "$html.new"
        rm -rf "$html.old"; [[ -d $html ]] && mv "$html" "$html.old"
        mv "$html.new" "$html"; rm -rf "$html.old"
        changed "web content $(basename "$html")"
    fi
    if ! cmp -s "$STAGE/files/nginx.conf" /etc/nginx/nginx.conf; then
        nginx -t -q -c "$STAGE/files/nginx.conf" 2>/tmp/roboshop-nginx-t.log || die "nginx -t: $(tr '\n' '|' </tmp/roboshop-nginx-t.log)"
        put "$STAGE/files/nginx.conf" /etc/nginx/nginx.conf 0644 && reload=1
    fi
    unit_enable nginx.service
    if systemctl is-active -q nginx; then
        ((reload)) && { systemctl reload nginx; changed "reloaded nginx"; }
    else
        unit_start nginx.service
    fi
    wait_for 15 eval "[[ \$(http_code http://127.0.0.1:$(port_of web)/) == 200 ]]" || die "nginx does not serve / on port $(port_of web)"
    finish
}

cmd_apply() {
    local c=$1
    case $c in
        mongodb | redis | mysql | rabbitmq | mongodata | mysqldata | web) "apply_$c" ;;
        *) is_service "$c" || die "unknown component $c"; apply_service "$c" ;;
    esac
}

# ---- doctor / status --------------------------------------------------------------------------------------------
ok() { printf 'ok    %-10s %s\n' "$HOST_NAME" "$*"; }
bad() { PROBLEMS=$((PROBLEMS + 1)); printf 'FAIL  %-10s %s\n' "$HOST_NAME" "$*"; }
check_unit() { if systemctl is-active -q "$1"; then ok "$1 active"; else bad "$1 is $(systemctl is-active "$1" 2>/dev/null) (journalctl -u $1)"; fi; }
# Whether a listening port is reachable from other hosts (not bound to loopback only).
check_bind() { # check_bind NAME PORT
    local addrs
    addrs=$(ss -Hltn "sport = :$2" 2>/dev/null | awk '{print $4}' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
    if [[ -z $addrs ]]; then bad "$1: nothing listens on port $2"
    elif [[ $addrs =~ ^((127\.[0-9.]+|\[::1\])\ )+$ ]]; then bad "$1 listens on $addrs only: other hosts cannot reach it (bind address)"
    else ok "$1 listens on ${addrs% } port $2"; fi
}
# Backends (and services) SVC talks to, as "name addr port".
deps_of() {
    local d
    for d in $(eval echo "\$DEPS_$1"); do
        local a="ADDR_$d" p="PORT_$d"
        echo "$d ${!a} ${!p}"
    done
}

cmd_doctor() {
    local c svc port v cur n want name addr p
    for c in $HOST_COMPONENTS; do
        case $c in
            mongodb) check_unit ferretdb.service; check_bind "mongodb (ferretdb)" "$(port_of mongodb)" ;;
            redis)
                check_unit redis-server.service; check_bind redis "$(port_of redis)"
                systemctl is-active -q redis-server.service || continue
                [[ $(redis-cli -p "$(port_of redis)" config get protected-mode 2>/dev/null | tail -n 1) == no ]] &&
                    ok "redis protected-mode off (remote clients allowed)" || bad "redis protected-mode is on: remote clients are refused" ;;
            mysql)
                check_unit mariadb.service; check_bind mysql "$(port_of mysql)"
                if mysql_data_ok "$OPT/schema"; then ok "mysql data loaded (cities, codes, users shipping and ratings, ratings table)"
                else bad "mysql data missing or incomplete (cities/codes counts, users shipping/ratings, ratings.ratings)"; fi ;;
            rabbitmq)
                check_unit rabbitmq-server.service; check_bind rabbitmq "$(port_of rabbitmq)"
                rabbitmqctl -q list_users 2>/dev/null | grep -q '^roboshop[[:space:]]' && ok "rabbitmq user roboshop" ||
                    bad "rabbitmq has no user roboshop (guest cannot log in remotely)" ;;
            web)
                check_unit nginx.service
                nginx -t -q 2>/dev/null && ok "nginx -t" || bad "nginx -t fails: $(nginx -t 2>&1 | tr '\n' '|')"
                for svc in $WEB_SERVICES; do
                    n=$(web_probe "$svc" "$(port_of web)")
                    [[ $n == ok ]] && ok "web -> /api/$svc/ answers" || bad "web -> /api/$svc/ answers $n (upstream $svc: is it running, is the address in nginx.conf right?)"
                done ;;
        esac
    done
    for svc in $HOST_SERVICES; do
        port=$(port_of "$svc"); want=$(version_of "$svc")
        check_unit "$(socket_of "$svc")"; check_unit "$(unit_of "$svc")"
        cmp -s "$STAGE/env/$svc.env" "$ETC/$svc.env" && ok "$svc env file up to date" ||
            bad "$ETC/$svc.env differs from the inventory's (addresses/ports): run deploy"
        while read -r name addr p; do
            [[ -n $name ]] || continue
            tcp_open "$addr" "$p" && ok "$svc -> $name $addr:$p reachable" ||
                bad "$svc cannot reach $name at $addr:$p (is $name running and bound to 0.0.0.0? firewall/security group?)"
        done < <(deps_of "$svc")
        n=$(http_code "http://127.0.0.1:$port$(health_path "$svc")")
        [[ $n == 200 ]] && ok "$svc healthy on port $port" || bad "$svc health on port $port: $n ($(journal "$(unit_of "$svc")"))"
        v=$(served_version "$svc" "$port"); cur=$(current_version "$svc")
        if [[ $v == "$want" && $cur == "$want" ]]; then ok "$svc version $v"
        else bad "$svc serves version '${v:-?}', current link '${cur:-none}', inventory wants $want"; fi
        if [[ $svc == catalogue && -f $STAGE/files/catalogue.count ]]; then
            n=$(curl -s --max-time 3 "http://127.0.0.1:$port/products" | grep -o '"sku"' | wc -l)
            [[ $n == "$(<"$STAGE/files/catalogue.count")" ]] && ok "catalogue data: $n products" ||
                bad "catalogue lists $n products, the seed has $(<"$STAGE/files/catalogue.count") (data not loaded into MongoDB?)"
        fi
    done
    echo "PROBLEMS $PROBLEMS"
}

cmd_status() {
    local c svc port
    for c in $HOST_COMPONENTS; do
        if is_service "$c"; then
            port=$(port_of "$c")
            printf '%-10s %-10s port %-5s %-8s health %s version %s\n' "$HOST_NAME" "$c" "$port" \
                "$(systemctl is-active "$(unit_of "$c")" 2>/dev/null)" "$(http_code "http://127.0.0.1:$port$(health_path "$c")")" \
                "$(served_version "$c" "$port")"
        else
            local u
            case $c in mongodb) u=ferretdb ;; redis) u=redis-server ;; mysql) u=mariadb ;; rabbitmq) u=rabbitmq-server ;; web) u=nginx ;; *) continue ;; esac
            printf '%-10s %-10s port %-5s %s\n' "$HOST_NAME" "$c" "$(port_of "$c")" "$(systemctl is-active "$u" 2>/dev/null)"
        fi
    done
}

verb=${1:-}
shift || true
exec 9>/run/roboshop-agent.lock
flock -w 600 9 || die "another deploy/roboshop run holds /run/roboshop-agent.lock"
case $verb in
    prepare) cmd_prepare ;;
    apply) cmd_apply "$1" ;;
    redeploy) cmd_redeploy "$1" "$2" ;;
    doctor) cmd_doctor ;;
    status) cmd_status ;;
    *) die "unknown verb '$verb'" ;;
esac
