/* mongo_driver.h - libshop's own view of the MongoDB driver, for mongo.c, the seeding tool and
 * unit tests: the pooled clients and the JSON <-> BSON conversion. Services use mongo.h. */
#ifndef SHOP_MONGO_DRIVER_H
#define SHOP_MONGO_DRIVER_H

#include "libshop/mongo.h"

#include <mongoc/mongoc.h>

/* Takes a client from the pool (blocks only while all are in use); give it back with push. */
mongoc_client_t *shop_mongo_pop(void);
void shop_mongo_push(mongoc_client_t *client);
/* A collection of the configured database; caller destroys it. */
mongoc_collection_t *shop_mongo_collection(mongoc_client_t *client, const char *name);

/* true when err means "no server reachable" (answer 503), false for other errors (500). */
bool shop_mongo_unavailable(const bson_error_t *err);

/* BSON document -> new JSON object (ObjectId as 24-char hex, dates as epoch ms). */
json_t *shop_bson_to_json(const bson_t *doc);
/* JSON object -> BSON appended into out (initialised by the caller); {"$oid": hex} becomes an
 * ObjectId. Returns 0, or -1 when obj is not an object or holds values BSON cannot hold
 * (nesting deeper than 32). */
int shop_json_to_bson(const json_t *obj, bson_t *out);

#endif
