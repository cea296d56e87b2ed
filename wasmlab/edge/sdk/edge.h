/* wasmlab edge helper for C and C++: a standard wasi:http/proxy@0.2.0 handler written as one callback.

       #include "edge.h"      (wasmlab.edge.build adds it when your code defines on_request)
       void on_request(const edge_request *req, edge_response *res) {
           edge_set_header(res, "content-type", "text/plain");
           edge_write_str(res, "hello ");
           edge_write_s(res, edge_query(req, "name"));
       }

   Nothing here is a wasmlab dialect: this file declares the canonical-ABI imports of wasi:http/types@0.2.0 and
   wasi:io/streams@0.2.0 (the lowered signatures wit-bindgen would generate, see
   `wasm-tools component embed --dummy-names legacy`), exports wasi:http/incoming-handler@0.2.0#handle and
   cabi_realloc, and turns them into the request and response structs below. The module that results is what
   `wasm-tools component new` wraps into a wasi:http/proxy component, which any wasi:http host serves.

   Memory: everything a request needs (what the host passes in, what you write) comes from a static arena (no
   memory.grow for small requests), then from malloc; all of it is released when the next request starts. */
#ifndef WASMLAB_EDGE_H
#define WASMLAB_EDGE_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
#define EDGE__EXTERN extern "C"
#define EDGE__ALIGNED(n) alignas(n)
#else
#define EDGE__EXTERN
#define EDGE__ALIGNED(n) _Alignas(n)
#endif

typedef struct {
    const char *ptr; /* not NUL-terminated */
    size_t len;      /* 0 (and ptr NULL) when absent */
} edge_str;

typedef struct {
    edge_str name, value; /* names as the host gives them (lower-case over HTTP/1.1) */
} edge_header;

typedef struct {
    edge_str method;  /* "GET" */
    edge_str target;  /* "/path?query" as sent */
    edge_str path;    /* "/path" */
    edge_str query;   /* "query" (without '?') */
    const edge_header *headers;
    size_t header_count;
    edge_str body;
} edge_request;

typedef struct {
    int status; /* 200 unless you set it */
    edge_header *headers;
    size_t header_count, header_cap;
    char *body;
    size_t body_len, body_cap;
} edge_response;

EDGE__EXTERN void on_request(const edge_request *req, edge_response *res);

static inline edge_str edge__str(const char *ptr, size_t len) {
    edge_str s;
    s.ptr = ptr;
    s.len = len;
    return s;
}

static inline int edge_eq(edge_str s, const char *text) {
    size_t n = strlen(text);
    return s.len == n && (n == 0 || memcmp(s.ptr, text, n) == 0);
}

static inline int edge__lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static inline int edge__iequal(edge_str s, const char *text) {
    size_t n = strlen(text), i = 0;
    if (s.len != n) return 0;
    while (i < n && edge__lower((unsigned char)s.ptr[i]) == edge__lower((unsigned char)text[i])) i++;
    return i == n;
}

/* The value of header `name` (case-insensitive), or an empty edge_str. */
static inline edge_str edge_get_header(const edge_request *req, const char *name) {
    for (size_t i = 0; i < req->header_count; i++)
        if (edge__iequal(req->headers[i].name, name)) return req->headers[i].value;
    return edge__str(NULL, 0);
}

/* The raw (not percent-decoded) value of query parameter `name`, or an empty edge_str. */
static inline edge_str edge_query(const edge_request *req, const char *name) {
    size_t n = strlen(name);
    const char *p = req->query.ptr, *end = p + req->query.len;
    while (p && p < end) {
        const char *amp = (const char *)memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        const char *eq = (const char *)memchr(p, '=', (size_t)(amp - p));
        const char *key_end = eq ? eq : amp;
        if ((size_t)(key_end - p) == n && memcmp(p, name, n) == 0)
            return eq ? edge__str(eq + 1, (size_t)(amp - eq - 1)) : edge__str(amp, 0);
        p = amp + 1;
    }
    return edge__str(NULL, 0);
}

/* per-request memory ------------------------------------------------------------------------------------- */
#ifndef EDGE_ARENA_SIZE
#define EDGE_ARENA_SIZE (64 * 1024)
#endif
EDGE__ALIGNED(16) static char edge__arena[EDGE_ARENA_SIZE];
static size_t edge__used;
static void *edge__heap[256];
static int edge__heap_count;

static void *edge__take(size_t n, size_t align) {
    if (align < 1) align = 1;
    size_t start = (edge__used + align - 1) & ~(align - 1);
    if (start <= EDGE_ARENA_SIZE && n <= EDGE_ARENA_SIZE - start) {
        edge__used = start + n;
        return edge__arena + start;
    }
    if (edge__heap_count >= 256) __builtin_trap();
    void *p = malloc(n ? n : 1);
    if (!p) __builtin_trap();
    edge__heap[edge__heap_count++] = p;
    return p;
}

static void edge__release_all(void) {
    for (int i = 0; i < edge__heap_count; i++) free(edge__heap[i]);
    edge__heap_count = 0;
    edge__used = 0;
}

/* The canonical ABI's allocator: the host calls it for the strings and lists it hands to the guest. */
EDGE__EXTERN __attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size,
                                                                              size_t align, size_t new_size) {
    if (old && new_size <= old_size) return old;
    void *p = edge__take(new_size, align);
    if (old && old_size) memcpy(p, old, old_size);
    return p;
}

static inline void edge__grow(char **buf, size_t *len, size_t *cap, size_t more, size_t unit) {
    if (*len + more <= *cap) return;
    size_t want = *cap ? *cap * 2 : 16;
    while (want < *len + more) want *= 2;
    char *grown = (char *)edge__take(want * unit, 8);
    if (*len) memcpy(grown, *buf, *len * unit);
    *buf = grown;
    *cap = want;
}

static inline void edge_status(edge_response *res, int status) { res->status = status; }

static inline void edge_set_header_s(edge_response *res, edge_str name, edge_str value) {
    edge__grow((char **)&res->headers, &res->header_count, &res->header_cap, 1, sizeof(edge_header));
    char *copy = (char *)edge__take(name.len + value.len, 1);
    memcpy(copy, name.ptr, name.len);
    memcpy(copy + name.len, value.ptr, value.len);
    res->headers[res->header_count].name = edge__str(copy, name.len);
    res->headers[res->header_count].value = edge__str(copy + name.len, value.len);
    res->header_count++;
}

static inline void edge_set_header(edge_response *res, const char *name, const char *value) {
    edge_set_header_s(res, edge__str(name, strlen(name)), edge__str(value, strlen(value)));
}

static inline void edge_write(edge_response *res, const void *data, size_t n) {
    edge__grow(&res->body, &res->body_len, &res->body_cap, n, 1);
    if (n) memcpy(res->body + res->body_len, data, n);
    res->body_len += n;
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

/* the standard imports (canonical ABI, lowered) ------------------------------------------------------------ */
#define EDGE__IMPORT(module, name) EDGE__EXTERN __attribute__((import_module(module), import_name(name)))
#define EDGE__TYPES "wasi:http/types@0.2.0"
#define EDGE__STREAMS "wasi:io/streams@0.2.0"
EDGE__IMPORT(EDGE__TYPES, "[method]incoming-request.method") void edge__req_method(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[method]incoming-request.path-with-query") void edge__req_path(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[method]incoming-request.headers") int32_t edge__req_headers(int32_t);
EDGE__IMPORT(EDGE__TYPES, "[method]incoming-request.consume") void edge__req_consume(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[resource-drop]incoming-request") void edge__drop_request(int32_t);
EDGE__IMPORT(EDGE__TYPES, "[method]fields.entries") void edge__fields_entries(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[static]fields.from-list") void edge__fields_from_list(const void *, size_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[constructor]fields") int32_t edge__fields_new(void);
EDGE__IMPORT(EDGE__TYPES, "[resource-drop]fields") void edge__drop_fields(int32_t);
EDGE__IMPORT(EDGE__TYPES, "[method]incoming-body.stream") void edge__body_stream(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[resource-drop]incoming-body") void edge__drop_incoming_body(int32_t);
EDGE__IMPORT(EDGE__TYPES, "[constructor]outgoing-response") int32_t edge__response_new(int32_t);
EDGE__IMPORT(EDGE__TYPES, "[method]outgoing-response.set-status-code") int32_t edge__response_status(int32_t,
                                                                                                    int32_t);
EDGE__IMPORT(EDGE__TYPES, "[method]outgoing-response.body") void edge__response_body(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[method]outgoing-body.write") void edge__body_write(int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[static]outgoing-body.finish") void edge__body_finish(int32_t, int32_t, int32_t, void *);
EDGE__IMPORT(EDGE__TYPES, "[static]response-outparam.set") void edge__outparam_set(int32_t, int32_t, int32_t,
                                                                                   int32_t, int64_t, int32_t,
                                                                                   int32_t, int32_t, int32_t);
EDGE__IMPORT(EDGE__STREAMS, "[method]input-stream.blocking-read") void edge__read(int32_t, int64_t, void *);
EDGE__IMPORT(EDGE__STREAMS, "[resource-drop]input-stream") void edge__drop_input(int32_t);
EDGE__IMPORT(EDGE__STREAMS, "[method]output-stream.blocking-write-and-flush") void edge__write(int32_t,
                                                                                              const void *,
                                                                                              size_t, void *);
EDGE__IMPORT(EDGE__STREAMS, "[resource-drop]output-stream") void edge__drop_output(int32_t);
EDGE__IMPORT("wasi:io/error@0.2.0", "[resource-drop]error") void edge__drop_error(int32_t);

EDGE__ALIGNED(8) static uint8_t edge__ret[64]; /* return area for results passed back through memory */
#define EDGE__U8(off) (*(uint8_t *)(edge__ret + (off)))
#define EDGE__I32(off) (*(int32_t *)(edge__ret + (off)))

static const char *const edge__methods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                            "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static edge_str edge__read_body(int32_t request) {
    edge__req_consume(request, edge__ret);
    if (EDGE__U8(0) != 0) return edge__str(NULL, 0);
    int32_t body = EDGE__I32(4);
    edge__body_stream(body, edge__ret);
    if (EDGE__U8(0) != 0) {
        edge__drop_incoming_body(body);
        return edge__str(NULL, 0);
    }
    int32_t stream = EDGE__I32(4);
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        edge__read(stream, 64 * 1024, edge__ret);
        if (EDGE__U8(0) != 0) { /* stream-error: closed (done) or last-operation-failed(error) */
            if (EDGE__U8(4) == 0) edge__drop_error(EDGE__I32(8));
            break;
        }
        const char *chunk = (const char *)(uintptr_t)EDGE__I32(4);
        size_t n = (size_t)EDGE__I32(8);
        if (!len && n) { /* the first chunk is used where the host put it */
            data = (char *)chunk;
            len = cap = n;
            continue;
        }
        edge__grow(&data, &len, &cap, n, 1);
        if (n) memcpy(data + len, chunk, n);
        len += n;
    }
    edge__drop_input(stream);
    edge__drop_incoming_body(body);
    return edge__str(data, len);
}

static void edge__send(int32_t outparam, edge_response *res) {
    size_t n = res->header_count;
    int32_t *list = (int32_t *)edge__take(n * 16 + 1, 4); /* list<tuple<string, list<u8>>> */
    for (size_t i = 0; i < n; i++) {
        list[4 * i] = (int32_t)(uintptr_t)res->headers[i].name.ptr;
        list[4 * i + 1] = (int32_t)res->headers[i].name.len;
        list[4 * i + 2] = (int32_t)(uintptr_t)res->headers[i].value.ptr;
        list[4 * i + 3] = (int32_t)res->headers[i].value.len;
    }
    edge__fields_from_list(list, n, edge__ret);
    int32_t fields;
    int status = res->status;
    if (EDGE__U8(0) == 0) {
        fields = EDGE__I32(4);
    } else { /* a forbidden or malformed header: say so instead of sending a half-made response */
        fields = edge__fields_new();
        status = 500;
        res->body_len = 0;
        edge_write_str(res, "handler set an invalid or forbidden header\n");
    }
    int32_t response = edge__response_new(fields);
    if (edge__response_status(response, status) != 0) {
        edge__response_status(response, 500);
        res->body_len = 0;
        edge_write_str(res, "handler set an invalid status code\n");
    }
    edge__response_body(response, edge__ret);
    int32_t body = EDGE__I32(4);
    edge__body_write(body, edge__ret);
    int32_t stream = EDGE__I32(4);
    edge__outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
    for (size_t off = 0; off < res->body_len;) { /* blocking-write-and-flush takes at most 4096 bytes */
        size_t chunk = res->body_len - off < 4096 ? res->body_len - off : 4096;
        edge__write(stream, res->body + off, chunk, edge__ret);
        if (EDGE__U8(0) != 0) {
            if (EDGE__U8(4) == 0) edge__drop_error(EDGE__I32(8));
            break;
        }
        off += chunk;
    }
    edge__drop_output(stream);
    edge__body_finish(body, 0, 0, edge__ret);
}

EDGE__EXTERN __attribute__((export_name("wasi:http/incoming-handler@0.2.0#handle"))) void edge__handle(
    int32_t request, int32_t outparam) {
    edge__release_all();
    edge_request req;
    memset(&req, 0, sizeof req);
    edge__req_method(request, edge__ret);
    uint8_t tag = EDGE__U8(0);
    if (tag < 9) {
        req.method = edge__str(edge__methods[tag], strlen(edge__methods[tag]));
    } else {
        req.method = edge__str((const char *)(uintptr_t)EDGE__I32(4), (size_t)EDGE__I32(8));
    }
    edge__req_path(request, edge__ret);
    req.target = EDGE__U8(0) ? edge__str((const char *)(uintptr_t)EDGE__I32(4), (size_t)EDGE__I32(8))
                             : edge__str("/", 1);
    const char *q = (const char *)memchr(req.target.ptr, '?', req.target.len);
    req.path = q ? edge__str(req.target.ptr, (size_t)(q - req.target.ptr)) : req.target;
    if (q) req.query = edge__str(q + 1, req.target.len - (size_t)(q - req.target.ptr) - 1);
    int32_t fields = edge__req_headers(request);
    edge__fields_entries(fields, edge__ret);
    req.headers = (const edge_header *)(uintptr_t)EDGE__I32(0); /* same layout: two (ptr, len) pairs */
    req.header_count = (size_t)EDGE__I32(4);
    edge__drop_fields(fields);
    req.body = edge__read_body(request);
    edge__drop_request(request);

    edge_response res;
    memset(&res, 0, sizeof res);
    res.status = 200;
    on_request(&req, &res);
    edge__send(outparam, &res);
}
#endif
