/* search.h - catalogue search without a text index (decision D7): words, stop words, stems. */
#ifndef CATALOGUE_SEARCH_H
#define CATALOGUE_SEARCH_H

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
/* true when any query term is a prefix of the stem of a word in name or description. */
bool search_matches(const struct search_query *q, const char *name, const char *description);
/* search_matches on a product object's name and description; query is a struct search_query. */
bool search_product_matches(const json_t *product, const void *query);
/* Fills order (n = json_array_size(products) entries) with the product indices ordered by
 * "name", byte order, equal names in array order. */
void search_name_order(const json_t *products, size_t *order);
/* Sorts an array of product objects as search_name_order does, in place. */
void search_sort_by_name(json_t *products);

#endif
