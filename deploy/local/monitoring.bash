# deploy/local/monitoring.bash: the monitoring components of the local stack (sourced by deploy/local/stack).
# Prometheus scraping every service, nginx (through prometheus-nginx-exporter and stub_status), Redis
# (prometheus-redis-exporter), MariaDB (prometheus-mysqld-exporter) and RabbitMQ (its own rabbitmq_prometheus
# plugin, enabled on the running broker); the rules of deploy/monitoring/rules; and the operations page (web/ops/),
# served by an nginx of its own that also proxies Prometheus's API. Everything listens on loopback only.
# `SHOP_MONITORING=1 stack start` starts them with the rest; `stack start monitoring` adds them to a running stack.

MONITOR_COMPONENTS="redis_exporter mysqld_exporter nginx_exporter prometheus ops"
MONITOR_COMMS="prometheus|prometheus-redi|prometheus-mysq|prometheus-ngin"
MON_DIR=$STATE/prometheus
MYSQLD_EXPORTER_PASS=exporter-local # a loopback-only account that can read server status, nothing else

# Prometheus listens on SHOP_PROMETHEUS_PORT, else 9090 for the default instance, else base + its offset.
mon_port() {
  if [[ $1 == prometheus ]]; then
    [[ -n ${SHOP_PROMETHEUS_PORT:-} ]] && { echo "$SHOP_PROMETHEUS_PORT"; return; }
    ((BASE == SHOP_PORT_BASE_DEFAULT)) && { echo "$PROMETHEUS_PORT_DEFAULT"; return; }
  fi
  port_of "$1"
}

mon_expect_comm() {
  case $1 in
    prometheus) echo prometheus ;; redis_exporter) echo prometheus-redi ;; mysqld_exporter) echo prometheus-mysq ;;
    nginx_exporter) echo prometheus-ngin ;; ops) echo nginx ;; *) return 1 ;;
  esac
}

mon_packages() { # mon_packages COMPONENT: the Debian package it needs, when missing
  case $1 in
    prometheus) { have prometheus && have promtool; } || echo prometheus ;;
    redis_exporter) have prometheus-redis-exporter || echo prometheus-redis-exporter ;;
    mysqld_exporter) have prometheus-mysqld-exporter || echo prometheus-mysqld-exporter ;;
    nginx_exporter) have prometheus-nginx-exporter || echo prometheus-nginx-exporter ;;
    ops) have nginx || echo nginx-light ;;
  esac
}

# The names `stack start` accepts: `monitoring` means all of MONITOR_COMPONENTS.
mon_expand() {
  local c
  for c; do if [[ $c == monitoring ]]; then printf '%s\n' $MONITOR_COMPONENTS; else printf '%s\n' "$c"; fi; done
}

mon_env() { # the monitoring URLs in the stack's environment (compute_env's add)
  add SHOP_PROMETHEUS_URL "http://127.0.0.1:$(mon_port prometheus)"
  add SHOP_OPS_URL "http://127.0.0.1:$(mon_port ops)"
  add SHOP_RABBITMQ_METRICS_URL "http://127.0.0.1:$(mon_port rabbitmq_prometheus)/metrics/per-object"
}

mon_launch() { # mon_launch COMPONENT CMD...: tagged with the state dir, so `stack procs` and the sweep know it
  launch "$1" env SHOP_STATE_DIR="$STATE" "${@:2}"
}

start_redis_exporter() {
  local p; p=$(mon_port redis_exporter)
  pid_of redis_exporter >/dev/null && { say "redis_exporter already running on $p"; return 0; }
  need_free redis_exporter "$p"
  mon_launch redis_exporter prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$(port_of redis)" \
    -web.listen-address "127.0.0.1:$p"
  wait_ready redis_exporter 20 http_answers "http://127.0.0.1:$p/metrics"
  say "redis_exporter ready on $p"
}

start_mysqld_exporter() {
  local p sql; p=$(mon_port mysqld_exporter)
  pid_of mysqld_exporter >/dev/null && { say "mysqld_exporter already running on $p"; return 0; }
  need_free mysqld_exporter "$p"
  sql="CREATE USER IF NOT EXISTS 'exporter'@'localhost' IDENTIFIED BY '$MYSQLD_EXPORTER_PASS' WITH MAX_USER_CONNECTIONS 3;
       GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'exporter'@'localhost';"
  mariadb --no-defaults --socket="$SOCK" -uroot -e "$sql" >>"$LOGS/mysqld_exporter.log" 2>&1 ||
    die "mysqld_exporter: could not create its MariaDB account (is mariadb running? log: $LOGS/mysqld_exporter.log)"
  mkdir -p "$MON_DIR"
  printf '[client]\nuser=exporter\npassword=%s\nsocket=%s\n' "$MYSQLD_EXPORTER_PASS" "$SOCK" >"$MON_DIR/my.cnf"
  chmod 600 "$MON_DIR/my.cnf"
  mon_launch mysqld_exporter prometheus-mysqld-exporter --config.my-cnf="$MON_DIR/my.cnf" \
    --web.listen-address="127.0.0.1:$p"
  wait_ready mysqld_exporter 20 http_answers "http://127.0.0.1:$p/metrics"
  say "mysqld_exporter ready on $p"
}

start_nginx_exporter() {
  local p; p=$(mon_port nginx_exporter)
  pid_of nginx_exporter >/dev/null && { say "nginx_exporter already running on $p"; return 0; }
  need_free nginx_exporter "$p"
  mon_launch nginx_exporter prometheus-nginx-exporter -nginx.scrape-uri "http://127.0.0.1:$WEB_PORT/nginx_status" \
    -web.listen-address "127.0.0.1:$p"
  wait_ready nginx_exporter 20 http_answers "http://127.0.0.1:$p/metrics"
  say "nginx_exporter ready on $p"
}

# RabbitMQ's own exporter: the rabbitmq_prometheus plugin, enabled on the running node with its listener on
# loopback (set before the plugin starts). The node forgets it at its next start (enabled_plugins is rewritten).
rabbitmq_prometheus_on() {
  local p; p=$(mon_port rabbitmq_prometheus)
  pid_of rabbitmq >/dev/null || { say "rabbitmq is not running: its metrics are not scraped"; return 0; }
  http_answers "http://127.0.0.1:$p/metrics/per-object" && return 0
  need_free rabbitmq_prometheus "$p"
  rmqctl eval "application:load(rabbitmq_prometheus), application:set_env(rabbitmq_prometheus, tcp_config, [{port, $p}, {ip, \"127.0.0.1\"}])." >/dev/null
  env "${RMQ_ENV[@]}" "$RABBIT_BIN/rabbitmq-plugins" -q -n "$NODE" enable --online rabbitmq_prometheus >>"$LOGS/rabbitmq.log" 2>&1 ||
    die "rabbitmq: could not enable rabbitmq_prometheus (log: $LOGS/rabbitmq.log)"
  wait_ready rabbitmq 30 http_answers "http://127.0.0.1:$p/metrics/per-object"
  say "rabbitmq_prometheus ready on $p"
}

rabbitmq_prometheus_off() {
  pid_of rabbitmq >/dev/null || return 0
  http_answers "http://127.0.0.1:$(mon_port rabbitmq_prometheus)/metrics" || return 0
  env "${RMQ_ENV[@]}" "$RABBIT_BIN/rabbitmq-plugins" -q -n "$NODE" disable --online rabbitmq_prometheus \
    rabbitmq_management_agent rabbitmq_web_dispatch >>"$LOGS/rabbitmq.log" 2>&1 || true
}

# prometheus.yml for this instance: every target of the stack, the repo's rules.
prometheus_config() {
  local s t
  printf '%s\n' '# Generated by deploy/local/stack (monitoring.bash) at each start; do not edit.' \
    'global:' '  scrape_interval: 2s' '  scrape_timeout: 2s' '  evaluation_interval: 2s' \
    '  external_labels: {stack: local}' 'rule_files:' "  - $REPO/deploy/monitoring/rules/*.yml" 'scrape_configs:' \
    '  - job_name: shop' '    static_configs:'
  for s in $SHOP_SERVICES; do
    printf '      - {targets: ["127.0.0.1:%s"], labels: {service: %s}}\n' "$(port_of "$s")" "$s"
  done
  for t in "nginx nginx_exporter /metrics" "redis redis_exporter /metrics" "mariadb mysqld_exporter /metrics" \
    "rabbitmq rabbitmq_prometheus /metrics/per-object" "prometheus prometheus /metrics"; do
    set -- $t
    printf '  - job_name: %s\n    metrics_path: %s\n    static_configs:\n      - {targets: ["127.0.0.1:%s"]}\n' \
      "$1" "$3" "$(mon_port "$2")"
  done
}

start_prometheus() {
  local p; p=$(mon_port prometheus)
  rabbitmq_prometheus_on
  pid_of prometheus >/dev/null && { say "prometheus already running on $p"; return 0; }
  need_free prometheus "$p"
  mkdir -p "$MON_DIR/data"
  prometheus_config >"$MON_DIR/prometheus.yml"
  promtool check config "$MON_DIR/prometheus.yml" >>"$LOGS/prometheus.log" 2>&1 ||
    { tail -n 20 "$LOGS/prometheus.log" >&2; die "promtool check config failed (log: $LOGS/prometheus.log)"; }
  launch prometheus prometheus --config.file="$MON_DIR/prometheus.yml" --storage.tsdb.path="$MON_DIR/data" \
    --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$p"
  wait_ready prometheus 60 http_answers "http://127.0.0.1:$p/-/ready"
  say "prometheus ready on $p: http://localhost:$p"
}

# The operations page: a second nginx, its own loopback port, never the public gateway's.
ops_config() {
  local p=$1 pre=$2
  cat <<EOF
# Operations page, local stack. Generated by deploy/local/stack (monitoring.bash); do not edit.
worker_processes 1;
pid $RUN/ops.pid;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log $LOGS/ops-access.log;
    client_body_temp_path $pre/tmp/body;
    proxy_temp_path $pre/tmp/proxy;
    fastcgi_temp_path $pre/tmp/fastcgi;
    uwsgi_temp_path $pre/tmp/uwsgi;
    scgi_temp_path $pre/tmp/scgi;
    server_tokens off;
    server {
        listen 127.0.0.1:$p;
        server_name localhost;
        root $REPO/web/ops;
        location = / { try_files /index.html =404; expires -1; }
        location ~ ^/ops\.(js|css)$ { expires -1; }
        location ^~ /css/ { root $REPO/web/static; }
        location = /logo.svg { root $REPO/web/static; }
        # Prometheus's query API only (read-only): /prometheus/api/v1/query?query=...
        location ^~ /prometheus/api/v1/ {
            limit_except GET { deny all; }
            proxy_pass http://127.0.0.1:$(mon_port prometheus)/api/v1/;
            proxy_read_timeout 10s;
        }
        location / { return 404; }
    }
}
EOF
}

start_ops() {
  local p pre=$STATE/ops; p=$(mon_port ops)
  pid_of ops >/dev/null && { say "ops already running on $p"; return 0; }
  need_free ops "$p"
  mkdir -p "$pre/tmp"
  ops_config "$p" "$pre" >"$pre/nginx.conf"
  rm -f "$RUN/ops.pid"
  nohup setsid nginx -p "$pre/" -c "$pre/nginx.conf" -e "$LOGS/ops.log" </dev/null >>"$LOGS/ops.log" 2>&1 &
  wait_ready ops 15 eval '[[ -s '"$(shq "$RUN/ops.pid")"' ]] && http_answers http://127.0.0.1:'"$p"'/'
  say "ops page ready on $p: http://localhost:$p/"
}

mon_stop() { # mon_stop COMPONENT...: in reverse start order (RabbitMQ's plugin goes too, unless RabbitMQ stops)
  local c
  for c in ops prometheus nginx_exporter mysqld_exporter redis_exporter; do
    [[ " $* " == *" $c "* ]] || continue
    stop_one "$c"
    [[ $c == prometheus && " $* " != *" rabbitmq "* ]] && rabbitmq_prometheus_off
  done
  return 0
}

mon_status() {
  local c p state
  for c in $MONITOR_COMPONENTS; do
    p=$(mon_port "$c")
    if pid_of "$c" >/dev/null; then state=running; else state=stopped; fi
    printf '%-15s %-9s %-6s %s\n' "$c" "$state" "$p" \
      "$([[ $c == prometheus || $c == ops ]] && [[ $state == running ]] && echo "http://localhost:$p/")"
  done
}
