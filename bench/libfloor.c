/* libfloor.c - prints this process's VmRSS and RssFile as it enters main(), before doing
 * anything. bench/lib-floor links it against each service's shared libraries, to show how much
 * of a service's RSS is its libraries being loaded (relocations, constructors). */
#include <stdio.h>
#include <string.h>

int main(void)
{
    char line[256];
    long rss = -1, file = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", &rss);
        else if (strncmp(line, "RssFile:", 8) == 0)
            sscanf(line + 8, "%ld", &file);
    }
    fclose(f);
    printf("%ld %ld\n", rss, file);
    return rss < 0;
}
