/* ratings - the product ratings service (docs/api/ratings.yaml): averages in MySQL
 * `ratings.ratings`, a catalogue check before each vote, and an atomic first-rating insert (D10).
 */
#include "libshop/conf.h"
#include "libshop/log.h"
#include "libshop/mysql.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/ratings/routes.h"

static const struct shop_route routes[] = {
    {"GET", "/_health", ratings_health},     {"POST", "/_health", ratings_health},
    {"PUT", "/_health", ratings_health},     {"DELETE", "/_health", ratings_health},
    {"PATCH", "/_health", ratings_health},   {"OPTIONS", "/_health", ratings_health},
    {"GET", "/api/fetch/:sku", route_fetch}, {"PUT", "/api/rate/:sku/:score", route_rate},
};

static void db_conf(struct shop_mysql_conf *db)
{
    *db = (struct shop_mysql_conf){
        .host = "mysql", .port = 3306, .user = "ratings", .password = "iloveit", .db = "ratings"};
    shop_mysql_conf_env(db);
    const char *dsn = shop_conf_str("PDO_URL", NULL);
    if (dsn && shop_mysql_parse_dsn(dsn, db) == -1)
        shop_fatalx("config: PDO_URL=\"%s\" is not a DSN like "
                    "mysql:host=H;port=P;dbname=D;charset=utf8mb4",
                    dsn);
}

int ratings_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "ratings", "RATINGS_SERVER_PORT", routes);
    conf.cors = true;
    conf.cors_methods = "*"; /* the reference kernel's listener: on every reply, errors too */
    conf.text_type = "text/plain; charset=utf-8";
    conf.json_type = "application/json";
    struct shop_mysql_conf db;
    db_conf(&db);
    shop_conf_base_url(ratings_cfg.catalogue_base, sizeof(ratings_cfg.catalogue_base),
                       "CATALOGUE_URL", "http://catalogue:8080");
    shop_mysql_init(&db);
    int rc = shop_server_run(&conf);
    shop_mysql_cleanup();
    return rc;
}
