// Thin shim over libcurl: curl_easy_setopt/getinfo are variadic and do not
// import into Swift, so each option type gets a typed wrapper.
#ifndef ENROLL_AGENT_CCURL_SHIM_H
#define ENROLL_AGENT_CCURL_SHIM_H

#include <curl/curl.h>

static inline CURLcode enroll_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode enroll_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode enroll_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode enroll_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode enroll_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*enroll_curl_write_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode enroll_curl_setopt_write(CURL *h, CURLoption o, enroll_curl_write_cb cb) { return curl_easy_setopt(h, o, cb); }

typedef int (*enroll_curl_xferinfo_cb)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static inline CURLcode enroll_curl_setopt_xferinfo(CURL *h, CURLoption o, enroll_curl_xferinfo_cb cb) { return curl_easy_setopt(h, o, cb); }

// CURLAUTH_* are casts and shifts of literals, which do not import into Swift.
static const unsigned long enroll_curlauth_basic = CURLAUTH_BASIC;
static const unsigned long enroll_curlauth_ntlm = CURLAUTH_NTLM;

static inline CURLcode enroll_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode enroll_curl_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }

#endif
