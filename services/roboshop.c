/* roboshop - the one binary every service is a name of (busybox-style). build/bin/<svc> are hard
 * links to it, so the services of one host map one file and share its library code (OpenSSL,
 * libmongoc, libcurl...) instead of each carrying a copy (docs/BENCHMARKS.md, issue 16). The
 * service is the program's name (`catalogue`, or `roboshop-catalogue` as make install names it),
 * else the first argument: `roboshop catalogue [--version]`. An unknown name exits 2. */
#include "services/roboshop.h"
#include "shop_version.h"

#include <stdio.h>
#include <string.h>

static const struct service {
    const char *name;
    int (*main)(int argc, char **argv);
} services[] = {
    {"catalogue", catalogue_main}, {"user", user_main},       {"cart", cart_main},
    {"shipping", shipping_main},   {"ratings", ratings_main}, {"payment", payment_main},
    {"dispatch", dispatch_main},
};
#define NSERVICES (sizeof(services) / sizeof(services[0]))

static const struct service *service_named(const char *name)
{
    for (size_t i = 0; i < NSERVICES; i++)
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    return NULL;
}

static void list_services(FILE *f)
{
    for (size_t i = 0; i < NSERVICES; i++)
        fprintf(f, "%s%s", i ? " " : "", services[i].name);
    fputc('\n', f);
}

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: roboshop SERVICE [--version]   (or run it as SERVICE: a link named after it)\n"
            "services: ");
    list_services(f);
    return rc;
}

static int unknown(const char *name)
{
    fprintf(stderr, "roboshop: unknown service '%s'; one of: ", name);
    list_services(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    const char *name = argc > 0 ? (slash ? slash + 1 : argv[0]) : "roboshop";
    if (strncmp(name, "roboshop-", 9) == 0)
        name += 9;
    if (strcmp(name, "roboshop") != 0) {
        const struct service *s = service_named(name);
        return s ? s->main(argc, argv) : unknown(name);
    }
    if (argc < 2)
        return usage(stderr, 2);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("roboshop %s\nservices: ", SHOP_VERSION);
        list_services(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return usage(stdout, 0);
    const struct service *s = service_named(argv[1]);
    return s ? s->main(argc - 1, argv + 1) : unknown(argv[1]);
}
