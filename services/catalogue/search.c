/* search.c - pure search logic for the catalogue: tokenising, stop words, stemming, matching. */
#include "services/catalogue/search.h"
#include "libshop/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const stop_words[] = {
    "a",      "about",  "above", "after",  "again",    "against",    "all",  "am",
    "an",     "and",    "any",   "are",    "as",       "at",         "be",   "because",
    "been",   "before", "being", "below",  "between",  "both",       "but",  "by",
    "can",    "could",  "did",   "do",     "does",     "doing",      "down", "during",
    "each",   "few",    "for",   "from",   "further",  "had",        "has",  "have",
    "having", "he",     "her",   "here",   "hers",     "herself",    "him",  "himself",
    "his",    "how",    "i",     "if",     "in",       "into",       "is",   "it",
    "its",    "itself", "just",  "me",     "more",     "most",       "my",   "myself",
    "no",     "nor",    "not",   "now",    "of",       "off",        "on",   "once",
    "only",   "or",     "other", "our",    "ours",     "ourselves",  "out",  "over",
    "own",    "same",   "she",   "should", "so",       "some",       "such", "than",
    "that",   "the",    "their", "theirs", "them",     "themselves", "then", "there",
    "these",  "they",   "this",  "those",  "through",  "to",         "too",  "under",
    "until",  "up",     "very",  "was",    "we",       "were",       "what", "when",
    "where",  "which",  "while", "who",    "whom",     "why",        "will", "with",
    "would",  "you",    "your",  "yours",  "yourself", "yourselves",
};

bool search_is_stop_word(const char *word)
{
    for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++)
        if (strcmp(word, stop_words[i]) == 0)
            return true;
    return false;
}

static bool ends_with(const char *w, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && strcmp(w + n - k, suffix) == 0;
}

void search_stem(char *word)
{
    /* longest suffix first; the stem keeps at least three letters */
    static const char *const suffixes[] = {"ations", "ation", "ings", "ing", "ies", "ied",
                                           "ics",    "ic",    "ed",   "es",  "s"};
    size_t n = strlen(word);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t k = strlen(suffixes[i]);
        if (!ends_with(word, n, suffixes[i]) || n - k < 3)
            continue;
        if (strcmp(suffixes[i], "s") == 0 && (word[n - 2] == 's' || word[n - 2] == 'u'))
            return; /* "class", "status" keep their s */
        size_t at = n - k;
        if (strcmp(suffixes[i], "ies") == 0 || strcmp(suffixes[i], "ied") == 0)
            word[at++] = 'y';
        word[at] = '\0';
        return;
    }
}

/* Copies the next word (letters and digits) of *p into w, lower-cased. Returns false at end. */
static bool next_word(const char **p, char *w, size_t wlen)
{
    const unsigned char *s = (const unsigned char *)*p;
    while (*s && !isalnum(*s) && *s < 0x80)
        s++;
    if (!*s)
        return false;
    size_t n = 0;
    while (*s && (isalnum(*s) || *s >= 0x80)) {
        if (n < wlen - 1)
            w[n++] = (char)tolower(*s);
        s++;
    }
    w[n] = '\0';
    *p = (const char *)s;
    return true;
}

void search_query_parse(const char *text, struct search_query *q)
{
    char w[SEARCH_TERM_LEN];
    q->nterms = 0;
    while (q->nterms < SEARCH_MAX_TERMS && next_word(&text, w, sizeof(w))) {
        if (search_is_stop_word(w))
            continue;
        search_stem(w);
        memcpy(q->terms[q->nterms++], w, sizeof(w));
    }
}

int search_index_words(const char *text, struct shop_buf *out)
{
    char w[SEARCH_TERM_LEN];
    int rc = 0;
    while (rc == 0 && text && next_word(&text, w, sizeof(w))) {
        search_stem(w);
        rc = shop_buf_append(out, w, strlen(w) + 1);
    }
    return rc;
}

bool search_words_match(const struct search_query *q, const char *words, size_t len)
{
    for (const char *w = words, *end = words + len; w < end; w += strlen(w) + 1)
        for (size_t i = 0; i < q->nterms; i++)
            if (strncmp(w, q->terms[i], strlen(q->terms[i])) == 0)
                return true;
    return false;
}

struct named {
    const char *name;
    size_t i;
};

static int by_name(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

void search_name_order(const json_t *products, size_t *order)
{
    size_t n = json_array_size(products);
    struct named *v = shop_xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(products, i), "name"));
        v[i] = (struct named){name ? name : "", i};
    }
    qsort(v, n, sizeof(*v), by_name);
    for (size_t i = 0; i < n; i++)
        order[i] = v[i].i;
    free(v);
}
