/* test_ratings_dsn - the MySQL configuration parsing ratings relies on: PDO_URL DSNs and the
 * unavailable/query-error classification of libshop/mysql. */
#include "libshop/mysql.h"
#include "tests/unit/check.h"

#include <errmsg.h>
#include <mysqld_error.h>

static struct shop_mysql_conf defaults(void)
{
    return (struct shop_mysql_conf){
        .host = "mysql", .port = 3306, .user = "ratings", .password = "iloveit", .db = "ratings"};
}

int main(void)
{
    struct shop_mysql_conf c = defaults();
    CHECK(shop_mysql_parse_dsn("mysql:host=db1;port=3307;dbname=r2;charset=utf8mb4", &c) == 0);
    CHECK_STR(c.host, "db1");
    CHECK(c.port == 3307);
    CHECK_STR(c.db, "r2");
    CHECK_STR(c.user, "ratings");

    c = defaults();
    CHECK(shop_mysql_parse_dsn("mysql:host=mysql;dbname=ratings;charset=utf8mb4", &c) == 0);
    CHECK_STR(c.host, "mysql");
    CHECK(c.port == 3306);

    c = defaults();
    CHECK(shop_mysql_parse_dsn("mysql:", &c) == 0);
    CHECK_STR(c.host, "mysql");
    CHECK(shop_mysql_parse_dsn("pgsql:host=x", &c) == -1);
    CHECK(shop_mysql_parse_dsn("mysql:host=x;port=0", &c) == -1);
    CHECK(shop_mysql_parse_dsn("mysql:host=x;port=abc", &c) == -1);
    CHECK(shop_mysql_parse_dsn("mysql:host=;dbname=x", &c) == -1);
    CHECK(shop_mysql_parse_dsn("mysql:garbage", &c) == -1);
    CHECK_STR(c.host, "mysql"); /* a failed parse changes nothing */

    CHECK(shop_mysql_code_unavailable(CR_CONNECTION_ERROR));
    CHECK(shop_mysql_code_unavailable(CR_CONN_HOST_ERROR));
    CHECK(shop_mysql_code_unavailable(CR_SERVER_GONE_ERROR));
    CHECK(shop_mysql_code_unavailable(CR_SERVER_LOST));
    CHECK(shop_mysql_code_unavailable(ER_SERVER_SHUTDOWN));
    CHECK(!shop_mysql_code_unavailable(ER_PARSE_ERROR));
    CHECK(!shop_mysql_code_unavailable(ER_DUP_ENTRY));
    CHECK(!shop_mysql_code_unavailable(ER_LOCK_DEADLOCK));
    return check_report("test_ratings_dsn");
}
