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
/* Keeps the products (array of objects) that match text, ordered by name. New reference. */
json_t *search_filter(const json_t *products, const char *text);
/* Sorts an array of product objects by "name", byte order, in place. */
void search_sort_by_name(json_t *products);

#endif
