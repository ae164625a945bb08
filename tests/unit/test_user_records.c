/* test_user_records.c - the user service's stored documents: passwords never shown, order
 * bodies that could act as a query or update refused, the order history assembled from legacy
 * and one-order documents, and the password-upgrade selector. */
#include "services/user/records.c"
#include "tests/unit/check.h"

#include <stdlib.h>

#define J(text) json_loads((text), JSON_DECODE_ANY, NULL)

/* true when v serialises (sorted keys) to want. */
static bool same(json_t *v, const char *want)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    bool ok = s && strcmp(s, want) == 0;
    if (!ok)
        fprintf(stderr, "got %s, want %s\n", s ? s : "(null)", want);
    free(s);
    return ok;
}

static void test_public(void)
{
    json_t *u = user_public(J("{\"_id\":\"a\",\"name\":\"stan\",\"password\":\"h\",\"email\":\"e\","
                              "\"orders\":3}"));
    CHECK(same(u, "{\"_id\":\"a\",\"email\":\"e\",\"name\":\"stan\"}"));
    json_decref(u);
    json_t *d = J("{\"password\":\"x\"}");
    CHECK_STR(user_stored_password(d), "x");
    json_decref(d);
    d = J("{\"password\":5}");
    CHECK(user_stored_password(d) == NULL);
    json_decref(d);
}

static void test_storable(void)
{
    const char *refused[] = {"{\"$set\":1}", "{\"a.b\":1}", "{\"items\":[{\"$where\":\"x\"}]}",
                             "[{\"x\":{\"y.z\":0}}]"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *v = J(refused[i]);
        CHECK(!user_storable_keys(v));
        CHECK(user_order_doc("stan", v) == NULL);
        json_decref(v);
    }
    json_t *deep = json_array(), *at = deep;
    for (int i = 0; i < 40; i++) {
        json_t *next = json_array();
        json_array_append_new(at, next);
        at = next;
    }
    CHECK(!user_storable_keys(deep));
    json_decref(deep);
    json_t *body = J("{\"orderid\":\"o1\",\"cart\":{\"total\":3,\"a$b\":1}}");
    json_t *doc = user_order_doc("stan", body);
    CHECK(same(doc, "{\"name\":\"stan\",\"order\":{\"cart\":{\"a$b\":1,\"total\":3},"
                    "\"orderid\":\"o1\"}}"));
    json_decref(doc);
    CHECK(user_order_doc("st\xff", body) == NULL); /* not UTF-8 */
    json_decref(body);
}

#define OID(c) "\"" c "00000000000000000000000\""

/* Takes a page of at most limit from docs (JSON text) at pos; true when the page is want, the
 * answer more and the next cursor next ("" when none). */
static bool take_is(const char *docs, const struct history_pos *pos, size_t limit, size_t fetch,
                    const char *want, bool more, const char *next)
{
    json_t *d = J(docs), *page = json_array(), *first = NULL;
    struct history_pos np;
    bool got = history_take(page, d, pos, limit, fetch, &np, &first);
    char cur[48] = "";
    if (got)
        history_cursor_format(&np, cur, sizeof(cur));
    bool ok = same(page, want) && got == more && strcmp(cur, next) == 0;
    if (!ok) {
        char *text = json_dumps(page, JSON_ENCODE_ANY);
        fprintf(stderr, "page %s more %d next %s\n", text, got, cur);
        free(text);
    }
    json_decref(first);
    json_decref(page);
    json_decref(d);
    return ok;
}

static void test_history_pages(void)
{
    struct history_pos pos;
    char buf[48];
    CHECK(history_cursor_parse(NULL, &pos) && pos.kind == 'h' && !pos.oid[0]);
    CHECK(history_cursor_parse("h0123456789abcdef01234567-12", &pos) && pos.index == 12);
    history_cursor_format(&pos, buf, sizeof(buf));
    CHECK_STR(buf, "h0123456789abcdef01234567-12");
    CHECK(history_cursor_parse("o0123456789abcdef01234567", &pos) && pos.kind == 'o');
    history_cursor_format(&pos, buf, sizeof(buf));
    CHECK_STR(buf, "o0123456789abcdef01234567");
    const char *bad[] = {"",
                         "x0123456789abcdef01234567",
                         "o0123456789abcdef0123456",
                         "o0123456789abcdef01234567-1",
                         "h0123456789abcdef01234567",
                         "h0123456789abcdef01234567-",
                         "h0123456789abcdef01234567-1x",
                         "h0123456789abcdef0123456g-1",
                         "h0123456789abcdef01234567-1234567890"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!history_cursor_parse(bad[i], &pos));

    /* one-order documents: a full page with one more document read names the last one taken */
    history_cursor_parse(NULL, &pos);
    pos.kind = 'o';
    const char *three = "[{\"_id\":" OID("a") ",\"order\":1},{\"_id\":" OID(
        "b") ",\"order\":2},"
             "{\"_id\":" OID("c") ",\"order\":3}]";
    CHECK(take_is(three, &pos, 2, 3, "[1,2]", true, "ob00000000000000000000000"));
    CHECK(take_is(three, &pos, 3, 4, "[1,2,3]", false, "")); /* all of them: no more */
    CHECK(take_is("[]", &pos, 3, 4, "[]", false, ""));
    /* legacy documents: a page ends inside one, or at its end with another after it */
    history_cursor_parse(NULL, &pos);
    const char *legacy =
        "[{\"_id\":" OID("a") ",\"history\":[1,2,3]},{\"_id\":" OID("b") ",\"history\":[4]}]";
    CHECK(take_is(legacy, &pos, 2, 2, "[1,2]", true, "ha00000000000000000000000-2"));
    CHECK(take_is(legacy, &pos, 3, 2, "[1,2,3]", true, "hb00000000000000000000000-0"));
    /* every order read, fetch documents read: there may be more after the last */
    CHECK(take_is(legacy, &pos, 9, 2, "[1,2,3,4]", true, "hb00000000000000000000000-1"));
    CHECK(take_is(legacy, &pos, 9, 3, "[1,2,3,4]", false, ""));
    /* from inside the first document */
    history_cursor_parse("ha00000000000000000000000-2", &pos);
    CHECK(take_is(legacy, &pos, 9, 3, "[3,4]", false, ""));
}

static void test_upgrade_filter(void)
{
    json_t *d = J("{\"_id\":\"5f1e2d3c4b5a697887766554\",\"password\":\"old\"}");
    json_t *f = user_upgrade_filter(d, "old");
    CHECK(same(f, "{\"_id\":{\"$oid\":\"5f1e2d3c4b5a697887766554\"},\"password\":\"old\"}"));
    json_decref(f);
    json_decref(d);
    d = J("{\"_id\":\"stan\"}");
    f = user_upgrade_filter(d, "p");
    CHECK(same(f, "{\"_id\":\"stan\",\"password\":\"p\"}"));
    json_decref(f);
    json_decref(d);
    d = J("{\"name\":\"stan\"}");
    CHECK(user_upgrade_filter(d, "p") == NULL);
    json_decref(d);
}

int main(void)
{
    test_public();
    test_storable();
    test_history_pages();
    test_upgrade_filter();
    return check_report("user_records");
}
