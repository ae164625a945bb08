/* mongo.h - MongoDB for the services: one client pool, short timeouts so a dead server fails
 * fast (503), automatic reconnect by the driver, ping for health, and calls that take and
 * return JSON (the BSON conversion stays in libshop). Failures are a struct shop_err (err.h):
 * UNAVAILABLE when no server can be reached (answer 503, D16), REJECTED when a write was
 * refused (duplicate key: code 11000; a document BSON cannot hold: code 0), FAILED otherwise. */
#ifndef SHOP_MONGO_H
#define SHOP_MONGO_H

#include "libshop/err.h"

#include <jansson.h>
#include <stdbool.h>

/* Parses url (MONGO_URL); the database is the one named in the URL, else default_db.
 * A URL that does not parse is fatal. Does not connect: start-up never waits. */
void shop_mongo_init(const char *url, const char *default_db);
void shop_mongo_cleanup(void);

/* true when the server answers a ping within the selection timeout. */
bool shop_mongo_ping(void);

/* Filters, options and documents are JSON objects; an object {"$oid": "<24 hex digits>"} is an
 * ObjectId (documents read back show an ObjectId as its 24 hex digits, dates as epoch ms). */

/* The documents of collection coll matching filter (find options in opts, e.g. {"limit": 1,
 * "sort": {"_id": 1}}; may be NULL) as a new JSON array in *docs. Returns 0 or -1 with err set
 * (*docs NULL). */
int shop_mongo_find(const char *coll, const json_t *filter, const json_t *opts, json_t **docs,
                    struct shop_err *err);
/* The first document matching filter: 1 with *doc (new reference), 0 when there is none, -1
 * with err set. */
int shop_mongo_find_one(const char *coll, const json_t *filter, json_t **doc, struct shop_err *err);
/* Inserts doc. Returns 0 or -1 with err set. */
int shop_mongo_insert(const char *coll, const json_t *doc, struct shop_err *err);
/* Applies update (operators: {"$set": {...}}) to the first document matching filter. Returns
 * the number of documents changed (0 or 1), or -1 with err set. */
int shop_mongo_update_one(const char *coll, const json_t *filter, const json_t *update,
                          struct shop_err *err);

#endif
