/* records.h - the user service's pure logic (no I/O): what it stores in MongoDB and how it reads
 * it back: public user records, storable order documents, the order history of a user and the
 * selector of a password upgrade. */
#ifndef USER_RECORDS_H
#define USER_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

/* A user document as shown to clients: without its password (D4). Steals doc, returns it. */
json_t *user_public(json_t *doc);

/* The stored password of a user document, or NULL when it has none (or not a string). */
const char *user_stored_password(const json_t *doc);

/* true when every key at every depth (at most 32) can be stored as a MongoDB field name: no
 * leading '$' (an operator) and no '.' (a path), so a body can never act as a query or update. */
bool user_storable_keys(const json_t *v);

/* One order document {name, order: body}, or NULL when it cannot be stored (name not UTF-8,
 * keys user_storable_keys refuses). New reference; body is borrowed. */
json_t *user_order_doc(const char *name, const json_t *body);

/* The reference's {_id, name, history} from a user's stored documents (an array in _id order,
 * the order one process created them in): the orders of legacy {name, history:[...]} documents
 * (written before orders were stored one per document, so always older) first, then those of
 * the {_id, name, order} documents; _id is the first legacy document's, else the first one's.
 * NULL when there are no documents. New reference. */
json_t *user_history(const json_t *docs, const char *name);

/* The selector of a password upgrade: the document doc (by its _id, an ObjectId when it is 24
 * hex digits) while it still holds the password old. NULL when doc has no _id. */
json_t *user_upgrade_filter(const json_t *doc, const char *old);

#endif
