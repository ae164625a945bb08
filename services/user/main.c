/* user - the user service (docs/api/user.yaml): registration and login against MongoDB `users`
 * with hashed passwords (D4), order history in `orders` as one document {name, order} per
 * order (D10), anonymous ids from the Redis counter `anonymous-counter`, and sessions that own
 * those ids and the user (D18, session.c). */
#include "libshop/conf.h"
#include "libshop/metrics.h"
#include "libshop/mongo.h"
#include "libshop/passwd.h"
#include "libshop/redis.h"
#include "libshop/service.h"
#include "services/roboshop.h"
#include "services/user/routes.h"
#include "services/user/session.h"

static const struct shop_route routes[] = {
    {"GET", "/health", user_health},     {"GET", "/uniqueid", route_uniqueid},
    {"GET", "/check/:id", route_check},  {"GET", "/users", route_users},
    {"POST", "/login", route_login},     {"POST", "/register", route_register_user},
    {"POST", "/order/:id", route_order}, {"GET", "/history/:id", route_history},
    {"GET", "/auth", route_auth},        {"POST", "/logout", route_logout},
};

int user_main(int argc, char **argv)
{
    struct shop_server_conf conf =
        SHOP_SERVICE_START(argc, argv, "user", "USER_SERVER_PORT", routes);
    conf.cors = true;
    conf.loop = true; /* Redis-bound: requests wait for Redis on an event loop (SHOP_LOOP=0: off) */
    (void)shop_conf_str("MONGO", "true"); /* the course's gate; accepted, not needed */
    shop_mongo_init(shop_conf_str("MONGO_URL", "mongodb://mongodb:27017/users"), "users");
    shop_redis_init();
    session_init();
    user_routes_setup();
    shop_counter_register(&shop_passwd_hashes);
    shop_counter_register(&shop_passwd_hashes_begun);
    shop_counter_register(&shop_passwd_hashes_busy);
    int rc = shop_server_run(&conf);
    shop_redis_cleanup();
    shop_mongo_cleanup();
    return rc;
}
