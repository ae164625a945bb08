/* cartcheck.h - an allocation-free first check of a stored cart's bytes (see cartcheck.c). */
#ifndef CART_CARTCHECK_H
#define CART_CARTCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when text is surely a cart that cart_parse() accepts (a JSON object whose "items" is an
 * array of objects). False means "not sure": ask cart_parse(). */
bool cart_check_quick(const char *text, size_t len);

#endif
