/* ratecalc.h - ratings' pure logic: PHP's integer coercion of the score, the clamp to [1, 5]
 * and the rounded running average (the reference's drift kept, docs/DECISIONS.md Q-RA3). No I/O. */
#ifndef RATINGS_RATECALC_H
#define RATINGS_RATECALC_H

/* PHP 7.4 weak-mode coercion of a string to an int parameter: leading whitespace, a numeric
 * prefix (integer, decimal or exponent form; trailing garbage tolerated as PHP's "non well
 * formed" notice), fractions truncated toward zero. Returns 0, or -1 where PHP throws a
 * TypeError (no numeric prefix, or a value outside the 64-bit range). */
int rate_parse_score(const char *s, long long *out);

/* Clamps a score to [1, 5] (0 -> 1, 9 -> 5, negatives -> 1). */
int rate_clamp(long long score);

/* The next stored average, in hundredths, after adding score to count ratings whose stored
 * (DECIMAL(3,2)) average is avg_cents: (avg*count + score) / (count + 1) rounded half away
 * from zero to 2 decimals. count 0 gives score*100. The SQL in main.c computes the same. */
long rate_next_avg_cents(long avg_cents, long count, int score);

#endif
