"""Rule modules for the fleet, as C sources: two good versions and three hostile ones.

A rule module exports `decide(sensor: i32, value: f64) -> i32`: 0 means ok, anything else is an alarm code
(1 warn, 2 alarm here). Sensors are 0 temperature (°C), 1 vibration (mm/s, 0 while the machine is idle),
2 pressure (kPa). The hostile versions are what a fleet must survive: each passes the compiler and the
signature check, and only running it on real readings shows what it does.
"""

from __future__ import annotations

RULES_V1 = r"""
int decide(int sensor, double value) {
    switch (sensor) {
    case 0: return value > 80.0 ? 2 : value > 74.0 ? 1 : 0;     /* temperature */
    case 1: return value > 14.0 ? 2 : value > 11.0 ? 1 : 0;     /* vibration */
    case 2: return value < 95.0 || value > 105.0 ? 1 : 0;       /* pressure */
    }
    return 1;  /* a sensor these rules do not know */
}
"""

# v2: a tighter temperature band and a vibration alarm one step earlier; a few decisions change, most do not.
RULES_V2 = r"""
int decide(int sensor, double value) {
    switch (sensor) {
    case 0: return value > 78.0 ? 2 : value > 73.0 ? 1 : 0;
    case 1: return value > 13.0 ? 2 : value > 11.0 ? 1 : 0;
    case 2: return value < 95.0 || value > 105.0 ? 1 : 0;
    }
    return 1;
}
"""

# Traps on an idle machine: the vibration rule divides by the reading, and idle sensors read 0.
TRAPS = r"""
int decide(int sensor, double value) {
    switch (sensor) {
    case 0: return value > 78.0 ? 2 : value > 73.0 ? 1 : 0;
    case 1: return 1000 / (int)value < 80 ? 2 : 0;             /* integer divide by zero at value 0 */
    case 2: return value < 95.0 || value > 105.0 ? 1 : 0;
    }
    return 1;
}
"""

# Never returns for pressure readings: only the time limit stops it.
LOOPS = r"""
int decide(int sensor, double value) {
    volatile double v = value;
    if (sensor == 2) while (v > 0.0) v += 1.0;
    return sensor == 0 && v > 78.0 ? 2 : 0;
}
"""

# Grows its memory until the engine says no, then answers as if nothing happened.
MEMORY_BOMB = r"""
int decide(int sensor, double value) {
    while (__builtin_wasm_memory_grow(0, 16) != (unsigned long)-1) {}
    return sensor == 0 && value > 78.0 ? 2 : 0;
}
"""

# A small stack: rules need next to none, and the default 1 MiB makes every device 17 pages instead of 1.
FLAGS = ("-Wl,-z,stack-size=4096",)


def build(source: str, name: str = "rules"):
    """Compile one of these sources (or yours) the way the fleet's examples are built: C, -Oz, a small stack."""
    from ..build import compile

    return compile(source, "c", name=name, opt="Oz", flags=list(FLAGS))
