// A wasi:http/incoming-handler@0.2.0 handler in plain C against the canonical-ABI imports, no helper.
// GET /any/path -> 200 "raw C: GET /any/path (N body bytes)"; /missing -> 404; x-echo request header echoed.
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned char u8;

#define IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
#define HTTP "wasi:http/types@0.2.0"
#define IO "wasi:io/streams@0.2.0"
IMPORT(HTTP, "[method]incoming-request.method") void req_method(u32 req, void *ret);
IMPORT(HTTP, "[method]incoming-request.path-with-query") void req_path(u32 req, void *ret);
IMPORT(HTTP, "[method]incoming-request.headers") u32 req_headers(u32 req);
IMPORT(HTTP, "[method]incoming-request.consume") void req_consume(u32 req, void *ret);
IMPORT(HTTP, "[method]incoming-body.stream") void body_stream(u32 body, void *ret);
IMPORT(HTTP, "[method]fields.get") void fields_get(u32 f, const char *name, u32 len, void *ret);
IMPORT(HTTP, "[constructor]fields") u32 fields_new(void);
IMPORT(HTTP, "[method]fields.append") void fields_append(u32 f, const char *n, u32 nl, const char *v, u32 vl, void *ret);
IMPORT(HTTP, "[constructor]outgoing-response") u32 response_new(u32 headers);
IMPORT(HTTP, "[method]outgoing-response.set-status-code") u32 response_status(u32 res, u32 code);
IMPORT(HTTP, "[method]outgoing-response.body") void response_body(u32 res, void *ret);
IMPORT(HTTP, "[method]outgoing-body.write") void outbody_write(u32 body, void *ret);
IMPORT(HTTP, "[static]outgoing-body.finish") void outbody_finish(u32 body, u32 has_trailers, u32 trailers, void *ret);
IMPORT(HTTP, "[static]response-outparam.set") void outparam_set(u32 p, u32 tag, u32 a, u32 b, u64 c, u32 d, u32 e, u32 f, u32 g);
IMPORT(HTTP, "[resource-drop]fields") void drop_fields(u32);
IMPORT(HTTP, "[resource-drop]incoming-request") void drop_request(u32);
IMPORT(HTTP, "[resource-drop]incoming-body") void drop_inbody(u32);
IMPORT(IO, "[method]input-stream.blocking-read") void stream_read(u32 s, u64 len, void *ret);
IMPORT(IO, "[method]output-stream.blocking-write-and-flush") void stream_write(u32 s, const void *p, u32 len, void *ret);
IMPORT(IO, "[resource-drop]input-stream") void drop_input(u32);
IMPORT(IO, "[resource-drop]output-stream") void drop_output(u32);

static u8 heap[1 << 16];
static u32 top;
__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, u32 old_size, u32 align, u32 size) {
    top = (top + align - 1) & ~(align - 1);
    if (top + size > sizeof heap) top = 0;  // tiny bump arena, reset per request
    void *p = heap + top;
    u8 *src = old, *dst = p;
    for (u32 i = 0; i < old_size && i < size; i++) dst[i] = src[i];
    top += size;
    return p;
}

static char out[4096];
static u32 n;
static void put(const char *s, u32 len) { for (u32 i = 0; i < len && n < sizeof out; i++) out[n++] = s[i]; }
static void puts_(const char *s) { u32 len = 0; while (s[len]) len++; put(s, len); }
static void putu(u32 v) { char b[12]; int i = 12; do { b[--i] = '0' + v % 10; v /= 10; } while (v); put(b + i, 12 - i); }
static const char *METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

__attribute__((export_name("wasi:http/incoming-handler@0.2.0#handle"))) void handle(u32 req, u32 outparam) {
    u32 ret[4] __attribute__((aligned(8)));
    n = 0; top = 0;
    puts_("raw C: ");
    req_method(req, ret);
    u8 tag = *(u8 *)ret;
    if (tag < 9) puts_(METHODS[tag]); else put((const char *)ret[1], ret[2]);
    puts_(" ");
    req_path(req, ret);
    const char *path = (const char *)ret[1];
    u32 path_len = *(u8 *)ret ? ret[2] : 0;
    put(path, path_len);
    u32 headers = req_headers(req);
    u32 echo[3] = {0, 0, 0};
    fields_get(headers, "x-echo", 6, ret);  // list<list<u8>>: ptr, len
    if (ret[1]) { u32 *item = (u32 *)ret[0]; echo[0] = 1; echo[1] = item[0]; echo[2] = item[1]; }
    drop_fields(headers);
    u32 body_bytes = 0;
    req_consume(req, ret);
    if (*(u8 *)ret == 0) {
        u32 inbody = ret[1];
        body_stream(inbody, ret);
        if (*(u8 *)ret == 0) {
            u32 stream = ret[1];
            for (;;) {
                top = 0;
                stream_read(stream, 65536, ret);
                if (*(u8 *)ret != 0) break;  // closed (or failed)
                body_bytes += ret[2];
            }
            drop_input(stream);
        }
        drop_inbody(inbody);
    }
    drop_request(req);
    puts_(" (");
    putu(body_bytes);
    puts_(" body bytes)\n");

    int missing = path_len >= 8 && path[0] == '/' && path[1] == 'm' && path[2] == 'i' && path[3] == 's'
                  && path[4] == 's' && path[5] == 'i' && path[6] == 'n' && path[7] == 'g';
    u32 fields = fields_new();
    fields_append(fields, "content-type", 12, "text/plain", 10, ret);
    fields_append(fields, "x-handler", 9, "raw-c", 5, ret);
    if (echo[0]) fields_append(fields, "x-echo", 6, (const char *)echo[1], echo[2], ret);
    u32 res = response_new(fields);
    response_status(res, missing ? 404 : 200);
    response_body(res, ret);
    u32 body = ret[1];
    outbody_write(body, ret);
    u32 stream = ret[1];
    stream_write(stream, out, n, ret);
    drop_output(stream);
    outparam_set(outparam, 0, res, 0, 0, 0, 0, 0, 0);
    outbody_finish(body, 0, 0, ret);
}
