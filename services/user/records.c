/* records.c - the user service's stored documents and their views (see records.h). */
#include "services/user/records.h"
#include "libshop/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *user_public(json_t *doc)
{
    json_object_del(doc, "password");
    json_object_del(doc, "orders");
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

static bool hex24(const char *s)
{
    if (!s || strlen(s) != 24)
        return false;
    return strspn(s, "0123456789abcdefABCDEF") == 24;
}

/* ---- history pages ------------------------------------------------------------------------ */

bool history_cursor_parse(const char *s, struct history_pos *pos)
{
    memset(pos, 0, sizeof(*pos));
    pos->kind = 'h';
    if (!s)
        return true;
    if ((s[0] != 'h' && s[0] != 'o') || strlen(s) < 25)
        return false;
    memcpy(pos->oid, s + 1, 24);
    if (!hex24(pos->oid))
        return false;
    pos->kind = s[0];
    const char *rest = s + 25;
    if (pos->kind == 'o')
        return *rest == '\0';
    if (*rest != '-' || strlen(rest + 1) < 1 || strlen(rest + 1) > 9 ||
        strspn(rest + 1, "0123456789") != strlen(rest + 1))
        return false;
    pos->index = (size_t)strtoul(rest + 1, NULL, 10);
    return true;
}

void history_cursor_format(const struct history_pos *pos, char *buf, size_t len)
{
    if (pos->kind == 'h')
        snprintf(buf, len, "h%s-%zu", pos->oid, pos->index);
    else
        snprintf(buf, len, "o%s", pos->oid);
}

json_t *history_filter(const char *name, const struct history_pos *pos)
{
    const char *field = pos->kind == 'h' ? "history" : "order";
    json_t *f = json_pack("{s:s,s:{s:b}}", "name", name, field, "$exists", 1);
    if (f && pos->oid[0])
        json_object_set_new(
            f, "_id", json_pack("{s:{s:s}}", pos->kind == 'h' ? "$gte" : "$gt", "$oid", pos->oid));
    return f;
}

json_t *history_options(size_t fetch)
{
    return json_pack("{s:{s:i},s:I}", "sort", "_id", 1, "limit", (json_int_t)fetch);
}

/* The orders a document holds: its history array, or its one order (borrowed / new array). */
static json_t *orders_of(const json_t *doc, json_t **own)
{
    json_t *old = json_object_get(doc, "history"), *one = json_object_get(doc, "order");
    *own = NULL;
    if (json_is_array(old))
        return old;
    *own = json_array();
    if (one)
        json_array_append(*own, one);
    return *own;
}

/* Sets pos to document doc of kind at index; false when doc's _id is not an ObjectId. */
static bool pos_at(struct history_pos *pos, char kind, const json_t *doc, size_t index)
{
    const char *id = json_string_value(json_object_get(doc, "_id"));
    if (!hex24(id))
        return false;
    pos->kind = kind;
    memcpy(pos->oid, id, 25);
    pos->index = index;
    return true;
}

bool history_take(json_t *page, const json_t *docs, const struct history_pos *pos, size_t limit,
                  size_t fetch, struct history_pos *next, json_t **first)
{
    size_t n = json_array_size(docs);
    for (size_t i = 0; i < n; i++) {
        json_t *doc = json_array_get(docs, i), *own;
        json_t *orders = orders_of(doc, &own);
        size_t from = 0, count = json_array_size(orders);
        const char *id = json_string_value(json_object_get(doc, "_id"));
        if (i == 0 && pos->kind == 'h' && pos->oid[0] && id && strcmp(id, pos->oid) == 0)
            from = pos->index;
        size_t k = from;
        for (; k < count && json_array_size(page) < limit; k++)
            json_array_append(page, json_array_get(orders, k));
        if (!*first && k > from)
            *first = json_incref(json_object_get(doc, "_id"));
        json_decref(own);
        if (json_array_size(page) < limit)
            continue;
        /* full: the next page starts after the last order taken */
        if (pos->kind == 'o')
            return (i + 1 < n || n == fetch) && pos_at(next, 'o', doc, 0);
        if (k < count || i + 1 == n)
            return (k < count || n == fetch) && pos_at(next, 'h', doc, k);
        return pos_at(next, 'h', json_array_get(docs, i + 1), 0);
    }
    return n == fetch && n > 0 &&
           pos_at(next, pos->kind, json_array_get(docs, n - 1),
                  pos->kind == 'h'
                      ? json_array_size(json_object_get(json_array_get(docs, n - 1), "history"))
                      : 0);
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
