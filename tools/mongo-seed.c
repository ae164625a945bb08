/* shop-mongo-seed - loads seed documents into MongoDB idempotently: each document is inserted
 * only when no document with the same key exists, and a unique index on the key is ensured.
 * Usage: shop-mongo-seed MONGO_URL DB COLLECTION KEY FILE.json
 * FILE.json holds an array of objects. Loading twice changes nothing. */
#include "libshop/json.h"
#include "libshop/log.h"
#include "libshop/mongo_driver.h"

#include "shop_version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ensure_index(mongoc_client_t *client, const char *db, const char *coll, const char *key)
{
    char name[160];
    snprintf(name, sizeof(name), "%s_1", key);
    bson_t *cmd =
        BCON_NEW("createIndexes", BCON_UTF8(coll), "indexes", "[", "{", "key", "{", key,
                 BCON_INT32(1), "}", "name", BCON_UTF8(name), "unique", BCON_BOOL(true), "}", "]");
    bson_error_t err;
    bool ok = mongoc_client_write_command_with_opts(client, db, cmd, NULL, NULL, &err);
    if (!ok)
        fprintf(stderr, "shop-mongo-seed: index on %s: %s\n", key, err.message);
    bson_destroy(cmd);
    return ok ? 0 : -1;
}

/* Inserts doc unless a document with doc[key] exists (fields keep their order).
 * Returns 1 inserted, 0 already present, -1 error. */
static int insert_missing(mongoc_collection_t *coll, const char *key, const json_t *doc)
{
    const char *k = shop_json_str(doc, key);
    if (!k) {
        fprintf(stderr, "shop-mongo-seed: a document has no string \"%s\"\n", key);
        return -1;
    }
    bson_t sel = BSON_INITIALIZER, ins = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sel, key, k);
    bson_error_t err = {.message = "the document cannot be stored as BSON"};
    int rc = -1;
    int64_t n = mongoc_collection_count_documents(coll, &sel, NULL, NULL, NULL, &err);
    if (n > 0) {
        rc = 0;
    } else if (n == 0 && shop_json_to_bson(doc, &ins) == 0) {
        if (mongoc_collection_insert_one(coll, &ins, NULL, NULL, &err))
            rc = 1;
        else if (err.code == 11000)
            rc = 0; /* inserted meanwhile by another loader */
    }
    if (rc < 0)
        fprintf(stderr, "shop-mongo-seed: %s=%s: %s\n", key, k, err.message);
    bson_destroy(&sel);
    bson_destroy(&ins);
    return rc;
}

int main(int argc, char **argv)
{
    /* deploy/dist and tests/static check that every shipped binary answers this */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("shop-mongo-seed %s\n", SHOP_VERSION);
        return 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: shop-mongo-seed MONGO_URL DB COLLECTION KEY FILE.json\n");
        return 2;
    }
    shop_log_init("mongo-seed");
    shop_log_set_level("warn");
    json_error_t jerr;
    json_t *docs = json_load_file(argv[5], JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(docs)) {
        fprintf(stderr, "shop-mongo-seed: %s: %s\n", argv[5], docs ? "not an array" : jerr.text);
        json_decref(docs);
        return 1;
    }
    shop_mongo_init(argv[1], argv[2]);
    mongoc_client_t *client = shop_mongo_pop();
    mongoc_collection_t *coll = mongoc_client_get_collection(client, argv[2], argv[3]);
    int rc = ensure_index(client, argv[2], argv[3], argv[4]);
    size_t inserted = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(docs); i++) {
        int r = insert_missing(coll, argv[4], json_array_get(docs, i));
        if (r < 0)
            rc = -1;
        else
            inserted += (size_t)r;
    }
    if (rc == 0)
        printf("%s.%s: %zu inserted, %zu already present\n", argv[2], argv[3], inserted,
               json_array_size(docs) - inserted);
    mongoc_collection_destroy(coll);
    shop_mongo_push(client);
    shop_mongo_cleanup();
    json_decref(docs);
    return rc == 0 ? 0 : 1;
}
