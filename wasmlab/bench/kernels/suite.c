/* wasmlab's benchmark kernels: one C file, compiled natively (gcc) and to Wasm (clang), at the same -O level.

   Every kernel is `uint32_t run_<name>(uint32_t iterations)`: it does `iterations` units of work ("ops") inside
   the guest and returns a checksum of everything it computed, so an engine cannot win by doing nothing, and a
   wrong answer is caught (the harness compares every engine's checksum with the native build's).

   Rules that keep native and Wasm results bit-identical and the work honest:
   - no libc inside the timed code (no memcpy/qsort/sin: glibc and wasi-libc differ), only +,-,*,/ on doubles
     (IEEE-exact on both; x86-64 without -march has no FMA to contract into);
   - every op depends on the op index or on the previous result, so no compiler can hoist work out of the loop;
   - buffers are static and initialised on first use (a warm-up call pays for it, not the samples);
   - a kernel's checksum depends on `iterations` only, never on earlier calls in the same instance.

   Built as a library (WASI reactor) every non-static function is exported: the `run_*` kernels and
   `bench_nop` (the per-call overhead probe). With -DBENCH_MAIN it is also a program (native, or a WASI
   command): `suite KERNEL ITERATIONS [WARMUP [REPEATS]]` runs WARMUP ops untimed, then REPEATS timed runs of
   ITERATIONS ops, printing one line per run: `KERNEL CHECKSUM NANOSECONDS` (clock_gettime(CLOCK_MONOTONIC)
   around the call only). */

#include <stdint.h>

/* ---------------------------------------------------------------------------------------------- helpers */
static uint32_t mix32(uint64_t h) { return (uint32_t)(h ^ (h >> 32)); }

static uint64_t dbits(double d) {
    union { double d; uint64_t u; } v;
    v.d = d;
    return v.u;
}

static uint32_t xorshift32(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* per-call overhead probe: an export that does nothing */
uint32_t bench_nop(uint32_t x) { return x; }

/* -------------------------------------------------------------------------- fib: recursion (calls, branches) */
static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* one op = fib(20) or fib(21), chosen by the running checksum */
uint32_t run_fib(uint32_t iterations) {
    uint32_t acc = 0;
    for (uint32_t i = 0; i < iterations; i++) acc += fib(20 + (acc & 1));
    return acc;
}

/* ------------------------------------------------------------- hash: 64-bit multiply/xor-shift hashing chain */
#define HASH_WORDS 128 /* 1 KiB per op */
static uint64_t hash_data[HASH_WORDS];
static int hash_ready;

/* one op = hash 1 KiB (128 words) into the running 64-bit state: a serial chain, no vectorising */
uint32_t run_hash(uint32_t iterations) {
    if (!hash_ready) {
        uint32_t s = 0x12345678u;
        for (int i = 0; i < HASH_WORDS; i++) hash_data[i] = ((uint64_t)xorshift32(&s) << 32) | xorshift32(&s);
        hash_ready = 1;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < iterations; i++) {
        h ^= i;
        for (int w = 0; w < HASH_WORDS; w++) {
            h = (h ^ hash_data[w]) * 0x9e3779b97f4a7c15ull;
            h ^= h >> 29;
        }
    }
    return mix32(h);
}

/* ------------------------------------------------------- memstream: read 1 MiB, write 1 MiB, per op */
#define STREAM_WORDS (1 << 18) /* 256 Ki uint32 = 1 MiB per buffer */
static uint32_t stream_src[STREAM_WORDS];
static uint32_t stream_dst[STREAM_WORDS];
static int stream_ready;

/* one op = dst[i] = src[i] * 3 + k over 1 MiB, summing what was written (2 MiB of traffic) */
uint32_t run_memstream(uint32_t iterations) {
    if (!stream_ready) {
        uint32_t s = 0x9e3779b9u;
        for (int i = 0; i < STREAM_WORDS; i++) stream_src[i] = xorshift32(&s);
        stream_ready = 1;
    }
    uint32_t sum = 0;
    for (uint32_t k = 0; k < iterations; k++) {
        for (int i = 0; i < STREAM_WORDS; i++) {
            uint32_t v = stream_src[i] * 3u + k;
            stream_dst[i] = v;
            sum += v;
        }
        sum ^= stream_dst[k & (STREAM_WORDS - 1)];
    }
    return sum;
}

/* ------------------------------------------------------------------ matmul: 32x32 double matrix multiply */
#define MAT_N 32
static double mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

/* one op = C = A * B (i-k-j order, 2*32^3 = 65,536 flops), then A is nudged so the next op differs.
   A and B are set afresh by each call (1,024 stores each), so the checksum depends on `iterations` only. */
uint32_t run_matmul(uint32_t iterations) {
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            mat_a[i][j] = (double)((i * 7 + j * 3) % 17) / 16.0 - 0.5;
            mat_b[i][j] = (double)((i * 5 + j * 11) % 13) / 8.0 - 0.75;
        }
    double total = 0.0;
    for (uint32_t it = 0; it < iterations; it++) {
        for (int i = 0; i < MAT_N; i++) {
            for (int j = 0; j < MAT_N; j++) mat_c[i][j] = 0.0;
            for (int k = 0; k < MAT_N; k++) {
                double a = mat_a[i][k];
                for (int j = 0; j < MAT_N; j++) mat_c[i][j] += a * mat_b[k][j];
            }
        }
        total += mat_c[it % MAT_N][(it * 7) % MAT_N];
        mat_a[it % MAT_N][(it * 3) % MAT_N] += 0.0009765625; /* 2^-10: exact */
    }
    return mix32(dbits(total));
}

/* ------------------------------------------------------------ mandel: float math (mul, add, compare) */
#define MANDEL_SIDE 16
#define MANDEL_ITER 64

/* one op = a 16x16 tile of the Mandelbrot set (at most 64 iterations per point), shifted by the op index */
uint32_t run_mandel(uint32_t iterations) {
    uint32_t total = 0;
    for (uint32_t it = 0; it < iterations; it++) {
        double x0 = -2.0 + (double)(it % 37) * 0.0625, y0 = -1.25 + (double)(it % 29) * 0.0625;
        for (int py = 0; py < MANDEL_SIDE; py++) {
            for (int px = 0; px < MANDEL_SIDE; px++) {
                double cx = x0 + px * 0.015625, cy = y0 + py * 0.015625;
                double x = 0.0, y = 0.0;
                int n = 0;
                while (n < MANDEL_ITER) {
                    double x2 = x * x, y2 = y * y;
                    if (x2 + y2 > 4.0) break;
                    y = 2.0 * x * y + cy;
                    x = x2 - y2 + cx;
                    n++;
                }
                total = total * 31u + (uint32_t)n;
            }
        }
    }
    return total;
}

/* --------------------------------------------------- parse: tokenise a JSON-like text, sum numbers, hash keys */
#define TEXT_CAP 8192
static char text[TEXT_CAP];
static uint32_t text_len;

static void emit(const char *s) {
    while (*s && text_len < TEXT_CAP - 1) text[text_len++] = *s++;
}

static void emit_uint(uint32_t v) {
    char digits[12];
    int n = 0;
    do digits[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 11);
    while (n && text_len < TEXT_CAP - 1) text[text_len++] = digits[--n];
}

static void make_text(void) {
    uint32_t s = 0xdecafbadu;
    emit("[");
    for (int rec = 0; text_len < TEXT_CAP - 200; rec++) {
        if (rec) emit(", ");
        emit("{\"id\": ");
        emit_uint((uint32_t)rec);
        emit(", \"name\": \"item");
        emit_uint(xorshift32(&s) % 100000u);
        emit("\", \"tags\": [\"a\\\"b\", \"edge\", \"wasm\"], \"price\": ");
        emit_uint(xorshift32(&s) % 10000u);
        emit(", \"qty\": -");
        emit_uint(xorshift32(&s) % 100u);
        emit(", \"ok\": true}");
    }
    emit("]");
    text[text_len] = 0;
}

/* one JSON-like pass: strings (with escapes) are hashed, integers summed, punctuation counted */
static uint32_t parse_text(uint32_t seed) {
    uint32_t h = 2166136261u ^ seed, numbers = 0, punct = 0;
    const char *p = text, *end = text + text_len;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) p++;
                h = (h ^ (uint8_t)*p) * 16777619u;
            }
            p++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int neg = c == '-';
            uint32_t v = 0;
            if (neg) p++;
            while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (uint32_t)(*p++ - '0');
            numbers += neg ? (uint32_t)0 - v : v;
        } else if (c == 't' || c == 'f' || c == 'n') {
            h = (h ^ (uint8_t)c) * 16777619u;
            while (p < end && *p >= 'a' && *p <= 'z') p++;
        } else {
            if (c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':') punct++;
            p++;
        }
    }
    return h ^ (numbers * 2654435761u) ^ punct;
}

uint32_t bench_text_bytes(void) {
    if (!text_len) make_text();
    return text_len;
}

/* one op = parse the ~8 KB text once */
uint32_t run_parse(uint32_t iterations) {
    if (!text_len) make_text();
    uint32_t acc = 0;
    for (uint32_t i = 0; i < iterations; i++) acc = acc * 33u + parse_text(i);
    return acc;
}

/* -------------------------------------------------------------------- sort: quicksort of 1024 integers */
#define SORT_N 1024
static uint32_t sort_buf[SORT_N];

static void insertion(uint32_t *a, int n) {
    for (int i = 1; i < n; i++) {
        uint32_t v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void quicksort(uint32_t *a, int n) {
    while (n > 16) {
        uint32_t x = a[0], y = a[n / 2], z = a[n - 1]; /* median of three */
        uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            uint32_t t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        /* recurse into the smaller side, loop on the larger: stack depth stays O(log n) */
        if (j + 1 < n - j - 1) {
            quicksort(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            quicksort(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    insertion(a, n);
}

/* one op = fill 1024 values from a PRNG seeded by the op index, sort them, fold a few into the checksum */
uint32_t run_sort(uint32_t iterations) {
    uint32_t acc = 0;
    for (uint32_t it = 0; it < iterations; it++) {
        uint32_t s = it * 2654435761u + 1u;
        for (int i = 0; i < SORT_N; i++) sort_buf[i] = xorshift32(&s) % 100000u;
        quicksort(sort_buf, SORT_N);
        acc = acc * 31u + sort_buf[it % SORT_N] + sort_buf[SORT_N / 2] * 7u + sort_buf[SORT_N - 1];
    }
    return acc;
}

/* ------------------------------------------------------------------------------ the program (native/WASI) */
#ifdef BENCH_MAIN
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint32_t (*kernel_fn)(uint32_t);

static const struct {
    const char *name;
    kernel_fn run;
} KERNELS[] = {
    {"fib", run_fib},       {"hash", run_hash},     {"memstream", run_memstream}, {"matmul", run_matmul},
    {"mandel", run_mandel}, {"parse", run_parse},   {"sort", run_sort},           {"nop", bench_nop},
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s KERNEL ITERATIONS [WARMUP [REPEATS]]\n", argv[0]);
        return 2;
    }
    kernel_fn run = 0;
    for (unsigned k = 0; k < sizeof KERNELS / sizeof KERNELS[0]; k++)
        if (strcmp(argv[1], KERNELS[k].name) == 0) run = KERNELS[k].run;
    if (!run) {
        fprintf(stderr, "unknown kernel %s\n", argv[1]);
        return 2;
    }
    uint32_t iterations = (uint32_t)strtoul(argv[2], 0, 10);
    uint32_t warmup = argc > 3 ? (uint32_t)strtoul(argv[3], 0, 10) : 0;
    int repeats = argc > 4 ? atoi(argv[4]) : 1;
    volatile uint32_t sink = run(warmup ? warmup : 1); /* first use initialises the kernel's buffers */
    (void)sink;
    for (int r = 0; r < repeats; r++) {
        int64_t t0 = now_ns();
        uint32_t checksum = run(iterations);
        int64_t t1 = now_ns();
        printf("%s %u %lld\n", argv[1], checksum, (long long)(t1 - t0));
    }
    return 0;
}
#endif
