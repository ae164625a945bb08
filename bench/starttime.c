/* starttime.c - start-up time of a service: exec -> first HTTP answer and exec -> first 200
 * on a health path, polled every 0.5 ms over loopback; the median of several runs as JSON.
 *
 * usage: starttime [-a] PORT PATH RUNS CMD [ARG...]   (the environment is passed on to CMD)
 * -a: stop at the first answer (backends down: no 200 will come); otherwise wait up to 3 s for
 * a 200 after a first non-200 answer.
 * prints {"first_answer_ms":M,"first_answer_status":S,"first_200_ms":M|null,"rss_kb":N}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 3000.0

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One GET; returns the status code, 0 when nothing answered (not listening yet). */
static int probe(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        char req[512], buf[512];
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (write(fd, req, (size_t)n) == n && poll(&p, 1, (int)DEADLINE_MS) == 1) {
            ssize_t got = read(fd, buf, sizeof(buf) - 1);
            if (got > 12) {
                buf[got] = '\0';
                status = atoi(buf + 9);
            }
        }
    }
    close(fd);
    return status;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    bool first_only = argc > 1 && strcmp(argv[1], "-a") == 0;
    if (first_only) {
        argv++;
        argc--;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: starttime [-a] PORT PATH RUNS CMD [ARG...]\n");
        return 2;
    }
    int port = atoi(argv[1]), runs = atoi(argv[3]);
    const char *path = argv[2];
    double first[64], ok[64];
    int nok = 0, last_status = 0;
    long rss = -1;
    if (runs < 1 || runs > 64)
        runs = 5;
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", 1);
            dup2(null, 1);
            dup2(null, 2);
            execv(argv[4], argv + 4);
            _exit(127);
        }
        first[r] = -1;
        double t200 = -1;
        while (now_ms() - t0 < DEADLINE_MS) {
            int st = probe(port, path);
            if (st && first[r] < 0) {
                first[r] = now_ms() - t0;
                last_status = st;
            }
            if (st == 200) {
                t200 = now_ms() - t0;
                break;
            }
            if (st && first_only)
                break; /* a backend is down: the first answer is what counts */
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                pid = -1;
                break;
            }
            usleep(st ? 5000 : 500);
        }
        if (t200 >= 0)
            ok[nok++] = t200;
        if (pid > 0) {
            rss = rss_kb(pid);
            kill(pid, SIGTERM);
            waitpid(pid, NULL, 0);
        }
        usleep(50000); /* let the port go */
    }
    qsort(first, (size_t)runs, sizeof(double), cmp);
    qsort(ok, (size_t)nok, sizeof(double), cmp);
    printf("{\"first_answer_ms\":%.2f,\"first_answer_status\":%d,\"first_200_ms\":",
           first[runs / 2], last_status);
    if (nok == runs)
        printf("%.2f", ok[nok / 2]);
    else
        printf("null");
    printf(",\"rss_kb\":%ld}\n", rss);
    return 0;
}
