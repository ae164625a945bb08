/* curlrun.h - where a libcurl transfer of client.c runs (private to libshop): on a worker
 * thread, on that thread's own easy handle with curl_easy_perform; in a request's coroutine,
 * on its loop's multi handle, whose sockets the loop watches, while the coroutine waits and
 * the loop serves the other requests. A peer that hangs then holds no worker. */
#ifndef SHOP_CURLRUN_H
#define SHOP_CURLRUN_H

#include <curl/curl.h>

/* An easy handle for one call (NULL: none could be made): the thread's, or in a coroutine one
 * of its loop's. Its connections are kept for the next calls of the thread or of the loop. */
CURL *shop_curl_handle(void);
/* Runs the transfer set up on h (from shop_curl_handle) to its end. */
CURLcode shop_curl_perform(CURL *h);
/* Gives h back after the call (and after reading what curl_easy_getinfo tells of it). */
void shop_curl_release(CURL *h);

#endif
