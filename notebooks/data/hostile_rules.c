/* hostile_rules.c: three rules that a careless (or malicious) push could ship to an edge node (notebook 8).
 * Each takes the request head the host wrote at `request_buffer()` and returns 0 (allow) or 1 (block).
 *
 *   ua_matches(n)   a "regex" rule on the User-Agent, with Rob Pike's backtracking matcher (c . ^ $ *).
 *                   A pattern with many `.*` makes it backtrack catastrophically on a line that fails to match.
 *   count_spaces(n) a rule with a classic bug: `continue` skips the increment, so any space loops forever.
 *   remember(n)     a rule that keeps a copy of every request "for later analysis" and frees nothing; a copy
 *                   it cannot allocate aborts, as C code usually does on out-of-memory.
 */
#include <stdlib.h>
#include <string.h>

static char request[16384];
static char pattern[256] = "sqlmap";

char *request_buffer(void) { return request; }
char *pattern_buffer(void) { return pattern; }

/* Rob Pike's matcher, from "The Practice of Programming". */
static int matchhere(const char *re, const char *text, const char *end);

static int matchstar(int c, const char *re, const char *text, const char *end) {
    do {
        if (matchhere(re, text, end)) return 1;
    } while (text < end && (*text++ == c || c == '.'));
    return 0;
}

static int matchhere(const char *re, const char *text, const char *end) {
    if (re[0] == 0) return 1;
    if (re[1] == '*') return matchstar(re[0], re + 2, text, end);
    if (re[0] == '$' && re[1] == 0) return text == end;
    if (text < end && (re[0] == '.' || re[0] == *text)) return matchhere(re + 1, text + 1, end);
    return 0;
}

static int match(const char *re, const char *text, const char *end) {
    if (re[0] == '^') return matchhere(re + 1, text, end);
    do {
        if (matchhere(re, text, end)) return 1;
    } while (text++ < end);
    return 0;
}

/* the value of the User-Agent header, [*start, *end) */
static int user_agent(int n, const char **start, const char **end) {
    const char *p = request, *stop = request + n;
    while (p < stop) {
        const char *eol = memchr(p, '\n', stop - p);
        if (!eol) eol = stop;
        if (eol - p > 11 && strncasecmp(p, "user-agent:", 11) == 0) {
            *start = p + 11;
            while (*start < eol && **start == ' ') (*start)++;
            *end = eol;
            while (*end > *start && ((*end)[-1] == '\r' || (*end)[-1] == ' ')) (*end)--;
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

int ua_matches(int n) {
    const char *start, *end;
    if (!user_agent(n, &start, &end)) return 0;
    return match(pattern, start, end);
}

int count_spaces(int n) {
    volatile int i = 0, spaces = 0; /* volatile: keeps the compiler from deleting the endless loop */
    while (i < n) {
        if (request[i] == ' ') {
            spaces++;
            continue; /* the bug: i++ is skipped */
        }
        i++;
    }
    return spaces > 64;
}

struct kept {
    struct kept *next;
    char copy[65536];
};
static struct kept *history;
static int kept_count;

int remember(int n) {
    struct kept *k = malloc(sizeof *k);
    if (!k) abort();
    memcpy(k->copy, request, n < (int)sizeof k->copy ? n : (int)sizeof k->copy);
    k->next = history;
    history = k;
    kept_count++;
    return 0;
}

int remembered(void) { return kept_count; }
