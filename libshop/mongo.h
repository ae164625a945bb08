/* mongo.h - the MongoDB connection: one client pool, short timeouts so a dead server fails
 * fast (503), automatic reconnect by the driver, ping for health, BSON <-> JSON. */
#ifndef SHOP_MONGO_H
#define SHOP_MONGO_H

#include <jansson.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>

/* Parses url (MONGO_URL); the database is the one named in the URL, else default_db.
 * A URL that does not parse is fatal. Does not connect: start-up never waits. */
void shop_mongo_init(const char *url, const char *default_db);
void shop_mongo_cleanup(void);

/* Takes a client from the pool (blocks only while all are in use); give it back with push. */
mongoc_client_t *shop_mongo_pop(void);
void shop_mongo_push(mongoc_client_t *client);
/* A collection of the configured database; caller destroys it. */
mongoc_collection_t *shop_mongo_collection(mongoc_client_t *client, const char *name);

/* true when the server answers a ping within the selection timeout. */
bool shop_mongo_ping(void);
/* true when err means "no server reachable" (answer 503), false for other errors (500). */
bool shop_mongo_unavailable(const bson_error_t *err);

/* BSON document -> new JSON object (ObjectId as 24-char hex, dates as epoch ms). */
json_t *shop_bson_to_json(const bson_t *doc);
/* JSON object -> BSON appended into out (initialised by the caller). Returns 0, or -1 when obj
 * is not an object or holds values BSON cannot hold (nesting deeper than 32). */
int shop_json_to_bson(const json_t *obj, bson_t *out);

#endif
