/* test_ratings_calc - ratings' score coercion, clamping and the 2-decimal running average,
 * checked against the contract's sequence and against a simulation of the PHP/MySQL path. */
#include "services/ratings/ratecalc.c"
#include "tests/unit/check.h"

#include <stdio.h>

static void test_parse(void)
{
    long long v = 0;
    CHECK(rate_parse_score("4", &v) == 0 && v == 4);
    CHECK(rate_parse_score("3.7", &v) == 0 && v == 3);
    CHECK(rate_parse_score("-3.7", &v) == 0 && v == -3);
    CHECK(rate_parse_score(" 2", &v) == 0 && v == 2);
    CHECK(rate_parse_score("+5", &v) == 0 && v == 5);
    CHECK(rate_parse_score("3abc", &v) == 0 && v == 3);
    CHECK(rate_parse_score("1e2", &v) == 0 && v == 100);
    CHECK(rate_parse_score(".5", &v) == 0 && v == 0);
    CHECK(rate_parse_score("0x1A", &v) == 0 && v == 0);
    CHECK(rate_parse_score("abc", &v) == -1);
    CHECK(rate_parse_score("", &v) == -1);
    CHECK(rate_parse_score(".", &v) == -1);
    CHECK(rate_parse_score("-", &v) == -1);
    CHECK(rate_parse_score("e5", &v) == -1);
    CHECK(rate_parse_score("99999999999999999999", &v) == -1);
    CHECK(rate_parse_score("1e30", &v) == -1);
}

static void test_clamp(void)
{
    CHECK(rate_clamp(0) == 1);
    CHECK(rate_clamp(-7) == 1);
    CHECK(rate_clamp(1) == 1);
    CHECK(rate_clamp(3) == 3);
    CHECK(rate_clamp(5) == 5);
    CHECK(rate_clamp(9) == 5);
    CHECK(rate_clamp(100) == 5);
}

static void test_sequence(void)
{
    static const int scores[] = {4, 5, 3, 5, 1, 2, 5};
    static const long want[] = {400, 450, 400, 425, 360, 333, 357};
    long avg = 0;
    for (long i = 0; i < 7; i++) {
        avg = rate_next_avg_cents(avg, i, scores[i]);
        CHECK(avg == want[i]);
    }
}

/* The reference: PHP computes the double (avg*count + score) / (count + 1), PDO sends it as a
 * 14-significant-digit string, and MySQL rounds that decimal to 2 places half away from 0. */
static long php_next(long avg_cents, long count, int score)
{
    double avg = (double)avg_cents / 100.0;
    double v = (avg * (double)count + score) / (double)(count + 1);
    char s[64];
    snprintf(s, sizeof(s), "%.14G", v);
    const char *dot = strchr(s, '.');
    long cents = strtol(s, NULL, 10) * 100;
    if (dot) {
        int d1 = dot[1] ? dot[1] - '0' : 0;
        int d2 = dot[1] && dot[2] ? dot[2] - '0' : 0;
        int d3 = dot[1] && dot[2] && dot[3] ? dot[3] - '0' : 0;
        cents += d1 * 10 + d2 + (d3 >= 5);
    }
    return cents;
}

static void test_against_php(void)
{
    unsigned seed = 12345;
    int mismatches = 0;
    for (int run = 0; run < 200; run++) {
        long avg = 0;
        for (long count = 0; count < 300; count++) {
            seed = seed * 1103515245u + 12345u;
            int score = (int)((seed >> 16) % 5) + 1;
            long mine = rate_next_avg_cents(avg, count, score);
            long ref = count == 0 ? score * 100 : php_next(avg, count, score);
            if (mine != ref && mismatches++ < 5)
                fprintf(stderr, "avg %ld count %ld score %d: %ld vs php %ld\n", avg, count, score,
                        mine, ref);
            avg = ref;
        }
    }
    CHECK(mismatches == 0);
}

int main(void)
{
    test_parse();
    test_clamp();
    test_sequence();
    test_against_php();
    return check_report("test_ratings_calc");
}
