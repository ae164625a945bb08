/* reload.h - keeps shipping's in-memory index (index.h) current: a background thread loads it
 * from MariaDB at start (start-up never waits for it), then checks a cheap signature of the
 * tables (row counts and a CRC of every row, plus the columns' collation) every
 * SHIPPING_INDEX_CHECK_S seconds and on SIGHUP, and builds a new index when it changed. Until
 * the first load succeeds, callers get NULL and ask the database as before. */
#ifndef SHIPPING_RELOAD_H
#define SHIPPING_RELOAD_H

#include "services/shipping/index.h"

/* Blocks SIGHUP in the calling thread (call in main before any thread starts, so that only
 * the reload thread takes it). */
void shipping_reload_block_signal(void);
/* Starts the reload thread; period_s between checks. */
void shipping_reload_start(long period_s);
/* Stops it and drops the index. */
void shipping_reload_stop(void);
/* The current index, held (give it back with ship_index_drop), or NULL before the first load. */
struct ship_index *shipping_index_get(void);
/* The same, but right after start (the first load under way) waits up to ms for it; NULL when
 * there is still none (the database is down) or the index is off. */
struct ship_index *shipping_index_wait(long ms);

#endif
