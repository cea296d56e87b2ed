#include <math.h>
#include <stdint.h>
#include <stdlib.h>

// The canonical ABI flattens a record into its fields: a point arrives as two doubles.
__attribute__((export_name("demo:geo/geo@0.1.0#distance")))
double distance(double ax, double ay, double bx, double by) {
    return hypot(bx - ax, by - ay);
}

// An enum is its case number: north 0, east 1, south 2, west 3.
__attribute__((export_name("demo:geo/geo@0.1.0#heading")))
int32_t heading(double ax, double ay, double bx, double by) {
    double dx = bx - ax, dy = by - ay;
    if (fabs(dy) >= fabs(dx)) return dy >= 0 ? 0 : 2;
    return dx >= 0 ? 1 : 3;
}

// A list arrives as (pointer, length) into our memory; the host put it there with cabi_realloc.
typedef struct { double x, y; } point;

__attribute__((export_name("demo:geo/geo@0.1.0#count-within")))
int32_t count_within(double cx, double cy, double radius, const point *places, int32_t n) {
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        if (hypot(places[i].x - cx, places[i].y - cy) <= radius) count++;
    free((void *)places);
    return count;
}

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    return realloc(old, new_size);
}
