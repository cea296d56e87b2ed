/* wasmlab edge handler helper for C (wasmlab.edge prepends this file; `#line 1` after it keeps the line
   numbers of your code). You write:

       void on_request(const edge_request *req, edge_response *res) {
           edge_set_header(res, "content-type", "text/plain");
           edge_write_str(res, "hello ");
           edge_write_s(res, edge_query(req, "name"));
       }

   ABI (wasmlab-edge/1): exports `memory`, `alloc(len) -> ptr` (a buffer for the request; each call starts a
   new request and frees the previous one) and `handle(ptr, len) -> i64` = (response_ptr << 32) | response_len.
   Request bytes: "METHOD TARGET\n" + "name: value\n"... + "\n" + body. Response: "STATUS\n" + headers + "\n" +
   body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ptr; /* not NUL-terminated */
    size_t len;      /* 0 (and ptr NULL) when absent */
} edge_str;

typedef struct {
    edge_str method;  /* "GET" */
    edge_str target;  /* "/path?query" as sent */
    edge_str path;    /* "/path" */
    edge_str query;   /* "query" (without '?') */
    edge_str headers; /* the header lines, "name: value\n" each; names are lower-case */
    edge_str body;
} edge_request;

typedef struct {
    int status; /* 200 unless you set it */
    char *head, *body;
    size_t head_len, head_cap, body_len, body_cap;
} edge_response;

void on_request(const edge_request *req, edge_response *res);

static inline int edge_eq(edge_str s, const char *text) {
    size_t n = strlen(text);
    return s.len == n && (n == 0 || memcmp(s.ptr, text, n) == 0);
}

static inline int edge_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* The value of header `name` (case-insensitive), or an empty edge_str. */
static inline edge_str edge_get_header(const edge_request *req, const char *name) {
    size_t n = strlen(name);
    const char *p = req->headers.ptr, *end = p + req->headers.len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && (size_t)(colon - p) == n) {
            size_t i = 0;
            while (i < n && edge_lower((unsigned char)p[i]) == edge_lower((unsigned char)name[i])) i++;
            if (i == n) {
                const char *v = colon + 1;
                while (v < eol && *v == ' ') v++;
                return (edge_str){v, (size_t)(eol - v)};
            }
        }
        p = eol + 1;
    }
    return (edge_str){NULL, 0};
}

/* The raw (not percent-decoded) value of query parameter `name`, or an empty edge_str. */
static inline edge_str edge_query(const edge_request *req, const char *name) {
    size_t n = strlen(name);
    const char *p = req->query.ptr, *end = p + req->query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        const char *key_end = eq ? eq : amp;
        if ((size_t)(key_end - p) == n && memcmp(p, name, n) == 0)
            return eq ? (edge_str){eq + 1, (size_t)(amp - eq - 1)} : (edge_str){amp, 0};
        p = amp + 1;
    }
    return (edge_str){NULL, 0};
}

/* Per-request memory: a static arena (no memory.grow for small requests, so pooled instances can be reset by
   restoring a memory snapshot), malloc beyond it; everything is released when alloc() starts the next request. */
#ifndef EDGE_ARENA_SIZE
#define EDGE_ARENA_SIZE (64 * 1024)
#endif
static _Alignas(16) char edge__arena[EDGE_ARENA_SIZE];
static size_t edge__used;
static void *edge__heap[64];
static int edge__heap_count;

static void *edge__take(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n <= EDGE_ARENA_SIZE - edge__used) {
        void *p = edge__arena + edge__used;
        edge__used += n;
        return p;
    }
    void *p = malloc(n);
    if (p && edge__heap_count < 64) edge__heap[edge__heap_count++] = p;
    return p;
}

static void edge__release_all(void) {
    for (int i = 0; i < edge__heap_count; i++) free(edge__heap[i]);
    edge__heap_count = 0;
    edge__used = 0;
}

static inline void edge__append(char **buf, size_t *len, size_t *cap, const void *data, size_t n) {
    if (*len + n > *cap) {
        size_t want = *cap ? *cap * 2 : 256;
        while (want < *len + n) want *= 2;
        char *grown = edge__take(want);
        if (!grown) __builtin_trap();
        if (*len) memcpy(grown, *buf, *len);
        *buf = grown;
        *cap = want;
    }
    if (n) memcpy(*buf + *len, data, n);
    *len += n;
}

static inline void edge_status(edge_response *res, int status) { res->status = status; }

static inline void edge_set_header(edge_response *res, const char *name, const char *value) {
    edge__append(&res->head, &res->head_len, &res->head_cap, name, strlen(name));
    edge__append(&res->head, &res->head_len, &res->head_cap, ": ", 2);
    edge__append(&res->head, &res->head_len, &res->head_cap, value, strlen(value));
    edge__append(&res->head, &res->head_len, &res->head_cap, "\n", 1);
}

static inline void edge_write(edge_response *res, const void *data, size_t n) {
    edge__append(&res->body, &res->body_len, &res->body_cap, data, n);
}

static inline void edge_write_str(edge_response *res, const char *text) { edge_write(res, text, strlen(text)); }

static inline void edge_write_s(edge_response *res, edge_str s) { edge_write(res, s.ptr, s.len); }

static inline void edge_write_int(edge_response *res, long long v) {
    char digits[24];
    int i = 24;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do digits[--i] = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) digits[--i] = '-';
    edge_write(res, digits + i, (size_t)(24 - i));
}

__attribute__((export_name("alloc"))) void *edge__alloc(int32_t len) {
    edge__release_all();
    void *p = edge__take(len > 0 ? (size_t)len : 1);
    if (!p) __builtin_trap();
    return p;
}

static edge_str edge__line(const char **p, const char *end) {
    const char *eol = memchr(*p, '\n', (size_t)(end - *p));
    if (!eol) eol = end;
    edge_str line = {*p, (size_t)(eol - *p)};
    *p = eol < end ? eol + 1 : end;
    return line;
}

__attribute__((export_name("handle"))) int64_t edge__handle(const char *ptr, int32_t len) {
    const char *p = ptr, *end = ptr + len;
    edge_request req;
    memset(&req, 0, sizeof req);
    edge_str first = edge__line(&p, end);
    const char *space = memchr(first.ptr, ' ', first.len);
    if (space) {
        req.method = (edge_str){first.ptr, (size_t)(space - first.ptr)};
        req.target = (edge_str){space + 1, first.len - (size_t)(space - first.ptr) - 1};
    } else {
        req.method = first;
    }
    const char *q = req.target.ptr ? memchr(req.target.ptr, '?', req.target.len) : NULL;
    req.path = q ? (edge_str){req.target.ptr, (size_t)(q - req.target.ptr)} : req.target;
    if (q) req.query = (edge_str){q + 1, req.target.len - (size_t)(q - req.target.ptr) - 1};
    req.headers.ptr = p;
    while (p < end && *p != '\n') edge__line(&p, end);
    req.headers.len = (size_t)(p - req.headers.ptr);
    if (p < end) p++;
    req.body = (edge_str){p, (size_t)(end - p)};

    edge_response res;
    memset(&res, 0, sizeof res);
    res.status = 200;
    on_request(&req, &res);

    char status[4] = {(char)('0' + res.status / 100 % 10), (char)('0' + res.status / 10 % 10),
                      (char)('0' + res.status % 10), '\n'};
    size_t total = 4 + res.head_len + 1 + res.body_len;
    char *out = edge__take(total);
    if (!out) __builtin_trap();
    memcpy(out, status, 4);
    if (res.head_len) memcpy(out + 4, res.head, res.head_len);
    out[4 + res.head_len] = '\n';
    if (res.body_len) memcpy(out + 5 + res.head_len, res.body, res.body_len);
    return ((int64_t)(uintptr_t)out << 32) | (int64_t)total;
}
