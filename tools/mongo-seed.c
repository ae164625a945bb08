/* shop-mongo-seed - loads seed documents into MongoDB idempotently: each document is inserted
 * only when no document with the same key exists, and a unique index on the key is ensured.
 * It also keeps the services' database users, for the deploy tool on the database host.
 * Usage: shop-mongo-seed MONGO_URL DB COLLECTION KEY FILE.json
 *        shop-mongo-seed --user DB NAME   user NAME of DB gets the password $SHOP_MONGO_PASSWORD
 *                                         (createUser, or updateUser when it exists); prints which
 *        shop-mongo-seed --login DB       exit 0 when a command on DB is allowed, 3 when the server
 *                                         refuses it for want of (valid) credentials, 1 otherwise
 * A MONGO_URL of "-", and the --user and --login forms, take the URL from the environment's
 * MONGO_URL: a URL holding a password never appears in the process list.
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

/* The error of a server that wants (other) credentials: Unauthorized, AuthenticationFailed, or
 * the driver's own failed handshake. */
static bool auth_refused(const bson_error_t *err)
{
    if (err->domain == MONGOC_ERROR_CLIENT && err->code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
        return true;
    return err->code == 13 || err->code == 18;
}

/* --login DB: 0 allowed, 3 refused for want of credentials, 1 another failure. */
static int login(mongoc_client_t *client, const char *db)
{
    bson_t *cmd = BCON_NEW("listCollections", BCON_INT32(1), "nameOnly", BCON_BOOL(true));
    bson_error_t err;
    bool ok = mongoc_client_read_command_with_opts(client, db, cmd, NULL, NULL, NULL, &err);
    bson_destroy(cmd);
    if (ok) {
        printf("%s: allowed\n", db);
        return 0;
    }
    printf("%s: refused: %s\n", db, err.message);
    return auth_refused(&err) ? 3 : 1;
}

/* createUser NAME in DB with readWrite on DB (a real MongoDB), or without roles when the server
 * has none to give (FerretDB 1.24 answers NotImplemented: it has no per-database authorisation). */
static bool create_user(mongoc_client_t *client, const char *db, const char *name, const char *pw,
                        bson_error_t *err)
{
    bson_t *cmd = BCON_NEW("createUser", BCON_UTF8(name), "pwd", BCON_UTF8(pw), "roles", "[", "{",
                           "role", "readWrite", "db", BCON_UTF8(db), "}", "]");
    bool ok = mongoc_client_write_command_with_opts(client, db, cmd, NULL, NULL, err);
    bson_destroy(cmd);
    if (ok || err->code != 238) /* NotImplemented */
        return ok;
    cmd = BCON_NEW("createUser", BCON_UTF8(name), "pwd", BCON_UTF8(pw), "roles", "[", "]");
    ok = mongoc_client_write_command_with_opts(client, db, cmd, NULL, NULL, err);
    bson_destroy(cmd);
    return ok;
}

/* --user DB NAME: sets NAME's password in DB ($SHOP_MONGO_PASSWORD), creating the user when it
 * is missing. */
static int ensure_user(mongoc_client_t *client, const char *db, const char *name)
{
    const char *pw = getenv("SHOP_MONGO_PASSWORD");
    if (!pw || !*pw) {
        fprintf(stderr, "shop-mongo-seed: SHOP_MONGO_PASSWORD is not set\n");
        return 1;
    }
    bson_t *cmd = BCON_NEW("updateUser", BCON_UTF8(name), "pwd", BCON_UTF8(pw));
    bson_error_t err;
    const char *done = "updated";
    bool ok = mongoc_client_write_command_with_opts(client, db, cmd, NULL, NULL, &err);
    bson_destroy(cmd);
    if (!ok && err.code == 11) { /* UserNotFound */
        ok = create_user(client, db, name, pw, &err);
        done = "created";
    }
    if (!ok) {
        fprintf(stderr, "shop-mongo-seed: user %s of %s: %s\n", name, db, err.message);
        return 1;
    }
    printf("%s: user %s %s\n", db, name, done);
    return 0;
}

/* The URL argument, or the environment's MONGO_URL for "-". */
static const char *url_of(const char *arg)
{
    if (strcmp(arg, "-") != 0)
        return arg;
    const char *u = getenv("MONGO_URL");
    if (!u || !*u) {
        fprintf(stderr, "shop-mongo-seed: MONGO_URL is not set\n");
        exit(2);
    }
    return u;
}

static int admin_command(int argc, char **argv)
{
    bool user = strcmp(argv[1], "--user") == 0;
    if (argc != (user ? 4 : 3)) {
        fprintf(stderr, "usage: shop-mongo-seed --user DB NAME | --login DB (MONGO_URL in the "
                        "environment)\n");
        return 2;
    }
    shop_log_init("mongo-seed");
    shop_log_set_level("error");
    shop_mongo_init(url_of("-"), argv[2]);
    mongoc_client_t *client = shop_mongo_pop();
    int rc = user ? ensure_user(client, argv[2], argv[3]) : login(client, argv[2]);
    shop_mongo_push(client);
    shop_mongo_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    /* deploy/dist and tests/static check that every shipped binary answers this */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("shop-mongo-seed %s\n", SHOP_VERSION);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "--user") == 0 || strcmp(argv[1], "--login") == 0))
        return admin_command(argc, argv);
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
    shop_mongo_init(url_of(argv[1]), argv[2]);
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
