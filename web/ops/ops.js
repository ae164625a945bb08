// The operations page: reads Prometheus's query API (proxied by this page's own nginx under /prometheus/)
// once a second and shows each service's health, version and request rate, the orders queue, dispatch's
// consumers and orders dispatched, the backends and the active alerts.
const API = "/prometheus/api/v1/";
const SERVICES = ["catalogue", "user", "cart", "shipping", "payment", "ratings", "dispatch"];

async function query(q) {
  const r = await fetch(API + "query?query=" + encodeURIComponent(q), { cache: "no-store" });
  if (!r.ok) throw new Error("Prometheus answered " + r.status);
  return (await r.json()).data.result;
}

async function range(q, seconds) {
  const end = Date.now() / 1000;
  const url = API + "query_range?query=" + encodeURIComponent(q) + "&start=" + (end - seconds) + "&end=" + end + "&step=2";
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error("Prometheus answered " + r.status);
  return (await r.json()).data.result;
}

const byLabel = (rows, label) => Object.fromEntries(rows.map((r) => [r.metric[label], r]));
const num = (row) => (row ? Number(row.value[1]) : NaN);
const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const text = (id, s) => { document.getElementById(id).textContent = s; };

function cell(tr, content, cls) {
  const td = document.createElement("td");
  td.textContent = content;
  if (cls) td.className = cls;
  tr.append(td);
}

async function services() {
  const [up, info, rate, errors] = await Promise.all([
    query('up{job="shop"}'), query('shop_build_info{job="shop"}'),
    query("service:http_requests:rate1m"), query("service:http_requests_5xx:ratio_rate5m"),
  ]);
  const u = byLabel(up, "service"), v = byLabel(info, "service"), r = byLabel(rate, "service"), e = byLabel(errors, "service");
  const rows = SERVICES.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.service = s;
    const ok = num(u[s]) === 1;
    cell(tr, s);
    cell(tr, u[s] ? (ok ? "up" : "down") : "not scraped", ok ? "up" : "down");
    cell(tr, v[s] ? v[s].metric.version : "–");
    cell(tr, fmt(num(r[s]), 1));
    cell(tr, Number.isFinite(num(e[s])) ? fmt(100 * num(e[s]), 1) + " %" : "–");
    return tr;
  });
  document.getElementById("services").replaceChildren(...rows);
}

async function queue() {
  const [ready, consumers, done, rate, dead, deadq, spark] = await Promise.all([
    query('queue:rabbitmq_queue_messages_ready:sum{queue="orders"}'),
    query('queue:rabbitmq_queue_consumers:sum{queue="orders"}'),
    query('sum(orders_dispatched_total{job="shop"})'), query("sum(service:orders_dispatched:rate1m)"),
    query('sum(dispatch_dead_letters_total{job="shop"})'),
    query('queue:rabbitmq_queue_messages_ready:sum{queue="orders.dead"}'),
    range('queue:rabbitmq_queue_messages_ready:sum{queue="orders"}', 300),
  ]);
  const depth = num(ready[0]);
  text("queue-depth", fmt(depth));
  text("consumers", fmt(num(consumers[0])));
  text("dispatched", fmt(num(done[0])));
  text("dispatch-rate", fmt(num(rate[0]), 2));
  text("dead", dead.length || deadq.length ? fmt(num(dead[0]) || 0) + " sent, " + fmt(num(deadq[0]) || 0) + " waiting" : "–");
  const points = spark.length ? spark[0].values.map(([, v]) => Number(v)) : [];
  text("queue-peak", points.length ? fmt(Math.max(...points)) : "–");
  const max = Math.max(10, ...points);
  document.getElementById("queue-bar").style.width = Math.min(100, (100 * (depth || 0)) / max) + "%";
  const d = points.map((v, i) => (i ? "L" : "M") + ((300 * i) / Math.max(1, points.length - 1)).toFixed(1) + "," + (58 - (56 * v) / max).toFixed(1)).join(" ");
  document.querySelector("#queue-spark path").setAttribute("d", d);
}

async function backends() {
  const [targets, alerts] = await Promise.all([
    query('up{job!="shop"}'),
    fetch(API + "alerts", { cache: "no-store" }).then((r) => r.json()),
  ]);
  const items = targets.map((t) => {
    const li = document.createElement("li");
    const ok = num(t) === 1;
    li.textContent = t.metric.job + ": " + (ok ? "up" : "down");
    li.className = ok ? "up" : "down";
    return li;
  });
  document.getElementById("backends").replaceChildren(...items);
  const list = (alerts.data.alerts || []).map((a) => {
    const li = document.createElement("li");
    li.className = a.state === "firing" ? "down" : "pending";
    li.textContent = a.labels.alertname + " (" + a.state + "): " + (a.annotations.summary || "");
    li.dataset.alert = a.labels.alertname;
    return li;
  });
  if (!list.length) {
    const li = document.createElement("li");
    li.className = "up";
    li.textContent = "no alert";
    list.push(li);
  }
  document.getElementById("alerts").replaceChildren(...list);
}

async function refresh() {
  try {
    await Promise.all([services(), queue(), backends()]);
    text("updated", "updated " + new Date().toLocaleTimeString());
  } catch (err) {
    text("updated", "Prometheus unreachable: " + err.message);
  }
  setTimeout(refresh, 1000);
}

refresh();
