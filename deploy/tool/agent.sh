#!/usr/bin/env bash
# deploy/tool/agent.sh: the part of deploy/roboshop that runs ON a host (as root, shipped over SSH with the
# host's staged files). It converges one component at a time and counts what it changed.
#   agent.sh prepare              hostname, packages, user, directories for every component of this host
#   agent.sh apply COMPONENT      mongodb redis mysql rabbitmq mongodata mysqldata <service> web
#   agent.sh redeploy SVC VERSION zero-downtime switch of a service to another release (canary, handover, rollback)
#   agent.sh doctor | status      checks as an instructor would / one line per component
#   agent.sh firewall             prints the nftables rules this host gets (deploy/roboshop render)
# Every change prints "changed: <what>"; the last line is "CHANGES <n>". The plan (what this host runs, ports,
# versions, addresses) is $STAGE/plan.sh, written by deploy/roboshop.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STAGE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$STAGE/plan.sh"
# shellcheck source=/dev/null
[[ -f $STAGE/secrets.sh ]] && . "$STAGE/secrets.sh" # this host's share of the deployment's credentials (0600)
LAB_MODE=${LAB_MODE:-0}

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
bind_of() { local v="BIND_$1"; echo "${!v}"; }
version_of() { local v="VERSION_$1"; echo "${!v}"; }
peers_of() { local v="PEERS_$1"; echo "${!v}"; }
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
# The one package-name table: a logical name -> the apt (Debian/Ubuntu) name | the dnf (RHEL 9, Amazon Linux) name.
# The application tier needs no package (static releases; an older archive's DEPENDS lists Debian names, apt only).
declare -A PKG_APT=([redis]=redis-server [mysql]="mariadb-server mariadb-client" [rabbitmq]=rabbitmq-server
    [web]="nginx openssl" [firewall]=nftables [tools]="unzip curl" [prometheus]=prometheus
    [redis-exporter]=prometheus-redis-exporter [mysql-exporter]=prometheus-mysqld-exporter
    [web-exporter]=prometheus-nginx-exporter)
declare -A PKG_DNF=([redis]=redis [mysql]="mariadb-server mariadb" [rabbitmq]=rabbitmq-server
    [web]="nginx openssl" [firewall]=nftables [tools]="unzip curl" [prometheus]=golang-github-prometheus
    [redis-exporter]=redis_exporter [mysql-exporter]=mysqld_exporter [web-exporter]=nginx-prometheus-exporter)
# ... and the names that differ between the two families once installed (units, config places, nginx's user)
pkg_manager() { if command -v apt-get >/dev/null; then echo apt; elif command -v dnf >/dev/null; then echo dnf; else echo none; fi; }
PKG_MANAGER=$(pkg_manager)
if [[ $PKG_MANAGER == dnf ]]; then
    REDIS_UNIT=redis.service REDIS_CONF=/etc/redis/redis.conf MYSQL_CNF_DIR=/etc/my.cnf.d NGINX_USER=nginx
else
    REDIS_UNIT=redis-server.service REDIS_CONF=/etc/redis/redis.conf MYSQL_CNF_DIR=/etc/mysql/mariadb.conf.d NGINX_USER=www-data
fi
pkg_names() { # pkg_names LOGICAL...: this host's package names
    local l
    for l; do
        case $PKG_MANAGER in apt) echo "${PKG_APT[$l]:-$l}" ;; dnf) echo "${PKG_DNF[$l]:-$l}" ;; esac
    done | tr ' ' '\n' | sed '/^$/d'
}
APT_UPDATED=0
pkg_installed() {
    case $PKG_MANAGER in
        apt) [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *"ok installed"* ]] ;;
        dnf) rpm -q "$1" >/dev/null 2>&1 ;;
    esac
}
pkg_ensure() {
    local p missing=()
    [[ $PKG_MANAGER != none ]] || die "neither apt-get nor dnf on this host: install $* by hand"
    for p; do pkg_installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]} ($PKG_MANAGER)"
    if [[ $PKG_MANAGER == dnf ]]; then
        dnf install -y -q "${missing[@]}" >/tmp/roboshop-dnf.log 2>&1 ||
            { tail -n 20 /tmp/roboshop-dnf.log >&2; die "dnf install ${missing[*]} failed"; }
        changed "packages ${missing[*]}"
        return 0
    fi
    # apt-get-wait (tools/apt-get-wait, staged next to this script) waits for a dpkg lock held by unattended upgrades
    local apt=(bash "$STAGE/apt-get-wait")
    if ((APT_UPDATED == 0)); then "${apt[@]}" update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
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
# A service listens on its bind address only (BIND_<svc>: this host's private address, or loopback).
svc_url() { echo "http://$(bind_of "$1"):$2"; } # svc_url SVC PORT
healthy() { [[ $(http_code "$(svc_url "$1" "$2")$(health_path "$1")") == 200 ]]; }
# The version the process on PORT reports in /metrics (shop_build_info{service,version}).
served_version() {
    curl -s --max-time 3 "$(svc_url "$1" "$2")/metrics" 2>/dev/null |
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
    local -a pk
    mapfile -t pk < <(pkg_names $PACKAGES)
    # shellcheck disable=SC2086
    [[ $PKG_MANAGER == apt ]] && pk+=($DEB_DEPENDS)
    pkg_ensure "${pk[@]}"
    apply_firewall
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

# ---- the host firewall ---------------------------------------------------------------------------------------
# One nftables table of our own (inet roboshop; other tables are left alone), rendered from the plan: ssh from the
# admin sources, each component's port from the hosts whose components connect to it (web: from anywhere), the
# monitoring chain, loopback (first: a local connection that predates the table, e.g. a node's registration with
# epmd, must be able to close; conntrack may call its last packets invalid), replies, ICMP; everything else dropped. Loaded now and at every boot
# (roboshop-firewall.service). The inventory's "set firewall off" leaves the host without it (doctor says so).
FW_FILE=$ETC/firewall.nft
nft_set() { # nft_set "a,b c": an nftables anonymous set of ports ("" when empty)
    local x
    x=$(tr ', ' '\n\n' <<<"$1" | sed '/^$/d' | sort -un | paste -sd, - | sed 's/,/, /g')
    [[ -z $x ]] || echo "{ $x }"
}
# nft_from SOURCES RULE: RULE once per source address or range (one rule each: ranges may overlap)
nft_from() {
    local a
    for a in $(tr ',' ' ' <<<"$1" | tr ' ' '\n' | sed -e '/^$/d' -e 's|/32$||' | sort -u); do
        if [[ $a == *:* ]]; then echo "        ip6 saddr $a $2"; else echo "        ip saddr $a $2"; fi
    done
}
render_firewall() {
    local r name p src
    echo "# $FW_FILE: written by deploy/roboshop from the inventory (edit the inventory, not this file)."
    echo "# nft -f $FW_FILE replaces the table inet roboshop; roboshop-firewall.service loads it at boot."
    echo "table inet roboshop {}"
    echo "delete table inet roboshop"
    echo "table inet roboshop {"
    echo "    # MONITORING: flows of the monitoring tools (metrics scrapes, a tracing collector). The inventory's"
    echo "    # 'set monitor ADDR...' may reach the services' ports; further monitoring rules belong here."
    echo "    chain monitoring {"
    [[ -z ${MONITOR_PORTS// /} ]] || nft_from "$FW_MONITOR" "tcp dport $(nft_set "$MONITOR_PORTS") accept"
    # the inventory's prometheus host scrapes the services and exporters of this host; the OTLP collector's host
    # (when it is one of ours) takes the services' spans
    [[ -z $PROM_IP || -z ${PROM_PORTS//[[:space:]]/} ]] || nft_from "$PROM_IP" "tcp dport $(nft_set "$PROM_PORTS") accept comment \"prometheus: scrapes\""
    [[ -z $OTLP_PORT || -z ${OTLP_SOURCES// /} ]] || nft_from "$OTLP_SOURCES" "tcp dport $OTLP_PORT accept comment \"tracing: the services' spans (OTLP)\""
    echo "    }"
    echo "    chain input {"
    echo "        type filter hook input priority filter; policy drop;"
    echo "        iif lo accept"
    echo "        ct state established,related accept"
    echo "        ct state invalid drop"
    echo "        meta l4proto { 1, 58 } accept comment \"icmp, ipv6-icmp\""
    nft_from "$FW_ADMIN" "tcp dport $FW_SSH_PORT accept comment \"ssh: admin\""
    for r in "${FW_RULES[@]}"; do
        read -r name p src <<<"$r"
        if [[ $src == any ]]; then
            echo "        tcp dport $p accept comment \"$name: public\""
        elif [[ -n $src ]]; then
            nft_from "$src" "tcp dport $p accept comment \"$name: its clients\""
        else
            echo "        # $name (port $p): no client on another host"
        fi
    done
    echo "        jump monitoring"
    echo "    }"
    echo "}"
}
apply_firewall() {
    if [[ $FW_ENABLED == off ]]; then
        say "firewall: off in the inventory (set firewall off): this host relies on its network's filtering alone"
        return 0
    fi
    local load=0 tmp
    tmp=$(mktemp)
    render_firewall >"$tmp"
    put "$tmp" "$FW_FILE" 0600 && load=1
    rm -f "$tmp"
    nft list table inet roboshop >/dev/null 2>&1 || load=1
    put_text "$UNITS/roboshop-firewall.service" 0644 <<UNIT && { daemon_reload; load=1; }
# roboshop-firewall.service: loads the host firewall deploy/roboshop wrote ($FW_FILE) at boot, before the network.
[Unit]
Description=RoboShop host firewall (nftables table inet roboshop)
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f $FW_FILE
ExecReload=/usr/sbin/nft -f $FW_FILE

[Install]
WantedBy=sysinit.target
UNIT
    unit_enable roboshop-firewall.service
    if ((load)); then
        nft -c -f "$FW_FILE" 2>/tmp/roboshop-nft.log || die "nft rejects $FW_FILE: $(tr '\n' '|' </tmp/roboshop-nft.log)"
        nft -f "$FW_FILE" || die "loading $FW_FILE failed"
        systemctl start roboshop-firewall.service 2>/dev/null || true
        changed "firewall loaded (table inet roboshop)"
    fi
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

# FerretDB: upstream's command, configured through its FERRETDB_* environment (/etc/roboshop/ferretdb.env): the
# private address (loopback when its clients share this host) and, outside lab mode, SCRAM authentication (FerretDB
# 1.24's experimental "new authentication", users kept in its own SQLite files). Its setup user admin is made at the
# first start of an empty data directory from /etc/roboshop/ferretdb-admin.env; later password changes go through
# updateUser (a changed password restarts nothing). The services' users catalogue and user are made by admin with the
# release's own client (shop-mongo-seed from the schema archive), URLs and passwords in the environment, never in argv.
# FerretDB has no per-database authorisation: every authenticated user reaches every database (docs/SECURITY.md).
MONGO_USERS=("catalogue:catalogue" "user:users") # NAME:DATABASE
FERRET_ENV=$ETC/ferretdb.env FERRET_ADMIN_ENV=$ETC/ferretdb-admin.env
urlenc() { # urlenc STRING: percent-encoded for a URL's userinfo
    local s=$1 i c out=""
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in [A-Za-z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
    done
    echo "$out"
}
# mongo_url [USER PASSWORD DB]: this host's FerretDB, as USER of DB (authSource DB), or without credentials
mongo_url() {
    local hp="$(bind_of mongodb):$(port_of mongodb)"
    if (($#)); then echo "mongodb://$1:$(urlenc "$2")@$hp/$3?authSource=$3"; else echo "mongodb://$hp/"; fi
}
mongo_tool() { # mongo_tool URL ARGS...: shop-mongo-seed with MONGO_URL=URL (the environment, not argv)
    local url=$1; shift
    MONGO_URL=$url timeout 60 "$SCHEMA/shop-mongo-seed" "$@"
}
mongo_login() { mongo_tool "$(mongo_url "$1" "$2" "$3")" --login "$3" >/dev/null 2>&1; } # USER PASSWORD DB
# mongo_admin OLD: admin logs in with this deployment's password; a data directory set up with OLD (the previous
# rotation's, from ferretdb-admin.env) gets the new one first.
mongo_admin() {
    local old=$1 out
    mongo_login admin "$CRED_MONGO_ADMIN" admin && return 0
    [[ -n $old && $old != "$CRED_MONGO_ADMIN" ]] && mongo_login admin "$old" admin ||
        die "FerretDB refuses its admin user with this deployment's password (a data directory from another deployment? see docs/DEPLOY.md, MongoDB)"
    out=$(SHOP_MONGO_PASSWORD=$CRED_MONGO_ADMIN mongo_tool "$(mongo_url admin "$old" admin)" --user admin admin 2>&1) ||
        die "setting FerretDB's admin password failed: $out"
    changed "ferretdb: admin's password (updateUser)"
}
mongo_users() {
    local e u db v out
    for e in "${MONGO_USERS[@]}"; do
        u=${e%%:*} db=${e#*:}; v="CRED_MONGO_${u^^}"
        mongo_login "$u" "${!v}" "$db" && continue
        out=$(SHOP_MONGO_PASSWORD=${!v} mongo_tool "$(mongo_url admin "$CRED_MONGO_ADMIN" admin)" --user "$db" "$u" 2>&1) ||
            die "making the MongoDB user $u of $db failed: $out"
        changed "ferretdb: $out"
    done
}
ferret_env() { # ferret_env ADDR:PORT: the settings file
    echo "# RoboShop (deploy/roboshop): FerretDB's settings (upstream's FERRETDB_* variables). Root only."
    echo "FERRETDB_LISTEN_ADDR=$1"
    if ((LAB_MODE)); then
        echo "# lab mode (set lab_mode course-passwords): no authentication, as in the course"
    else
        printf 'FERRETDB_TEST_ENABLE_NEW_AUTH=true\nFERRETDB_SETUP_DATABASE=admin\nFERRETDB_SETUP_USERNAME=admin\n'
    fi
}
ferret_admin_env() {
    put_text "$FERRET_ADMIN_ENV" 0600 <<<"$(printf '%s\nFERRETDB_SETUP_PASSWORD=%s' \
        "# FerretDB's setup user admin (used at the first start of an empty data directory only). Root only." \
        "$CRED_MONGO_ADMIN")" || true
}
apply_mongodb() {
    local p b restart=0 old=""
    p=$(port_of mongodb) b=$(bind_of mongodb)
    unpack "$STAGE/files/ferretdb.zip" "$OPT/ferretdb" && restart=1
    put "$OPT/ferretdb/ferretdb.service" "$UNITS/ferretdb.service" 0644 && restart=1
    [[ -f $FERRET_ADMIN_ENV ]] && old=$(sed -n 's/^FERRETDB_SETUP_PASSWORD=//p' "$FERRET_ADMIN_ENV")
    put_text "$FERRET_ENV" 0600 <<<"$(ferret_env "$b:$p")" && restart=1
    if ((LAB_MODE)); then
        [[ -f $FERRET_ADMIN_ENV ]] && { rm -f "$FERRET_ADMIN_ENV"; changed "removed $FERRET_ADMIN_ENV (lab mode)"; }
    elif [[ ! -f $FERRET_ADMIN_ENV ]]; then
        ferret_admin_env
    fi
    ((restart)) && daemon_reload
    unit_enable ferretdb.service
    if ((restart)) && systemctl is-active -q ferretdb.service; then systemctl restart ferretdb.service; changed "restarted ferretdb"; fi
    unit_start ferretdb.service
    wait_for 30 tcp_open "$b" "$p" || die "FerretDB does not answer on $b:$p: $(journal ferretdb)"
    if ((LAB_MODE == 0)); then
        schema_unpack
        [[ -x $SCHEMA/shop-mongo-seed ]] || die "no $SCHEMA/shop-mongo-seed in the schema archive"
        wait_for 30 eval '[[ $(MONGO_URL=$(mongo_url) "$SCHEMA/shop-mongo-seed" --login admin >/dev/null 2>&1; echo $?) != 1 ]]' ||
            die "FerretDB does not answer commands on $b:$p: $(journal ferretdb)"
        mongo_admin "$old"
        ferret_admin_env # (after the password change: a failed run still knows the password in use)
        mongo_users
    fi
    finish
}

# Redis: ACL users with only the commands each service sends (libshop/redis.c), the default user off, an admin
# user for this tool; maxmemory with noeviction (a full Redis refuses writes, the services answer 503; carts and
# counters are never evicted before their TTL). Key patterns: cart's keys are raw cart ids (D11), so cart gets all
# keys; user its counter and the sessions, payment and dispatch their own prefixes. Lab mode: the course's Redis (no password, default user on).
redis_cli() { # redis_cli ARGS...: as the admin user, on this host's bind address
    if ((LAB_MODE)); then redis-cli -h "$(bind_of redis)" -p "$(port_of redis)" "$@"
    else REDISCLI_AUTH=$CRED_REDIS_ADMIN redis-cli --user admin -h "$(bind_of redis)" -p "$(port_of redis)" "$@"; fi
}
redis_acl() {
    if ((LAB_MODE)); then
        echo "# lab mode (set lab_mode course-passwords): no password, as in the course"
        echo "protected-mode no"
        return
    fi
    echo "protected-mode yes"
    echo "user default off resetpass nocommands resetkeys"
    echo "user admin on resetpass >$CRED_REDIS_ADMIN ~* &* +@all"
    # cart: carts (raw ids, D11) and their nonces (cart/nonce/<id>, D21)
    echo "user cart on resetpass >$CRED_REDIS_CART resetkeys ~* resetchannels -@all +get +set +setex +expire +del +watch +unwatch +multi +exec +eval +evalsha +ping +select"
    # user: the anonymous-id counter and the sessions (session:<token>, sorted sets, D18; GET and TYPE
    # for a session the release before stored as JSON, converted on first use)
    echo "user user on resetpass >$CRED_REDIS_USER resetkeys ~anonymous-counter ~session:* resetchannels -@all +incr +get +type +expire +del +zadd +zscore +zremrangebyrank +zremrangebyscore +zunionstore +eval +evalsha +ping +select"
    # payment: checkout records and the history outbox (payment/..., D21)
    echo "user payment on resetpass >$CRED_REDIS_PAYMENT resetkeys ~payment/* resetchannels -@all +get +set +setex +expire +del +rpush +lindex +lrem +llen +ping +select"
    # dispatch: one record per order (dispatch:order:<id>, D21)
    echo "user dispatch on resetpass >$CRED_REDIS_DISPATCH resetkeys ~dispatch:* resetchannels -@all +get +set +setex +watch +unwatch +multi +exec +eval +evalsha +ping +select"
    # exporter (issue 19, with a prometheus host): server statistics only, no key
    [[ -z ${CRED_REDIS_EXPORTER:-} ]] ||
        echo "user exporter on resetpass >$CRED_REDIS_EXPORTER resetkeys resetchannels -@all +info +ping +select +dbsize +config|get +client|list +slowlog|get +slowlog|len +latency|latest +memory|stats +lastsave +cluster|info"
}
apply_redis() {
    local p b restart=0 binds tmp
    p=$(port_of redis) b=$(bind_of redis)
    binds=$b; [[ $b == 127.0.0.1 ]] || binds="$b 127.0.0.1"
    tmp=$(mktemp)
    {
        echo "# RoboShop (deploy/roboshop): private address only, ACL users per service, no eviction. Root and redis only."
        echo "bind $binds"
        echo "port $p"
        echo "maxmemory $REDIS_MAXMEMORY"
        echo "maxmemory-policy noeviction"
        redis_acl
    } >"$tmp"
    put "$tmp" /etc/redis/roboshop.conf 0640 && restart=1
    rm -f "$tmp"
    [[ $(stat -c %G /etc/redis/roboshop.conf) == redis ]] || chgrp redis /etc/redis/roboshop.conf
    if ! grep -qx 'include /etc/redis/roboshop.conf' "$REDIS_CONF"; then
        echo 'include /etc/redis/roboshop.conf' >>"$REDIS_CONF"
        changed "$REDIS_CONF includes roboshop.conf"; restart=1
    fi
    unit_enable "$REDIS_UNIT"
    if ((restart)) && systemctl is-active -q "$REDIS_UNIT"; then systemctl restart "$REDIS_UNIT"; changed "restarted redis"; fi
    unit_start "$REDIS_UNIT"
    wait_for 20 eval "[[ \$(redis_cli ping 2>/dev/null) == PONG ]]" || die "redis does not answer on $b:$p"
    local auth="-redis.user exporter" pw=${CRED_REDIS_EXPORTER:-}
    ((LAB_MODE)) && auth="" pw="" # (the course's Redis: no users, no password)
    has_exporter redis && exporter_apply prometheus-redis-exporter 9121 0600 <<ENV
# RoboShop (deploy/roboshop): Redis statistics for Prometheus, as the ACL user exporter (no key access). Root only.
ARGS="-redis.addr redis://127.0.0.1:$p $auth -web.listen-address $EXPORTER_BIND:9121"
REDIS_PASSWORD=$pw
ENV
    finish
}

apply_mysql() {
    local p restart=0
    p=$(port_of mysql)
    put_text "$MYSQL_CNF_DIR/60-roboshop.cnf" 0644 <<CNF && restart=1
# RoboShop (deploy/roboshop): on the private address only (loopback when its clients share this host).
[mysqld]
bind-address = $(bind_of mysql)
port = $p
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
CNF
    unit_enable mariadb.service
    if ((restart)) && systemctl is-active -q mariadb; then systemctl restart mariadb; changed "restarted mariadb"; fi
    unit_start mariadb.service
    wait_for 30 mariadb-admin ping || die "mariadb does not answer"
    has_exporter mariadb && mysql_exporter
    finish
}

# RabbitMQ: on the private address; a user per service. The deploy tool declares the topology (D22: the exchange
# robot-shop, the queue orders bound to it with the key orders, and dispatch's dead letters: the exchange
# AMQP_DEAD_LETTER, default orders.dead, to the queue orders.dead) and the services only check it (AMQP_DECLARE=passive
# in their env files), so no service user may configure anything: payment may publish to the exchange only, dispatch
# may consume the queue only and publish to its dead-letter exchange. The course's user roboshop and the guest user
# are removed (lab mode keeps roboshop, with every permission, as the course has it).
EXCHANGE=robot-shop QUEUE=orders DEAD_QUEUE=orders.dead
rabbit_perms() { # rabbit_perms USER: "configure write read"
    local dl=${AMQP_DEAD_LETTER//./\\.}
    case $1 in
        payment) echo "^\$ ^$EXCHANGE\$ ^\$" ;;
        dispatch) echo "^\$ ^$dl\$ ^$QUEUE\$" ;;
        roboshop) echo ".* .* .*" ;;
    esac
}
# rabbit_bindings: "exchange queue key" per line, as the broker has them
rabbit_bindings() { { rabbitmqctl -q list_bindings source_name destination_name routing_key 2>/dev/null || true; } | awk 'NF == 3 {print $1, $2, $3}'; }
rabbit_topology_ok() {
    local b
    b=$(rabbit_bindings)
    grep -qxF "$EXCHANGE $QUEUE $QUEUE" <<<"$b" && grep -qxF "$AMQP_DEAD_LETTER $DEAD_QUEUE $DEAD_QUEUE" <<<"$b"
}
# The topology, declared with the release's own tool (schema archive: shop-amqp-publish --count declares what it
# names, the way the services' active mode does) as a one-off user that may configure exactly those names and is
# deleted right after: no standing user holds "configure". Nothing happens when the bindings are already there.
rabbit_topology() {
    local tool=$SCHEMA/shop-amqp-publish u=roboshop-topology pw names rc=0
    rabbit_topology_ok && return 0
    schema_unpack
    [[ -x $tool ]] || die "no $tool in the schema archive (a release from before D22: rebuild it with this deploy/dist)"
    pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-24)
    names="^($EXCHANGE|$QUEUE|${AMQP_DEAD_LETTER//./\\.}|${DEAD_QUEUE//./\\.})\$"
    rabbit_has_user "$u" && rabbitmqctl -q delete_user "$u" >/dev/null
    rabbitmqctl -q add_user "$u" "$pw" >/dev/null && rabbitmqctl -q set_permissions -p / "$u" "$names" "$names" "$names" >/dev/null ||
        die "cannot make the one-off topology user $u"
    export AMQP_HOST=$(bind_of rabbitmq) AMQP_PORT=$(port_of rabbitmq) AMQP_USER=$u AMQP_PASS=$pw
    "$tool" --count >/dev/null 2>/tmp/roboshop-amqp.log &&
        "$tool" -e "$AMQP_DEAD_LETTER" -q "$DEAD_QUEUE" -k "$DEAD_QUEUE" --count >/dev/null 2>>/tmp/roboshop-amqp.log || rc=1
    unset AMQP_HOST AMQP_PORT AMQP_USER AMQP_PASS
    rabbitmqctl -q delete_user "$u" >/dev/null || rc=1
    ((rc == 0)) && rabbit_topology_ok || die "declaring the broker topology failed: $(tr '\n' '|' </tmp/roboshop-amqp.log)"
    changed "rabbitmq topology: $EXCHANGE -> $QUEUE, $AMQP_DEAD_LETTER -> $DEAD_QUEUE (durable; the services only check it)"
}
rabbit_log() { tail -n 15 /var/log/rabbitmq/rabbit@*.log 2>/dev/null | grep -iE 'error|fail|crash|eaddr|reason' | tail -n 6 | tr '\n' '|'; }
# rabbit_has_user NAME (the list is read whole first: a "| grep -q" under pipefail fails when grep leaves early)
rabbit_has_user() { local l; l=$(rabbitmqctl -q list_users 2>/dev/null || true); grep -q "^$1[[:space:]]" <<<"$l"; }
rabbit_user() { # rabbit_user NAME PASSWORD: exists, with that password and its permissions
    local u=$1 pw=$2 c w r
    if ! rabbit_has_user "$u"; then
        rabbitmqctl -q add_user "$u" "$pw" >/dev/null; changed "rabbitmq user $u"
    elif ! rabbitmqctl -q authenticate_user "$u" "$pw" >/dev/null 2>&1; then
        rabbitmqctl -q change_password "$u" "$pw" >/dev/null; changed "rabbitmq password of $u"
    fi
    read -r c w r <<<"$(rabbit_perms "$u")"
    if [[ $(rabbitmqctl -q list_user_permissions "$u" 2>/dev/null | awk '$1 == "/" {print $2, $3, $4}') != "$c $w $r" ]]; then
        rabbitmqctl -q set_permissions -p / "$u" "$c" "$w" "$r" >/dev/null
        changed "rabbitmq permissions of $u: configure $c write $w read $r"
    fi
}
apply_rabbitmq() {
    local p b u restart=0
    p=$(port_of rabbitmq) b=$(bind_of rabbitmq)
    put_text /etc/rabbitmq/rabbitmq-env.conf 0644 <<ENV && restart=1
# RoboShop (deploy/roboshop): AMQP on the private address only (loopback when its clients share this host).
NODE_IP_ADDRESS=$b
NODE_PORT=$p
ENV
    if has_exporter rabbitmq; then # its own exporter (rabbitmq_prometheus) on the exporters' address
        if ! grep -q rabbitmq_prometheus /etc/rabbitmq/enabled_plugins 2>/dev/null; then
            rabbitmq-plugins -q --offline enable rabbitmq_prometheus >/dev/null || die "rabbitmq-plugins enable rabbitmq_prometheus failed"
            changed "rabbitmq plugin rabbitmq_prometheus"; restart=1
        fi
        put_text /etc/rabbitmq/advanced.config 0644 <<<"[{rabbitmq_prometheus, [{tcp_config, [{port, 15692}, {ip, \"$EXPORTER_BIND\"}]}]}]." && restart=1
    fi
    unit_enable rabbitmq-server.service
    if ((restart)) && systemctl is-active -q rabbitmq-server; then
        systemctl restart rabbitmq-server || die "rabbitmq-server did not restart: $(journal rabbitmq-server) $(rabbit_log)"
        changed "restarted rabbitmq-server"
    fi
    unit_start rabbitmq-server.service
    rabbitmqctl -q await_startup --timeout 60 >/dev/null || die "rabbitmq did not start: $(journal rabbitmq-server)"
    if ((LAB_MODE)); then
        rabbit_user roboshop roboshop123
    else
        rabbit_user payment "$CRED_AMQP_PAYMENT"
        rabbit_user dispatch "$CRED_AMQP_DISPATCH"
        for u in roboshop guest; do
            rabbit_has_user "$u" || continue
            rabbitmqctl -q delete_user "$u" >/dev/null; changed "rabbitmq user $u removed"
        done
    fi
    rabbit_topology
    has_exporter rabbitmq && { wait_for 30 curl -sf -o /dev/null "http://$EXPORTER_BIND:15692/metrics" || die "rabbitmq_prometheus does not answer on $EXPORTER_BIND:15692"; }
    finish
}

SCHEMA=$OPT/schema
schema_unpack() { unpack "$STAGE/files/schema.zip" "$SCHEMA" || true; }

apply_mongodata() {
    local dir=$SCHEMA p b f out n url
    schema_unpack
    p=$(port_of mongodb) b=$(bind_of mongodb)
    wait_for 30 tcp_open "$b" "$p" || die "no MongoDB on $b:$p"
    for f in catalogue:products:sku users:users:name; do
        IFS=: read -r db coll key <<<"$f"
        [[ -f $dir/mongo/$db.json ]] || continue
        url=$(mongo_url); ((LAB_MODE)) || url=$(mongo_url admin "$CRED_MONGO_ADMIN" admin)
        out=$(mongo_tool "$url" - "$db" "$coll" "$key" "$dir/mongo/$db.json") ||
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

# The services' MariaDB users: this deployment's passwords and only the grants each needs (shipping reads cities
# and codes; ratings reads and writes its one table). The course's loaders create them with ALL on their database
# and the published passwords; lab mode keeps those.
MYSQL_GRANTS=("shipping:SELECT ON cities.*" "ratings:SELECT, INSERT, UPDATE ON ratings.ratings")
mysql_user_sql() { # the SQL that sets one user (both its host forms)
    local u=$1 g=$2 pw=$3
    printf "ALTER USER '%s'@'%%' IDENTIFIED BY '%s'; ALTER USER '%s'@'localhost' IDENTIFIED BY '%s';\n" "$u" "$pw" "$u" "$pw"
    printf "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '%s'@'%%', '%s'@'localhost';\n" "$u" "$u"
    printf "GRANT %s TO '%s'@'%%', '%s'@'localhost';\n" "$g" "$u" "$u"
}
mysql_user_ok() { # the user has that password and exactly that grant (besides USAGE)
    local u=$1 g=$2 pw=$3 grants
    [[ $(mysql_q "SELECT COUNT(*) FROM mysql.user WHERE user='$u' AND authentication_string=PASSWORD('$pw')") == 2 ]] || return 1
    grants=$(mysql_q "SHOW GRANTS FOR '$u'@'%'" | grep -v '^GRANT USAGE' | sed -e 's/`//g' -e "s/ TO .*//")
    [[ $grants == "GRANT $g" ]]
}
mysql_users() {
    local e u g pw v
    ((LAB_MODE)) && return 0
    for e in "${MYSQL_GRANTS[@]}"; do
        u=${e%%:*} g=${e#*:}; v="CRED_MYSQL_${u^^}"; pw=${!v}
        mysql_user_ok "$u" "$g" "$pw" && continue
        mysql_user_sql "$u" "$g" "$pw" | mariadb || die "setting the MariaDB user $u failed"
        changed "mariadb user $u: this deployment's password, GRANT $g"
    done
}

apply_mysqldata() {
    local dir=$SCHEMA out
    schema_unpack
    if mysql_data_ok "$dir"; then
        say "data: cities, users shipping/ratings and ratings table present"
    else
        out=$(SHOP_MARIADB_SOCKET=/run/mysqld/mysqld.sock bash "$dir/loaders/30-mysql" 2>&1) || die "loading the MySQL data failed: $out"
        changed "data ${out//$'\n'/; }"
    fi
    mysql_users
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
        share_binary "$svc" "$ver" && changed "release $svc $ver shares its binary with the other services of $ver"
        return 0
    fi
    mkdir -p "$OPT/releases/$ver"
    unpack "$zip" "$dir" quiet
    got=$("$dir/$svc" --version 2>/dev/null || true)
    [[ $got == "$svc $ver" ]] || { rm -rf "$dir"; die "$zip: the binary reports '$got', not '$svc $ver'"; }
    chmod -R go-w "$dir"
    share_binary "$svc" "$ver" || true
    changed "release $svc $ver in $dir"
}

# share_binary SVC VERSION: the services are one multi-call binary (services/roboshop.c), so every archive of a
# release holds the same file under its service's name. When another service of VERSION on this host has a
# byte-identical binary, SVC's becomes a hard link to it: one file, whose pages (its library code above all) the
# services of this host then share. Returns 0 when it linked (a running process keeps its file until it restarts).
share_binary() {
    local svc=$1 ver=$2 bin o
    bin=$(release_dir "$svc" "$ver")/$svc
    for o in "$OPT/releases/$ver"/*/; do
        o=${o%/}; o=$o/${o##*/}
        [[ $o != "$bin" && -f $o && ! -L $o ]] || continue
        [[ $o -ef $bin ]] && return 1 # shared already
        cmp -s "$o" "$bin" || continue
        ln -f "$o" "$bin.new" && mv -f "$bin.new" "$bin"
        return 0
    done
    return 1
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
# deploy/roboshop: the address and port of $svc on this host (also in /etc/roboshop/$svc.env and the nginx
# upstreams): this host's private address, or loopback when every client of $svc is on this host; never 0.0.0.0.
[Socket]
ListenStream=
ListenStream=$(bind_of "$svc"):$port
FreeBind=yes
EOF
    local u
    for u in "$(unit_of "$svc")" "$(next_of "$svc")"; do
        put_text "$UNITS/$u.d/60-limits.conf" 0644 <<EOF || true
# deploy/roboshop: $svc's resource limits and the only addresses it may talk to (its clients' and dependencies'
# hosts, the monitoring sources, loopback), from the inventory.
[Service]
MemoryMax=$SERVICE_MEMORY_MAX
TasksMax=$SERVICE_TASKS_MAX
IPAddressDeny=any
IPAddressAllow=$(peers_of "$svc") $HOST_IP
EOF
    done
    UNITS_SUM=$(cat "$UNITS/roboshop@.service" "$UNITS/roboshop@.socket" "$UNITS/roboshop-next@.service" \
        "$UNITS/$(socket_of "$svc").d/50-port.conf" "$UNITS/$(unit_of "$svc").d/60-limits.conf" | sha256sum | cut -d' ' -f1)
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
            say "canary: $svc $ver is not healthy on $cport (health $(http_code "$(svc_url "$svc" "$cport")$(health_path "$svc")"))"
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
    put "$STAGE/env/$svc.env" "$ETC/$svc.env" 0600 && env_changed=1 # holds its credentials: root only
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
        die "$svc is not healthy on port $port (health $(http_code "$(svc_url "$svc" "$port")$(health_path "$svc")")): $(journal "$unit")"
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
TLS_DIR=$ETC/tls
# The web host's certificate: the inventory's (set tls_cert / tls_key), else a self-signed one for this host's name
# and address, made once and kept. Returns 0 when it changed.
ensure_tls() {
    local rc=1
    [[ $HTTPS == off ]] && return 1
    install -d -m 0755 "$TLS_DIR"
    if [[ -f $STAGE/files/tls.crt ]]; then
        put "$STAGE/files/tls.key" "$TLS_DIR/roboshop.key" 0600 && rc=0
        put "$STAGE/files/tls.crt" "$TLS_DIR/roboshop.crt" 0644 && rc=0
        rm -f "$TLS_DIR/self-signed"
    elif [[ ! -f $TLS_DIR/roboshop.crt || ! -f $TLS_DIR/roboshop.key ]]; then
        (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$HOST_ADDR" \
            -addext "subjectAltName=IP:$HOST_IP,DNS:$(hostname)" \
            -keyout "$TLS_DIR/roboshop.key" -out "$TLS_DIR/roboshop.crt" >/dev/null 2>&1) || die "openssl could not make a certificate"
        chmod 644 "$TLS_DIR/roboshop.crt"
        echo "no certificate in the inventory: self-signed for $HOST_ADDR" >"$TLS_DIR/self-signed"
        changed "self-signed certificate $TLS_DIR/roboshop.crt (name one with set tls_cert / tls_key)"
        rc=0
    fi
    return $rc
}
apply_web() {
    local html=/usr/share/nginx/html sum reload=0 f
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
    ensure_tls && reload=1
    if [[ -d $STAGE/files/ops ]]; then # the operations page (issue 19): its own server in nginx.conf
        install -d -m 0755 /usr/share/roboshop-ops
        for f in "$STAGE"/files/ops/*; do put "$f" "/usr/share/roboshop-ops/$(basename "$f")" 0644 || true; done
    fi
    sed -i "s/^user www-data;/user $NGINX_USER;/" "$STAGE/files/nginx.conf" # this host family's nginx user
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
    has_exporter nginx && exporter_apply prometheus-nginx-exporter 9113 0644 <<ENV
# RoboShop (deploy/roboshop): nginx's stub_status for Prometheus.
ARGS="-nginx.scrape-uri http://127.0.0.1:$(port_of web)/nginx_status -web.listen-address $EXPORTER_BIND:9113"
ENV
    finish
}

# ---- monitoring (issue 19: the inventory names a prometheus host) ------------------------------------------------
has_exporter() { [[ " $EXPORTERS " == *" $1:"* ]]; } # has_exporter JOB
# exporter_apply UNIT PORT MODE [restart] <<< /etc/default/UNIT: Debian's exporter unit with these arguments,
# (re)started when they changed (or when asked: its credentials file changed), answering on the exporters' address.
exporter_apply() {
    local u=$1 p=$2 mode=$3 restart=${4:-0}
    put_text "/etc/default/$u" "$mode" && restart=1
    unit_enable "$u.service"
    if ((restart)) && systemctl is-active -q "$u"; then systemctl restart "$u"; changed "restarted $u"; fi
    unit_start "$u.service"
    wait_for 20 curl -sf -o /dev/null "http://$EXPORTER_BIND:$p/metrics" || die "$u does not answer on $EXPORTER_BIND:$p: $(journal "$u")"
}
# The MariaDB account of the exporter: server status only (PROCESS, REPLICATION CLIENT), through the socket.
mysql_exporter() {
    local cnf=/etc/prometheus/roboshop-mysqld.cnf tmp again=0
    if ! mariadb -N -u exporter -p"$CRED_MYSQL_EXPORTER" -e 'SHOW GRANTS' 2>/dev/null | grep -q '^GRANT PROCESS, '; then
        mariadb -e "CREATE USER IF NOT EXISTS 'exporter'@'localhost' IDENTIFIED BY '$CRED_MYSQL_EXPORTER' WITH MAX_USER_CONNECTIONS 3;
            ALTER USER 'exporter'@'localhost' IDENTIFIED BY '$CRED_MYSQL_EXPORTER';
            GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'exporter'@'localhost';" || die "cannot make the MariaDB user exporter"
        changed "mysql user exporter (PROCESS, REPLICATION CLIENT)"
    fi
    install -d -m 0755 /etc/prometheus
    tmp=$(mktemp)
    printf '[client]\nuser=exporter\npassword=%s\nsocket=/run/mysqld/mysqld.sock\n' "$CRED_MYSQL_EXPORTER" >"$tmp"
    put "$tmp" "$cnf" 0640 && again=1
    rm -f "$tmp"
    [[ $(stat -c %G "$cnf") == prometheus ]] || chgrp prometheus "$cnf"
    exporter_apply prometheus-mysqld-exporter 9104 0644 "$again" <<ENV
# RoboShop (deploy/roboshop): MariaDB status for Prometheus ($cnf: the exporter's account, root:prometheus 0640).
ARGS="--config.my-cnf=$cnf --web.listen-address=$EXPORTER_BIND:9104"
ENV
}
PROM_ETC=/etc/prometheus
prom_scraped_all() { local t; t=$(curl -s --max-time 3 "$1/api/v1/targets?state=active") && [[ $t == *'"health"'* && $t != *'"health":"unknown"'* ]]; }
apply_prometheus() {
    local p b restart=0 f
    p=$(port_of prometheus) b=$(bind_of prometheus)
    put "$STAGE/files/prometheus.yml" "$PROM_ETC/prometheus.yml" 0644 && restart=1
    install -d -m 0755 "$PROM_ETC/rules"
    for f in "$STAGE"/files/rules/*.yml; do put "$f" "$PROM_ETC/rules/$(basename "$f")" 0644 && restart=1; done
    for f in "$PROM_ETC"/rules/*.yml; do
        [[ -e $f ]] || continue
        [[ -f $STAGE/files/rules/$(basename "$f") ]] || { rm -f "$f"; changed "removed $f"; restart=1; }
    done
    put_text /etc/default/prometheus 0644 <<<"ARGS=\"--web.listen-address=$b:$p --storage.tsdb.retention.time=15d\"" && restart=1
    promtool check config "$PROM_ETC/prometheus.yml" >/tmp/roboshop-promtool.log 2>&1 ||
        die "promtool check config: $(tr '\n' '|' </tmp/roboshop-promtool.log)"
    unit_enable prometheus.service
    if ((restart)) && systemctl is-active -q prometheus; then systemctl restart prometheus; changed "restarted prometheus"; fi
    unit_start prometheus.service
    wait_for 60 curl -sf -o /dev/null "http://$b:$p/-/ready" || die "prometheus is not ready on $b:$p: $(journal prometheus)"
    # after a (re)start, until every target had its first scrape (so doctor right after a deploy sees real health)
    ((restart)) && { wait_for 30 prom_scraped_all "http://$b:$p" || say "prometheus: some targets not scraped yet"; }
    finish
}

cmd_apply() {
    local c=$1
    case $c in
        mongodb | redis | mysql | rabbitmq | mongodata | mysqldata | web | prometheus) "apply_$c" ;;
        *) is_service "$c" || die "unknown component $c"; apply_service "$c" ;;
    esac
}

# ---- doctor / status --------------------------------------------------------------------------------------------
ok() { printf 'ok    %-10s %s\n' "$HOST_NAME" "$*"; }
bad() { PROBLEMS=$((PROBLEMS + 1)); printf 'FAIL  %-10s %s\n' "$HOST_NAME" "$*"; }
check_unit() { if systemctl is-active -q "$1"; then ok "$1 active"; else bad "$1 is $(systemctl is-active "$1" 2>/dev/null) (journalctl -u $1)"; fi; }
# check_bind NAME COMPONENT: it listens on its private bind address (or loopback), never on a wildcard.
check_bind() {
    local name=$1 c=$2 p want addrs a
    p=$(port_of "$c") want=$(bind_of "$c")
    addrs=$(ss -Hltn "sport = :$p" 2>/dev/null | awk '{print $4}' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
    if [[ -z $addrs ]]; then bad "$name: nothing listens on port $p"; return; fi
    for a in $addrs; do
        case $a in
            0.0.0.0 | '*' | '[::]' | '[::0]')
                bad "$name listens on $a:$p: open to every network this host is on. Fix: undo the hand edit (its bind" \
                    "address), run deploy/roboshop deploy; until then only the firewall protects it"
                return ;;
        esac
    done
    if [[ " $addrs" == *" $want "* ]]; then ok "$name listens on ${addrs% } port $p (private)"
    else bad "$name listens on ${addrs% } port $p, not on $want where its clients look for it: run deploy/roboshop deploy"; fi
}
# check_secret FILE MODE: a file holding credentials is owned by root and not readable by others.
check_secret() {
    local f=$1 want=$2 m
    [[ -f $f ]] || return 0
    m=$(stat -c %a "$f")
    if [[ $m == "$want" && $(stat -c %U "$f") == root && $((8#$m & 8#007)) == 0 ]]; then ok "$f: mode $m, root's"
    else bad "$f holds credentials and is mode $m owner $(stat -c %U "$f"): chmod $want $f; chown root $f; then deploy/roboshop rotate-credentials (others may have read them)"; fi
}
check_firewall() {
    if [[ $FW_ENABLED == off ]]; then ok "firewall off in the inventory (set firewall off): the network must filter"; return; fi
    if ! command -v nft >/dev/null; then bad "no nft: the host firewall is missing (run deploy/roboshop deploy)"; return; fi
    local live
    live=$(nft list chain inet roboshop input 2>/dev/null || true) # (no pipe into grep -q: pipefail and SIGPIPE)
    if [[ $live == *"policy drop"* ]]; then ok "firewall: table inet roboshop loaded, input policy drop"
    else bad "firewall: table inet roboshop is not loaded (nft list ruleset): systemctl start roboshop-firewall, or deploy/roboshop deploy"; fi
    if cmp -s <(render_firewall) "$FW_FILE"; then ok "firewall rules match the inventory ($FW_FILE)"
    else bad "$FW_FILE differs from the inventory's rules: run deploy/roboshop deploy"; fi
    systemctl is-enabled -q roboshop-firewall.service 2>/dev/null && ok "roboshop-firewall.service enabled (loads at boot)" ||
        bad "roboshop-firewall.service not enabled: the firewall is gone after a reboot (systemctl enable roboshop-firewall)"
}
check_redis() {
    local out
    check_unit "$REDIS_UNIT"; check_bind redis redis
    systemctl is-active -q "$REDIS_UNIT" || return 0
    check_secret /etc/redis/roboshop.conf 640
    if ((LAB_MODE)); then bad "redis in lab mode: no password (set lab_mode course-passwords in the inventory): labs only"; return; fi
    out=$(redis-cli -h "$(bind_of redis)" -p "$(port_of redis)" ping 2>&1)
    [[ $out == *NOAUTH* ]] && ok "redis refuses clients without a password" ||
        bad "redis answers '$out' without a password: the default user is on (run deploy/roboshop deploy)"
    out=$(redis_cli config get maxmemory-policy 2>/dev/null | tail -n 1)
    [[ $out == noeviction ]] && ok "redis maxmemory-policy noeviction (a full Redis refuses writes, evicts nothing)" ||
        bad "redis maxmemory-policy is '$out', not noeviction: carts could be evicted before their TTL (run deploy)"
    out=$({ redis_cli acl list 2>/dev/null || true; } | { grep -c '^user \(cart\|user\|payment\|dispatch\) on ' || true; })
    [[ $out == 4 ]] && ok "redis ACL users cart, user, payment and dispatch" ||
        bad "redis lacks the ACL users cart, user, payment and dispatch (run deploy/roboshop deploy)"
}
check_mongodb() {
    local rc e u db v
    check_unit ferretdb.service; check_bind "mongodb (ferretdb)" mongodb
    systemctl is-active -q ferretdb.service || return 0
    check_secret "$FERRET_ENV" 600; check_secret "$FERRET_ADMIN_ENV" 600
    if ((LAB_MODE)); then bad "mongodb (ferretdb) in lab mode: no authentication, anyone who reaches it reads and writes every database (labs only)"; return; fi
    [[ -x $SCHEMA/shop-mongo-seed ]] || { bad "no $SCHEMA/shop-mongo-seed to check FerretDB's authentication with: run deploy/roboshop deploy"; return; }
    rc=0; mongo_tool "$(mongo_url)" --login catalogue >/dev/null 2>&1 || rc=$?
    case $rc in
        3) ok "mongodb (ferretdb) refuses clients without credentials (SCRAM)" ;;
        0) bad "mongodb (ferretdb) answers clients without credentials: authentication is off (FERRETDB_TEST_ENABLE_NEW_AUTH in $FERRET_ENV, a hand edit?): run deploy/roboshop deploy" ;;
        *) bad "mongodb (ferretdb) does not answer commands on $(bind_of mongodb):$(port_of mongodb) (journalctl -u ferretdb)" ;;
    esac
    for e in "${MONGO_USERS[@]}"; do
        u=${e%%:*} db=${e#*:}; v="CRED_MONGO_${u^^}"
        mongo_login "$u" "${!v}" "$db" && ok "mongodb user $u of $db logs in with this deployment's password" ||
            bad "mongodb user $u of $db is missing or has another password: run deploy/roboshop deploy"
    done
}
check_mysql() {
    local e u g v
    check_unit mariadb.service; check_bind mysql mysql
    if mysql_data_ok "$OPT/schema"; then ok "mysql data loaded (cities, codes, users shipping and ratings, ratings table)"
    else bad "mysql data missing or incomplete (cities/codes counts, users shipping/ratings, ratings.ratings)"; fi
    if ((LAB_MODE)); then bad "mysql in lab mode: the course's published passwords (labs only)"; return; fi
    for e in "${MYSQL_GRANTS[@]}"; do
        u=${e%%:*} g=${e#*:}; v="CRED_MYSQL_${u^^}"
        mysql_user_ok "$u" "$g" "${!v}" && ok "mysql user $u: this deployment's password, only GRANT $g" ||
            bad "mysql user $u: password or grants differ from the deployment's (GRANT $g; the course's app-user.sql grants ALL): run deploy/roboshop deploy"
    done
}
check_rabbitmq() {
    local u c w r want
    check_unit rabbitmq-server.service; check_bind rabbitmq rabbitmq
    if ((LAB_MODE)); then bad "rabbitmq in lab mode: user roboshop/roboshop123 with every permission (labs only)"; return; fi
    for u in payment dispatch; do
        read -r c w r <<<"$(rabbit_perms "$u")"; want="$c $w $r"
        [[ $(rabbitmqctl -q list_user_permissions "$u" 2>/dev/null | awk '$1 == "/" {print $2, $3, $4}') == "$want" ]] &&
            ok "rabbitmq user $u: configure/write/read $want" || bad "rabbitmq user $u missing or with other permissions (want $want): run deploy/roboshop deploy"
    done
    rabbit_topology_ok && ok "rabbitmq topology: $EXCHANGE -> $QUEUE, $AMQP_DEAD_LETTER -> $DEAD_QUEUE (declared here; the services only check it)" ||
        bad "rabbitmq lacks the binding $EXCHANGE -> $QUEUE or $AMQP_DEAD_LETTER -> $DEAD_QUEUE: payments answer 503 (run deploy/roboshop deploy)"
    for u in guest roboshop; do
        rabbit_has_user "$u" && bad "rabbitmq still has the user $u (a published password): rabbitmqctl delete_user $u" ||
            ok "rabbitmq has no user $u"
    done
}
# Prometheus's own view: every target it scrapes is up (its API), else the ones that are not and why.
check_prometheus() {
    local out
    check_unit prometheus.service; check_bind prometheus prometheus
    out=$(curl -s --max-time 5 "http://$(bind_of prometheus):$(port_of prometheus)/api/v1/targets?state=active") || out=""
    local n up down
    # (|| true: a grep that finds nothing must not end the doctor under set -e and pipefail)
    n=$({ grep -o '"health":"[a-z]*"' <<<"$out" || true; } | wc -l) up=$({ grep -o '"health":"up"' <<<"$out" || true; } | wc -l)
    # (each target's scrapeUrl, lastError and health share one {...} level once split at '{')
    down=$(tr '{' '\n' <<<"$out" | { grep '"health":' || true; } | { grep -v '"health":"up"' || true; } |
        sed -n 's/.*"scrapeUrl":"\([^"]*\)".*"lastError":"\(\([^"\\]\|\\.\)*\)".*/\1 (\2)/p' | sed 's/\\"/"/g' | tr '\n' ';')
    if [[ $n == 0 ]]; then bad "prometheus API does not answer on $(bind_of prometheus):$(port_of prometheus) or has no targets (journalctl -u prometheus)"
    elif [[ $n == "$up" ]]; then ok "prometheus: all $n targets up"
    else bad "prometheus: $((n - up)) of $n targets down: ${down%;} (is the exporter or service running? its host's firewall? run deploy/roboshop deploy)"; fi
}
check_web() {
    local svc n
    check_unit nginx.service
    nginx -t -q 2>/dev/null && ok "nginx -t" || bad "nginx -t fails: $(nginx -t 2>&1 | tr '\n' '|')"
    for svc in $WEB_SERVICES; do
        n=$(web_probe "$svc" "$(port_of web)")
        [[ $n == ok ]] && ok "web -> /api/$svc/ answers" || bad "web -> /api/$svc/ answers $n (upstream $svc: is it running, is the address in nginx.conf right?)"
    done
    [[ $HTTPS == off ]] && { ok "https off in the inventory"; return; }
    check_secret "$TLS_DIR/roboshop.key" 600
    n=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 https://127.0.0.1/)
    [[ $n == 200 ]] && ok "https://$HOST_ADDR/ answers 200$([[ -f $TLS_DIR/self-signed ]] && echo " (self-signed: name a certificate with set tls_cert / tls_key)")" ||
        bad "https on 443 answers '$n' (nginx.conf, $TLS_DIR): run deploy/roboshop deploy"
}
check_service_unit() {
    local svc=$1 u mem
    u=$(unit_of "$svc")
    mem=$(systemctl show -p MemoryMax --value "$u" 2>/dev/null)
    [[ $mem =~ ^[0-9]+$ ]] && ok "$u MemoryMax=$mem TasksMax=$(systemctl show -p TasksMax --value "$u") IPAddressDeny=any" ||
        bad "$u has no MemoryMax ($UNITS/$u.d/60-limits.conf missing?): run deploy/roboshop deploy"
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
    check_firewall
    for c in $HOST_COMPONENTS; do
        case $c in
            mongodb) check_mongodb ;;
            redis) check_redis ;;
            mysql) check_mysql ;;
            rabbitmq) check_rabbitmq ;;
            web) check_web ;;
            prometheus) check_prometheus ;;
        esac
    done
    for svc in $HOST_SERVICES; do
        port=$(port_of "$svc"); want=$(version_of "$svc")
        check_unit "$(socket_of "$svc")"; check_unit "$(unit_of "$svc")"
        check_bind "$svc" "$svc"
        check_secret "$ETC/$svc.env" 600
        check_service_unit "$svc"
        cmp -s "$STAGE/env/$svc.env" "$ETC/$svc.env" && ok "$svc env file up to date" ||
            bad "$ETC/$svc.env differs from the inventory's (addresses/ports/credentials): run deploy"
        while read -r name addr p; do
            [[ -n $name ]] || continue
            tcp_open "$addr" "$p" && ok "$svc -> $name $addr:$p reachable" ||
                bad "$svc cannot reach $name at $addr:$p (is $name running, on that address? the firewall of $name's host?)"
        done < <(deps_of "$svc")
        n=$(http_code "$(svc_url "$svc" "$port")$(health_path "$svc")")
        [[ $n == 200 ]] && ok "$svc healthy on port $port" || bad "$svc health on port $port: $n ($(journal "$(unit_of "$svc")"))"
        v=$(served_version "$svc" "$port"); cur=$(current_version "$svc")
        if [[ $v == "$want" && $cur == "$want" ]]; then ok "$svc version $v"
        else bad "$svc serves version '${v:-?}', current link '${cur:-none}', inventory wants $want"; fi
        if [[ $svc == catalogue && -f $STAGE/files/catalogue.count ]]; then
            # (|| true: a catalogue answering 503 must not end the doctor under set -e and pipefail)
            n=$({ curl -s --max-time 3 "$(svc_url "$svc" "$port")/products" || true; } | { grep -o '"sku"' || true; } | wc -l)
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
                "$(systemctl is-active "$(unit_of "$c")" 2>/dev/null)" "$(http_code "$(svc_url "$c" "$port")$(health_path "$c")")" \
                "$(served_version "$c" "$port")"
        else
            local u
            case $c in mongodb) u=ferretdb ;; redis) u=$REDIS_UNIT ;; mysql) u=mariadb ;; rabbitmq) u=rabbitmq-server ;; web) u=nginx ;; prometheus) u=prometheus ;; *) continue ;; esac
            printf '%-10s %-10s port %-5s %s\n' "$HOST_NAME" "$c" "$(port_of "$c")" "$(systemctl is-active "$u" 2>/dev/null)"
        fi
    done
}

verb=${1:-}
shift || true
# (deploy/roboshop render runs this one on the control machine: it only prints, so it takes no lock)
[[ $verb == firewall ]] && { render_firewall; exit 0; }
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
