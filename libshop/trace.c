/* trace.c - spans and their export (see trace.h). A finished span is encoded at once as its
 * OTLP/JSON object into a slot of a fixed ring; the exporter thread sends the oldest slots as one
 * POST and frees them only then, so the ring never holds more than its size and a span that finds
 * it full is dropped and counted, whatever the collector does. */
#include "libshop/trace.h"
#include "libshop/conf.h"
#include "libshop/http.h"
#include "libshop/log.h"
#include "libshop/metrics.h"
#include "libshop/random.h"
#include "libshop/util.h"
#include "shop_version.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_SIZE = 1536 };

enum sampler { ALWAYS_ON, ALWAYS_OFF, RATIO };

static struct {
    bool exporting;
    bool parent_based;
    enum sampler root; /* the decision for a span without a parent */
    uint64_t ratio_bound;
    char service[128];
    char url[512];
    char *resource; /* OTLP JSON of the resource attributes */
    struct curl_slist *headers;
    long delay_ms, timeout_ms;
    size_t cap, batch;
} cfg = {.root = ALWAYS_ON, .parent_based = true};

/* The ring: slots [head, head + count) are queued; the exporter reads them without the lock. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char (*slot)[SLOT_SIZE];
    unsigned short *len;
    size_t head, count;
    bool stop;
    pthread_t thread;
    bool running;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static struct shop_counter c_queued =
    SHOP_COUNTER_INIT("shop_trace_spans_queued_total", "Spans queued for export.", SHOP_NUM_JS);
static struct shop_counter c_exported = SHOP_COUNTER_INIT(
    "shop_trace_spans_exported_total", "Spans the collector accepted.", SHOP_NUM_JS);
static struct shop_counter c_dropped =
    SHOP_COUNTER_INIT("shop_trace_spans_dropped_total",
                      "Spans dropped because the export queue was full.", SHOP_NUM_JS);
static struct shop_counter c_failed =
    SHOP_COUNTER_INIT("shop_trace_spans_failed_total",
                      "Spans lost to a failed export (collector down or slow).", SHOP_NUM_JS);

static _Thread_local struct shop_span *current;

/* ---- ids ------------------------------------------------------------------------------------ */

static void random_id(uint8_t *id, size_t n)
{
    static _Thread_local uint64_t s[2];
    if (!s[0] && !s[1])
        shop_random_bytes(s, sizeof(s));
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = s[0], y = s[1]; /* xorshift128+ */
        s[0] = y;
        x ^= x << 23;
        s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        uint64_t v = s[1] + y;
        memcpy(id + i, &v, n - i < 8 ? n - i : 8);
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

int shop_traceparent_parse(const char *v, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags)
{
    /* version 00 is exactly 55 bytes; a later version may append fields after a '-' */
    if (!v || strlen(v) < SHOP_TRACEPARENT_LEN || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return -1;
    uint8_t ver;
    if (unhex(v, &ver, 1) || ver == 0xff || (ver == 0 && v[SHOP_TRACEPARENT_LEN] != '\0') ||
        (ver != 0 && v[SHOP_TRACEPARENT_LEN] != '\0' && v[SHOP_TRACEPARENT_LEN] != '-'))
        return -1;
    if (unhex(v + 3, trace_id, 16) || unhex(v + 36, span_id, 8) || unhex(v + 53, flags, 1))
        return -1;
    return all_zero(trace_id, 16) || all_zero(span_id, 8) ? -1 : 0;
}

/* ---- sampling ------------------------------------------------------------------------------- */

static bool sample_root(const uint8_t trace_id[16])
{
    if (cfg.root != RATIO)
        return cfg.root == ALWAYS_ON;
    uint64_t x = 0; /* the trace id's last 8 bytes, as the specification's ratio sampler reads it */
    for (int i = 8; i < 16; i++)
        x = (x << 8) | trace_id[i];
    return (x >> 1) < cfg.ratio_bound;
}

/* ---- spans ---------------------------------------------------------------------------------- */

static long long unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void vbegin(struct shop_span *s, enum shop_span_kind kind, const char *traceparent,
                   const char *new_trace_id, const char *fmt, va_list ap)
{
    struct shop_span *up = current;
    s->kind = kind;
    s->error = false;
    s->status_msg[0] = '\0';
    s->attrs_len = 0;
    s->up = up;
    s->request_id = up ? up->request_id : NULL;
    s->flags = 0;
    bool sampled;
    if (up) {
        memcpy(s->trace_id, up->trace_id, 16);
        memcpy(s->parent_id, up->span_id, 8);
        s->flags = up->flags;
        sampled = up->flags & 1;
    } else if (shop_traceparent_parse(traceparent, s->trace_id, s->parent_id, &s->flags) == 0) {
        sampled = cfg.parent_based ? (s->flags & 1) : sample_root(s->trace_id);
    } else {
        if (!new_trace_id || strlen(new_trace_id) != 32 || unhex(new_trace_id, s->trace_id, 16) ||
            all_zero(s->trace_id, 16))
            random_id(s->trace_id, 16);
        memset(s->parent_id, 0, 8);
        sampled = sample_root(s->trace_id);
    }
    s->flags = (uint8_t)((s->flags & ~1u) | (sampled ? 1u : 0u));
    do
        random_id(s->span_id, 8);
    while (all_zero(s->span_id, 8));
    s->recording = sampled && cfg.exporting;
    if (s->recording) {
        vsnprintf(s->name, sizeof(s->name), fmt, ap);
        s->start_unix_ns = unix_ns();
    }
    current = s;
}

void shop_span_begin(struct shop_span *s, enum shop_span_kind kind, const char *traceparent,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vbegin(s, kind, traceparent, NULL, fmt, ap);
    va_end(ap);
}

void shop_span_begin_server(struct shop_span *s, const char *traceparent, const char *new_trace_id,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vbegin(s, SHOP_SPAN_SERVER, traceparent, new_trace_id, fmt, ap);
    va_end(ap);
}

static void put(char *out, size_t *len, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t *len, size_t size, const char *fmt, ...)
{
    if (*len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n < size - *len ? *len + (size_t)n : size - 1;
}

/* Adds one attribute; value_json is the OTLP AnyValue ("{\"intValue\":\"3\"}"), or NULL with a
 * string value. An attribute that does not fit whole is left out. */
static void add_attr(struct shop_span *s, const char *key, const char *str, const char *value_json)
{
    if (!s->recording)
        return;
    char a[SHOP_SPAN_ATTRS_MAX];
    size_t n = 0;
    put(a, &n, sizeof(a), "%s{\"key\":\"", s->attrs_len ? "," : "");
    shop_json_escape_to(a, &n, sizeof(a), 0, key);
    if (value_json) {
        put(a, &n, sizeof(a), "\",\"value\":%s}", value_json);
    } else {
        put(a, &n, sizeof(a), "\",\"value\":{\"stringValue\":\"");
        shop_json_escape_to(a, &n, sizeof(a), 3, str);
        put(a, &n, sizeof(a), "\"}}");
    }
    if (n < sizeof(a) - 1 && s->attrs_len + n < sizeof(s->attrs)) {
        memcpy(s->attrs + s->attrs_len, a, n);
        s->attrs_len += n;
    }
}

void shop_span_attr_str(struct shop_span *s, const char *key, const char *value)
{
    add_attr(s, key, value ? value : "", NULL);
}

void shop_span_attr_int(struct shop_span *s, const char *key, long long value)
{
    char v[48];
    snprintf(v, sizeof(v), "{\"intValue\":\"%lld\"}", value);
    add_attr(s, key, NULL, v);
}

void shop_span_fail(struct shop_span *s, const char *msg)
{
    s->error = true;
    snprintf(s->status_msg, sizeof(s->status_msg), "%s", msg ? msg : "");
}

/* Encodes the finished span as its OTLP/JSON object; returns the length (0: did not fit). */
static size_t encode(const struct shop_span *s, long long end_ns, char *out, size_t size)
{
    char tid[33], sid[17], pid[17];
    size_t n = 0;
    hex(tid, s->trace_id, 16);
    hex(sid, s->span_id, 8);
    hex(pid, s->parent_id, 8);
    put(out, &n, size, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", tid, sid);
    if (!all_zero(s->parent_id, 8))
        put(out, &n, size, ",\"parentSpanId\":\"%s\"", pid);
    put(out, &n, size, ",\"flags\":%u,\"name\":\"", 0x100u | (s->flags & 0xffu));
    shop_json_escape_to(out, &n, size, 0, s->name);
    put(out, &n, size, "\",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\"",
        (int)s->kind, s->start_unix_ns, end_ns);
    put(out, &n, size, ",\"attributes\":[%.*s]", (int)s->attrs_len, s->attrs);
    if (s->error) {
        put(out, &n, size, ",\"status\":{\"code\":2,\"message\":\"");
        shop_json_escape_to(out, &n, size, 0, s->status_msg);
        put(out, &n, size, "\"}}");
    } else {
        put(out, &n, size, ",\"status\":{\"code\":0}}");
    }
    return n < size - 1 ? n : 0;
}

static void enqueue(const struct shop_span *s)
{
    char buf[SLOT_SIZE];
    size_t n = encode(s, unix_ns(), buf, sizeof(buf));
    if (n == 0)
        return;
    pthread_mutex_lock(&q.lock);
    if (q.count == cfg.cap) {
        pthread_mutex_unlock(&q.lock);
        shop_counter_add(&c_dropped, 1);
        return;
    }
    size_t i = (q.head + q.count) % cfg.cap;
    memcpy(q.slot[i], buf, n);
    q.len[i] = (unsigned short)n;
    q.count++;
    if (q.count >= cfg.batch)
        pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.lock);
    shop_counter_add(&c_queued, 1);
}

void shop_span_end(struct shop_span *s)
{
    if (s->recording)
        enqueue(s);
    if (current == s)
        current = s->up;
}

struct shop_span *shop_span_current(void)
{
    return current;
}

struct shop_span *shop_span_set_current(struct shop_span *s)
{
    struct shop_span *was = current;
    current = s;
    return was;
}

bool shop_trace_header(char *out, size_t size)
{
    if (!current || size < SHOP_TRACEPARENT_LEN + 1) {
        if (size)
            out[0] = '\0';
        return false;
    }
    char tid[33], sid[17];
    hex(tid, current->trace_id, 16);
    hex(sid, current->span_id, 8);
    snprintf(out, size, "00-%s-%s-%02x", tid, sid, current->flags);
    return true;
}

bool shop_trace_ids(char trace_hex[33], char span_hex[17])
{
    if (!current)
        return false;
    hex(trace_hex, current->trace_id, 16);
    hex(span_hex, current->span_id, 8);
    return true;
}

/* ---- the exporter --------------------------------------------------------------------------- */

/* At the stop a slow or silent collector gets STOP_GRACE_MS more, not the whole export timeout. */
enum { STOP_GRACE_MS = 2000 };
static _Atomic long long stop_deadline_ns;

static int export_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud, (void)dt, (void)dn, (void)ut, (void)un;
    long long d = stop_deadline_ns;
    return d && shop_now_ns() > d; /* non-zero aborts the transfer */
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* POSTs k queued slots starting at head as one ExportTraceServiceRequest; true on a 2xx. */
static bool post_batch(CURL *h, struct shop_buf *body, size_t head, size_t k)
{
    shop_buf_reset(body);
    shop_buf_printf(body,
                    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[%s]},\"scopeSpans\":[{"
                    "\"scope\":{\"name\":\"libshop\",\"version\":\"%s\"},\"spans\":[",
                    cfg.resource, SHOP_VERSION);
    for (size_t j = 0; j < k; j++) {
        size_t i = (head + j) % cfg.cap;
        if (j)
            shop_buf_putc(body, ',');
        shop_buf_append(body, q.slot[i], q.len[i]);
    }
    shop_buf_puts(body, "]}]}]}");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body->len);
    long code = 0;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (code / 100 == 2)
        return true;
    static long long last_warn;
    long long now = shop_now_ns();
    if (now - last_warn > 60 * 1000000000LL) { /* at most one line a minute */
        last_warn = now;
        shop_log_warnx("trace export to %s failed: %s", cfg.url,
                       rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 2xx");
    }
    return false;
}

static void *exporter(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    struct shop_buf body;
    shop_buf_init(&body, cfg.batch * SLOT_SIZE + 65536);
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, cfg.url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, cfg.headers);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg.timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg.timeout_ms);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, export_progress);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    pthread_mutex_lock(&q.lock);
    for (;;) {
        if (q.count < cfg.batch && !q.stop) {
            struct timespec until = shop_deadline(CLOCK_REALTIME, cfg.delay_ms);
            pthread_cond_timedwait(&q.wake, &q.lock, &until);
        }
        if (q.count == 0) {
            if (q.stop)
                break;
            continue;
        }
        size_t head = q.head, k = q.count < cfg.batch ? q.count : cfg.batch;
        bool stopping = q.stop;
        pthread_mutex_unlock(&q.lock);
        bool ok = h && post_batch(h, &body, head, k);
        shop_counter_add(ok ? &c_exported : &c_failed, (double)k);
        pthread_mutex_lock(&q.lock);
        q.head = (q.head + k) % cfg.cap;
        q.count -= k;
        if (stopping && (q.count == 0 || !ok)) { /* at the stop, one failed export ends it */
            shop_counter_add(&c_failed, (double)q.count);
            q.count = 0;
            break;
        }
    }
    pthread_mutex_unlock(&q.lock);
    shop_buf_cleanup(&body);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

/* ---- configuration -------------------------------------------------------------------------- */

static void read_sampler(void)
{
    const char *name = shop_conf_str("OTEL_TRACES_SAMPLER", "parentbased_always_on");
    const char *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
    cfg.parent_based = strncmp(name, "parentbased_", 12) == 0;
    const char *base = cfg.parent_based ? name + 12 : name;
    if (strcmp(base, "always_off") == 0) {
        cfg.root = ALWAYS_OFF;
    } else if (strcmp(base, "traceidratio") == 0) {
        char *end = NULL;
        double r = arg ? strtod(arg, &end) : 1.0;
        if (!arg || end == arg || *end || r < 0 || r > 1)
            r = 1.0; /* the specification's default for a missing or invalid argument */
        cfg.root = RATIO;
        cfg.ratio_bound = (uint64_t)(r * 9223372036854775807.0);
    } else {
        if (strcmp(base, "always_on") != 0)
            shop_log_warnx("OTEL_TRACES_SAMPLER=%s is not known: using parentbased_always_on",
                           name);
        cfg.root = ALWAYS_ON;
    }
}

/* Parses "k=v,k2=v2" (values percent-encoded, as OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_EXPORTER_OTLP_HEADERS are) and calls fn for each pair. */
static void each_pair(const char *list, void (*fn)(const char *k, const char *v, void *ud),
                      void *ud)
{
    char *copy = shop_xstrdup(list ? list : ""), *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = item, *v = eq + 1;
        while (*k == ' ')
            k++;
        for (char *e = eq - 1; e >= k && *e == ' '; e--)
            *e = '\0';
        char dec[512];
        if (*k && strlen(v) < sizeof(dec) && shop_pct_decode(v, strlen(v), dec) >= 0)
            fn(k, dec, ud);
    }
    free(copy);
}

static void add_resource(const char *k, const char *v, void *ud)
{
    struct shop_buf *b = ud;
    if (strcmp(k, "service.name") == 0)
        return; /* OTEL_SERVICE_NAME or the service's own name wins */
    char e[1100];
    size_t n = 0;
    put(e, &n, sizeof(e), ",{\"key\":\"");
    shop_json_escape_to(e, &n, sizeof(e), 32, k);
    put(e, &n, sizeof(e), "\",\"value\":{\"stringValue\":\"");
    shop_json_escape_to(e, &n, sizeof(e), 4, v);
    put(e, &n, sizeof(e), "\"}}");
    shop_buf_append(b, e, n);
}

static void add_header(const char *k, const char *v, void *ud)
{
    (void)ud;
    char line[700];
    snprintf(line, sizeof(line), "%s: %s", k, v);
    cfg.headers = curl_slist_append(cfg.headers, line);
}

static void read_resource(const char *service)
{
    const char *attrs = getenv("OTEL_RESOURCE_ATTRIBUTES");
    snprintf(cfg.service, sizeof(cfg.service), "%s", shop_conf_str("OTEL_SERVICE_NAME", service));
    struct shop_buf b;
    shop_buf_init(&b, 16384);
    char first[400];
    size_t n = 0;
    put(first, &n, sizeof(first), "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"");
    shop_json_escape_to(first, &n, sizeof(first), 8, cfg.service);
    put(first, &n, sizeof(first), "\"}}");
    shop_buf_append(&b, first, n);
    shop_buf_printf(&b,
                    ",{\"key\":\"service.version\",\"value\":{\"stringValue\":\"%s\"}}"
                    ",{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"libshop\"}}"
                    ",{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"c\"}}",
                    SHOP_VERSION);
    each_pair(attrs, add_resource, &b);
    cfg.resource = shop_xstrndup(b.data ? b.data : "", b.len);
    shop_buf_cleanup(&b);
}

static bool read_endpoint(void)
{
    const char *traces = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (shop_conf_bool("OTEL_SDK_DISABLED", false) ||
        strcmp(shop_conf_str("OTEL_TRACES_EXPORTER", "otlp"), "none") == 0)
        return false;
    if (traces && *traces) {
        snprintf(cfg.url, sizeof(cfg.url), "%s", traces); /* used as given (specification) */
    } else if (base && *base) {
        size_t n = strlen(base);
        snprintf(cfg.url, sizeof(cfg.url), "%.*s/v1/traces",
                 (int)(n && base[n - 1] == '/' ? n - 1 : n), base);
    } else {
        return false;
    }
    const char *proto = shop_conf_str(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL|OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    if (strcmp(proto, "http/json") != 0)
        shop_log_info("OTLP protocol %s asked: libshop sends http/json (every OTLP/HTTP receiver "
                      "takes both)",
                      proto);
    cfg.headers = curl_slist_append(NULL, "Content-Type: application/json");
    each_pair(shop_conf_str("OTEL_EXPORTER_OTLP_TRACES_HEADERS|OTEL_EXPORTER_OTLP_HEADERS", ""),
              add_header, NULL);
    return true;
}

void shop_trace_init(const char *service)
{
    read_sampler();
    if (q.running || !read_endpoint())
        return;
    read_resource(service);
    cfg.delay_ms = shop_conf_long("OTEL_BSP_SCHEDULE_DELAY", 5000, 1, 3600000);
    cfg.timeout_ms = shop_conf_long("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT|OTEL_EXPORTER_OTLP_TIMEOUT",
                                    10000, 1, 600000);
    cfg.cap = (size_t)shop_conf_long("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1, 1 << 20);
    cfg.batch = (size_t)shop_conf_long("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 1 << 20);
    if (cfg.batch > cfg.cap)
        cfg.batch = cfg.cap; /* as the specification asks */
    q.stop = false;
    q.head = q.count = 0;
    stop_deadline_ns = 0;
    q.slot = shop_xcalloc(cfg.cap, SLOT_SIZE);
    q.len = shop_xcalloc(cfg.cap, sizeof(q.len[0]));
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the service's threads */
    q.running = pthread_create(&q.thread, NULL, exporter, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    cfg.exporting = q.running;
    if (q.running)
        shop_log_info("tracing: exporting spans of %s to %s (queue %zu, batch %zu, every %ld ms)",
                      cfg.service, cfg.url, cfg.cap, cfg.batch, cfg.delay_ms);
    else
        shop_log_warnx("tracing: cannot start the exporter thread: spans are not exported");
}

void shop_trace_shutdown(void)
{
    if (!q.running)
        return;
    cfg.exporting = false;
    stop_deadline_ns = shop_now_ns() + STOP_GRACE_MS * 1000000LL;
    pthread_mutex_lock(&q.lock);
    q.stop = true;
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.lock);
    pthread_join(q.thread, NULL);
    q.running = false;
    free(q.slot);
    free(q.len);
    free(cfg.resource);
    curl_slist_free_all(cfg.headers);
    q.slot = NULL;
    q.len = NULL;
    cfg.resource = NULL;
    cfg.headers = NULL;
}

void shop_trace_metrics_register(void)
{
    static bool registered;
    if (registered)
        return;
    registered = true;
    shop_counter_register(&c_queued);
    shop_counter_register(&c_exported);
    shop_counter_register(&c_dropped);
    shop_counter_register(&c_failed);
}

bool shop_trace_exporting(void)
{
    return cfg.exporting;
}

void shop_trace_stats(struct shop_trace_stats *st)
{
    st->queued = (unsigned long long)c_queued.value;
    st->exported = (unsigned long long)c_exported.value;
    st->dropped = (unsigned long long)c_dropped.value;
    st->failed = (unsigned long long)c_failed.value;
    pthread_mutex_lock(&q.lock);
    st->in_queue = q.count;
    pthread_mutex_unlock(&q.lock);
}
