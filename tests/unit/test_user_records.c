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
    json_t *u =
        user_public(J("{\"_id\":\"a\",\"name\":\"stan\",\"password\":\"h\",\"email\":\"e\"}"));
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

/* true when the history of the documents docs (JSON text) is want ("null" for none). */
static bool history_is(const char *docs, const char *name, const char *want)
{
    json_t *d = J(docs), *h = user_history(d, name);
    bool ok = h ? same(h, want) : strcmp(want, "null") == 0;
    json_decref(h);
    json_decref(d);
    return ok;
}

static void test_history(void)
{
    CHECK(user_history(NULL, "stan") == NULL);
    CHECK(history_is("[]", "stan", "null"));
    /* legacy orders first, then the one-order documents; _id of the first legacy document */
    CHECK(history_is("[{\"_id\":\"1\",\"name\":\"stan\",\"order\":{\"orderid\":\"a\"}},"
                     "{\"_id\":\"2\",\"name\":\"stan\",\"history\":[{\"orderid\":\"old1\"},"
                     "{\"orderid\":\"old2\"}]},"
                     "{\"_id\":\"3\",\"name\":\"stan\",\"order\":{\"orderid\":\"b\"}}]",
                     "stan",
                     "{\"_id\":\"2\",\"history\":[{\"orderid\":\"old1\"},{\"orderid\":\"old2\"},"
                     "{\"orderid\":\"a\"},{\"orderid\":\"b\"}],\"name\":\"stan\"}"));
    CHECK(history_is("[{\"_id\":\"9\",\"order\":1},{\"_id\":\"10\",\"order\":2}]", "x",
                     "{\"_id\":\"9\",\"history\":[1,2],\"name\":\"x\"}"));
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
    test_history();
    test_upgrade_filter();
    return check_report("user_records");
}
