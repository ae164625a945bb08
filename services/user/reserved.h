/* reserved.h - whether a stored user holds a name of the anonymous namespace ("anonymous-...",
 * D18; reserved.c), so that /check can answer an anonymous id without asking MongoDB. */
#ifndef USER_RESERVED_H
#define USER_RESERVED_H

#include <stdbool.h>

/* Seconds a "no stored user has such a name" answer is trusted before MongoDB is asked again. */
#define RESERVED_RECHECK_S 60

/* true when name is reserved (sessions on, "anonymous-...") and no stored user had a reserved
 * name when MongoDB was last asked, at most RESERVED_RECHECK_S ago: then no user is named name.
 * false when a user does, or when MongoDB could not answer (the caller asks for name itself). */
bool reserved_name_unused(const char *name);

#endif
