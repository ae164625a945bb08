/* records.c - the user service's stored documents and their views (see records.h). */
#include "services/user/records.h"
#include "libshop/json.h"

#include <string.h>

json_t *user_public(json_t *doc)
{
    json_object_del(doc, "password");
    return doc;
}

const char *user_stored_password(const json_t *doc)
{
    return json_string_value(json_object_get(doc, "password"));
}

static bool storable(const json_t *v, int depth)
{
    const char *k;
    json_t *m;
    if (depth > 32)
        return false;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!storable(json_array_get(v, i), depth + 1))
                return false;
        return true;
    }
    if (!json_is_object(v))
        return true;
    json_object_foreach(shop_json_mut(v), k, m)
    {
        if (k[0] == '$' || strchr(k, '.') || !storable(m, depth + 1))
            return false;
    }
    return true;
}

bool user_storable_keys(const json_t *v)
{
    return storable(v, 0);
}

json_t *user_order_doc(const char *name, const json_t *body)
{
    if (!user_storable_keys(body))
        return NULL;
    /* NULL when name is not UTF-8: store nothing rather than an empty document */
    return json_pack("{s:s,s:O}", "name", name, "order", shop_json_mut(body));
}

/* Adds one stored document to the history being assembled: a legacy document's orders to
 * legacy, a one-order document's order to recent. */
static void collect(json_t *legacy, json_t *recent, const json_t *doc)
{
    json_t *old = json_object_get(doc, "history"), *one = json_object_get(doc, "order");
    if (json_is_array(old))
        json_array_extend(legacy, old);
    else if (one)
        json_array_append(recent, one);
}

json_t *user_history(const json_t *docs, const char *name)
{
    json_t *legacy = json_array(), *recent = json_array();
    json_t *first_legacy = NULL, *first = NULL, *out = NULL;
    for (size_t i = 0; i < json_array_size(docs); i++) {
        json_t *doc = json_array_get(docs, i), *id = json_object_get(doc, "_id");
        if (!first)
            first = json_incref(id);
        if (!first_legacy && json_is_array(json_object_get(doc, "history")))
            first_legacy = json_incref(id);
        collect(legacy, recent, doc);
    }
    if (json_array_size(docs) > 0) {
        json_array_extend(legacy, recent);
        out = json_pack("{s:O?,s:s,s:O}", "_id", first_legacy ? first_legacy : first, "name", name,
                        "history", legacy);
    }
    json_decref(first);
    json_decref(first_legacy);
    json_decref(legacy);
    json_decref(recent);
    return out;
}

static bool hex24(const char *s)
{
    if (!s || strlen(s) != 24)
        return false;
    return strspn(s, "0123456789abcdefABCDEF") == 24;
}

json_t *user_upgrade_filter(const json_t *doc, const char *old)
{
    json_t *id = json_object_get(doc, "_id");
    if (!id)
        return NULL;
    const char *s = json_string_value(id);
    json_t *sel = hex24(s) ? json_pack("{s:s}", "$oid", s) : json_incref(id);
    return json_pack("{s:o,s:s}", "_id", sel, "password", old);
}
