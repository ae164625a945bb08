/* search.h - catalogue search without a text index (decision D7): words, stop words, stems. */
#ifndef CATALOGUE_SEARCH_H
#define CATALOGUE_SEARCH_H

#include "libshop/util.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SEARCH_MAX_TERMS 16
#define SEARCH_TERM_LEN  48

struct search_query {
    char terms[SEARCH_MAX_TERMS][SEARCH_TERM_LEN];
    size_t nterms;
};

/* Splits text into lower-case stemmed terms, dropping English stop words. */
void search_query_parse(const char *text, struct search_query *q);
/* Reduces a lower-case word to its stem in place (s, es, ed, ing, ic, ...). */
void search_stem(char *word);
bool search_is_stop_word(const char *word);
/* Appends the stemmed words of text to out, each followed by a NUL. Returns 0, or -1 when out
 * is full. */
int search_index_words(const char *text, struct shop_buf *out);
/* true when a query term is a prefix of one of words (len bytes from search_index_words). */
bool search_words_match(const struct search_query *q, const char *words, size_t len);
/* Fills order (n = json_array_size(products) entries) with the product indices ordered by
 * "name", byte order, equal names in array order. */
void search_name_order(const json_t *products, size_t *order);

#endif
