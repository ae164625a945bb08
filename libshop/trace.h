/* trace.h - W3C Trace Context and spans. Every request continues the caller's trace (or starts
 * one), every backend call is a child span, and outbound calls carry `traceparent`. When an OTLP
 * endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
 * sampled spans are queued (bounded; a full queue drops and counts) and sent as OTLP/HTTP JSON by
 * one background thread: a request never waits for the exporter. The ids are kept even when
 * nothing is exported, for the logs. Spans live on the caller's stack; the thread's current span
 * is the parent of the next one begun on that thread. */
#ifndef SHOP_TRACE_H
#define SHOP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum shop_span_kind {
    SHOP_SPAN_INTERNAL = 1,
    SHOP_SPAN_SERVER = 2,
    SHOP_SPAN_CLIENT = 3,
    SHOP_SPAN_PRODUCER = 4,
    SHOP_SPAN_CONSUMER = 5,
};

#define SHOP_SPAN_ATTRS_MAX  640 /* OTLP JSON of a span's attributes */
#define SHOP_TRACEPARENT_LEN 55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */

struct shop_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8]; /* all zero for a root span */
    uint8_t flags;        /* W3C trace-flags: 01 = sampled */
    bool recording;       /* sampled and an exporter is configured: attributes are kept */
    bool error;
    enum shop_span_kind kind;
    char name[96];
    char status_msg[96];
    long long start_unix_ns;
    const char *request_id; /* the server span's request id, inherited by its children */
    struct shop_span *up;   /* the thread's current span before this one */
    size_t attrs_len;
    char attrs[SHOP_SPAN_ATTRS_MAX];
};

/* Reads the OTEL_* variables (service name, resource attributes, sampler, endpoint, batch knobs)
 * and starts the exporter thread when an endpoint is set. Call once in main before serving. */
void shop_trace_init(const char *service);
/* Stops the exporter after a last export of what is queued (at most the export timeout). */
void shop_trace_shutdown(void);
/* Adds the exporter's counters to /metrics (after the service's own: shop_server_run calls it). */
void shop_trace_metrics_register(void);
/* True when spans are exported. */
bool shop_trace_exporting(void);

/* Begins s as the thread's current span: a child of the current span, or of the context in
 * traceparent (a W3C header value; NULL or malformed: a new trace) when there is none. */
void shop_span_begin(struct shop_span *s, enum shop_span_kind kind, const char *traceparent,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A request's server span: without a valid traceparent, a new trace named new_trace_id (32 lower
 * case hex digits: the gateway's X-Shop-Trace-Id, so its access log and the trace agree) or a
 * random one. */
void shop_span_begin_server(struct shop_span *s, const char *traceparent, const char *new_trace_id,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void shop_span_attr_str(struct shop_span *s, const char *key, const char *value);
void shop_span_attr_int(struct shop_span *s, const char *key, long long value);
/* Marks the span failed with a short description (OTLP status ERROR). */
void shop_span_fail(struct shop_span *s, const char *msg);
/* Ends s: queues it for export when recording, and makes its parent current again. */
void shop_span_end(struct shop_span *s);

/* The calling thread's current span, or NULL. */
struct shop_span *shop_span_current(void);
/* Makes s the calling thread's current span and returns the one it replaces (the event loop
 * keeps each coroutine's current span across its switches). */
struct shop_span *shop_span_set_current(struct shop_span *s);
/* The traceparent value of the current span into out (SHOP_TRACEPARENT_LEN + 1 bytes), for an
 * outbound call; returns false (out empty) when no span is current. */
bool shop_trace_header(char *out, size_t size);
/* The current span's trace and span ids in hex (33 and 17 bytes); false when none. */
bool shop_trace_ids(char trace_hex[33], char span_hex[17]);

/* Parses a W3C traceparent value; exposed for the unit and fuzz tests. Returns 0, or -1 when it
 * is malformed (or its ids are all zero). */
int shop_traceparent_parse(const char *v, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags);

/* Queue figures for /metrics and tests. */
struct shop_trace_stats {
    unsigned long long queued, exported, dropped, failed;
    unsigned long long in_queue;
};
void shop_trace_stats(struct shop_trace_stats *st);

#endif
