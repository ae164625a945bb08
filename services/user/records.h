/* records.h - the user service's pure logic (no I/O): what it stores in MongoDB and how it reads
 * it back: public user records, storable order documents, the order history of a user and the
 * selector of a password upgrade. */
#ifndef USER_RECORDS_H
#define USER_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

/* A user document as shown to clients: without its password (D4) and without its order count
 * (the bound on orders, kept in the document). Steals doc, returns it. */
json_t *user_public(json_t *doc);

/* The stored password of a user document, or NULL when it has none (or not a string). */
const char *user_stored_password(const json_t *doc);

/* true when every key at every depth (at most 32) can be stored as a MongoDB field name: no
 * leading '$' (an operator) and no '.' (a path), so a body can never act as a query or update. */
bool user_storable_keys(const json_t *v);

/* One order document {name, order: body}, or NULL when it cannot be stored (name not UTF-8,
 * keys user_storable_keys refuses). New reference; body is borrowed. */
json_t *user_order_doc(const char *name, const json_t *body);

/* ---- history pages ----------------------------------------------------------------------
 * A user's history is the orders of the legacy {name, history:[...]} documents (written before
 * orders were stored one per document, so always older) first, then those of the {name, order}
 * documents, each kind in _id order (the order one process created them in). A page is at most
 * a limit of orders from a position; the position of the next page is a cursor: "h<oid>-<n>"
 * (legacy document <oid> from its n-th order on, then the legacy documents after it) or
 * "o<oid>" (the one-order documents after <oid>); <oid> is 24 hex digits. */

#define HISTORY_PAGE 50 /* orders in a page, at most and by default */

struct history_pos {
    char kind;    /* 'h': legacy documents, 'o': one-order documents */
    char oid[25]; /* "" = from the first document of the kind */
    size_t index; /* kind 'h': the first order to show of document oid */
};

/* Parses a cursor; NULL is the start of the history. false when s is malformed. */
bool history_cursor_parse(const char *s, struct history_pos *pos);
/* The cursor of pos in buf (at least 48 bytes). */
void history_cursor_format(const struct history_pos *pos, char *buf, size_t len);

/* The filter and find options of the documents of pos's kind from pos on, at most fetch of
 * them, in _id order. New references. */
json_t *history_filter(const char *name, const struct history_pos *pos);
json_t *history_options(size_t fetch);

/* Appends to page the orders of docs (documents of pos's kind from pos on, as history_filter
 * finds them, at most fetch of them) until page holds limit orders. Returns true with *next set
 * when there may be more of the kind (the page is full or fetch documents were read), false when
 * the kind has no more. *first is set to the _id of the first document an order came from when
 * it is NULL (a new reference). */
bool history_take(json_t *page, const json_t *docs, const struct history_pos *pos, size_t limit,
                  size_t fetch, struct history_pos *next, json_t **first);

/* The selector of a password upgrade: the document doc (by its _id, an ObjectId when it is 24
 * hex digits) while it still holds the password old. NULL when doc has no _id. */
json_t *user_upgrade_filter(const json_t *doc, const char *old);

#endif
