/* backoff.h - the login back-off of the user service: failed logins are counted per (account
 * name, client address); after a few in a row that pair must wait before its next attempt, the
 * wait doubling with each further failure. Kept in this process's memory, in a table of fixed
 * size (the oldest records give way when it is full). Thread-safe. Times are in milliseconds. */
#ifndef USER_BACKOFF_H
#define USER_BACKOFF_H

struct backoff_conf {
    int free_failures;  /* failures in a row before the first wait (default 5) */
    long first_wait_ms; /* the first wait (default 30 s); each further failure doubles it */
    long max_wait_ms;   /* the longest wait (default 15 min) */
    long forget_ms;     /* a pair with no failure for this long starts afresh (default 1 h) */
};

/* Sets the policy and empties the table. Call before serving (defaults apply otherwise). */
void backoff_setup(const struct backoff_conf *conf);

/* Milliseconds the pair must still wait before an attempt, or 0 when it may try now. */
long backoff_wait(const char *name, const char *client, long long now_ms);

/* Records a failed attempt of the pair at now_ms. */
void backoff_failed(const char *name, const char *client, long long now_ms);

/* Forgets the pair's failures (a successful login). */
void backoff_succeeded(const char *name, const char *client);

#endif
