/* Edge stream aggregation: raw sensor readings in, one summary line per (minute, sensor) out.
 *
 * stdin:  one reading per line, "timestamp_ms,sensor,value" (value an integer, e.g. centi-degrees), in time order
 * stdout: "minute_start_ms,sensor,count,min,max,mean" for each sensor, each time a minute closes (and at the end)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SENSORS 256
#define WINDOW_MS 60000LL

struct acc {
    char name[32];
    long long count, sum, min, max;
};

static struct acc sensors[MAX_SENSORS];
static int used = 0;

static struct acc *lookup(const char *name) {
    for (int i = 0; i < used; i++)
        if (strcmp(sensors[i].name, name) == 0) return &sensors[i];
    if (used == MAX_SENSORS) return NULL;
    struct acc *a = &sensors[used++];
    strncpy(a->name, name, sizeof a->name - 1);
    return a;
}

static void flush(long long window) {
    for (int i = 0; i < used; i++) {
        struct acc *a = &sensors[i];
        if (a->count == 0) continue;
        printf("%lld,%s,%lld,%lld,%lld,%lld\n", window, a->name, a->count, a->min, a->max, a->sum / a->count);
        a->count = a->sum = 0;
    }
}

int main(void) {
    char line[256], name[32];
    long long ts, value, window = -1, lines = 0, bad = 0;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%lld,%31[^,],%lld", &ts, name, &value) != 3) { bad++; continue; }
        long long w = ts - ts % WINDOW_MS;
        if (window >= 0 && w != window) flush(window);
        window = w;
        struct acc *a = lookup(name);
        if (!a) { bad++; continue; }
        if (a->count == 0 || value < a->min) a->min = value;
        if (a->count == 0 || value > a->max) a->max = value;
        a->count++;
        a->sum += value;
        lines++;
    }
    if (window >= 0) flush(window);
    fprintf(stderr, "%lld readings, %lld rejected\n", lines, bad);
    return 0;
}
