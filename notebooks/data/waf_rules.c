/* waf_rules.c: a small web-application-firewall rule set, compiled to a Wasm library by notebook 8.
 *
 * The host writes one HTTP request head ("METHOD target HTTP/1.1\r\nName: value\r\n...") into the buffer at
 * `request_buffer()` and calls `inspect(length)`. The answer is 0 (allow) or the id of the first rule that
 * blocked the request; `verdict_detail()` points at a NUL-terminated text saying what matched.
 *
 * Rules, checked in this order:
 *   1 oversized request head       more than MAX_HEAD bytes, or one header line longer than MAX_HEADER_LINE
 *   2 method not allowed            anything but GET HEAD POST PUT DELETE OPTIONS
 *   3 missing Host header
 *   4 scanner user agent            sqlmap, nikto, nmap, masscan, zgrab
 *   5 path traversal                "../" or "..\" in the URL-decoded path (also double-encoded), or a NUL byte
 *   6 SQL injection                 tautologies, UNION SELECT, stacked queries, comments, time-based probes
 *   7 cross-site scripting          <script, javascript:, onerror=, onload=
 *   8 rate limit                    more than RATE_LIMIT requests from one client (X-Client-IP), counted in the
 *                                   host's key-value store (the `wasmlab` host module), so the count outlives
 *                                   this instance and is shared by every instance on the same runtime
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_HEAD 4096
#define MAX_HEADER_LINE 1024
#define RATE_LIMIT 5

__attribute__((import_module("wasmlab"), import_name("kv_get"))) int kv_get(const char *key, int key_len,
                                                                             char *out, int out_cap);
__attribute__((import_module("wasmlab"), import_name("kv_set"))) void kv_set(const char *key, int key_len,
                                                                             const char *val, int val_len);

static char request[MAX_HEAD * 4]; /* room for oversized requests: rule 1 must see them to reject them */
static char decoded[MAX_HEAD * 4];
static char detail[160];
static int requests_seen;

char *request_buffer(void) { return request; }
int request_capacity(void) { return (int)sizeof request; }
const char *verdict_detail(void) { return detail; }
int requests_inspected(void) { return requests_seen; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* URL-decode (twice, to catch double encoding such as %252e), lower-case, and squeeze blanks. */
static int normalize(const char *src, int n, char *dst) {
    int len = 0;
    for (int i = 0; i < n; i++) {
        int c = (unsigned char)src[i];
        if (c == '%' && i + 2 < n && hex(src[i + 1]) >= 0 && hex(src[i + 2]) >= 0) {
            c = hex(src[i + 1]) * 16 + hex(src[i + 2]);
            i += 2;
            if (c == '%' && i + 2 < n && hex(src[i + 1]) >= 0 && hex(src[i + 2]) >= 0) {
                c = hex(src[i + 1]) * 16 + hex(src[i + 2]);
                i += 2;
            }
        } else if (c == '+') {
            c = ' ';
        }
        c = lower(c);
        if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        if (c == ' ' && len > 0 && dst[len - 1] == ' ') continue;
        dst[len++] = (char)c;
    }
    dst[len] = 0;
    return len;
}

static const char *find(const char *hay, int n, const char *needle) {
    int m = (int)strlen(needle);
    for (int i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return hay + i;
    return 0;
}

/* The value of header `name` (lower-case, with the colon) in the head, or 0; its length in *len. */
static const char *header(const char *head, int n, const char *name, int *len) {
    int m = (int)strlen(name);
    const char *line = memchr(head, '\n', n);
    while (line && line + 1 < head + n) {
        line++;
        const char *end = memchr(line, '\n', head + n - line);
        if (!end) end = head + n;
        int ok = end - line > m;
        for (int i = 0; ok && i < m; i++) ok = lower(line[i]) == name[i];
        if (ok) {
            const char *v = line + m;
            while (v < end && *v == ' ') v++;
            const char *e = end;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ')) e--;
            *len = (int)(e - v);
            return v;
        }
        line = end < head + n ? end : 0;
    }
    return 0;
}

static int block(int rule, const char *what, const char *text, int len) {
    if (len > 40) len = 40;
    snprintf(detail, sizeof detail, "%s%s%.*s", what, text ? ": " : "", text ? len : 0, text ? text : "");
    return rule;
}

static const char *const SQLI[] = {
    "' or '1'='1", "' or 1=1", "\" or 1=1", " or 1=1--", "union select", "union all select", "; drop table",
    "'; exec", "sleep(", "benchmark(", "waitfor delay", "information_schema", "' --", "'--", "/*!", 0,
};
static const char *const XSS[] = {"<script", "javascript:", "onerror=", "onload=", "<iframe", 0};
static const char *const SCANNERS[] = {"sqlmap", "nikto", "nmap", "masscan", "zgrab", 0};
static const char *const METHODS[] = {"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", 0};

int inspect(int n) {
    requests_seen++;
    detail[0] = 0;
    if (n < 0 || n > (int)sizeof request) return block(1, "request head too large for the buffer", 0, 0);
    const char *head = request;

    /* 1: sizes */
    if (n > MAX_HEAD) {
        snprintf(detail, sizeof detail, "request head is %d bytes (limit %d)", n, MAX_HEAD);
        return 1;
    }
    for (const char *line = head; line < head + n;) {
        const char *end = memchr(line, '\n', head + n - line);
        if (!end) end = head + n;
        if (end - line > MAX_HEADER_LINE) {
            snprintf(detail, sizeof detail, "a header line is %d bytes (limit %d)", (int)(end - line),
                     MAX_HEADER_LINE);
            return 1;
        }
        line = end + 1;
    }

    /* 2: method */
    int allowed = 0;
    for (int i = 0; METHODS[i] && !allowed; i++) allowed = strncmp(head, METHODS[i], strlen(METHODS[i])) == 0;
    if (!allowed) {
        const char *sp = memchr(head, ' ', n);
        return block(2, "method not allowed", head, sp ? (int)(sp - head) : n);
    }

    /* 3: Host */
    int host_len = 0;
    if (!header(head, n, "host:", &host_len)) return block(3, "no Host header", 0, 0);

    /* 4: scanners */
    int ua_len = 0;
    const char *ua = header(head, n, "user-agent:", &ua_len);
    if (ua) {
        int m = normalize(ua, ua_len, decoded);
        for (int i = 0; SCANNERS[i]; i++)
            if (find(decoded, m, SCANNERS[i])) return block(4, "scanner user agent", SCANNERS[i], 40);
    }

    /* the request target: between the first and the second space of the request line */
    const char *target = memchr(head, ' ', n) + 1;
    const char *line_end = memchr(head, '\n', n);
    const char *target_end = memchr(target, ' ', (line_end ? line_end : head + n) - target);
    if (!target_end) target_end = line_end ? line_end : head + n;
    int target_len = (int)(target_end - target);
    for (int i = 0; i < target_len; i++)
        if (target[i] == '%' && i + 2 < target_len && target[i + 1] == '0' && target[i + 2] == '0')
            return block(5, "NUL byte in the URL", target, target_len);
    int m = normalize(target, target_len, decoded);
    const char *query = memchr(decoded, '?', m);
    int path_len = query ? (int)(query - decoded) : m;

    /* 5: path traversal (in the path only) */
    if (find(decoded, path_len, "../") || find(decoded, path_len, "..\\") || find(decoded, path_len, "/.."))
        return block(5, "path traversal", decoded, path_len);

    /* 6, 7: injections, in the whole target, then in the body-like headers (Cookie, Referer) */
    static const char *const places[] = {0, "cookie:", "referer:"};
    for (int p = 0; p < 3; p++) {
        int len = m;
        if (p > 0) {
            int raw_len = 0;
            const char *raw = header(head, n, places[p], &raw_len);
            if (!raw) continue;
            len = normalize(raw, raw_len, decoded);
        }
        for (int i = 0; SQLI[i]; i++) {
            const char *hit = find(decoded, len, SQLI[i]);
            if (hit) return block(6, "SQL injection", hit, (int)(decoded + len - hit));
        }
        for (int i = 0; XSS[i]; i++) {
            const char *hit = find(decoded, len, XSS[i]);
            if (hit) return block(7, "cross-site scripting", hit, (int)(decoded + len - hit));
        }
    }

    /* 8: rate limit per client, the counter kept by the host */
    int ip_len = 0;
    const char *ip = header(head, n, "x-client-ip:", &ip_len);
    if (ip && ip_len < 64) {
        char key[80], value[16];
        int key_len = snprintf(key, sizeof key, "rate:%.*s", ip_len, ip);
        int got = kv_get(key, key_len, value, (int)sizeof value - 1);
        int count = 0;
        if (got > 0 && got < (int)sizeof value) {
            value[got] = 0;
            sscanf(value, "%d", &count);
        }
        count++;
        int value_len = snprintf(value, sizeof value, "%d", count);
        kv_set(key, key_len, value, value_len);
        if (count > RATE_LIMIT) {
            snprintf(detail, sizeof detail, "client %.*s: request %d (limit %d)", ip_len, ip, count, RATE_LIMIT);
            return 8;
        }
    }
    return 0;
}
