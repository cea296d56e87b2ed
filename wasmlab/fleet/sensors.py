"""Each device's sensor stream: readings as a pure function of (seed, device, index).

A device is recreated elsewhere (its worker died, a rollback) at the index it had reached, and an old and a new
rule version are compared on the very same readings, so a reading must never depend on what came before it.
A counter-based generator (splitmix64 of seed, device and index) gives that; a device's kind of sensor and its
operating point follow from its id.
"""

from __future__ import annotations

import math

TEMPERATURE, VIBRATION, PRESSURE = 0, 1, 2
SENSORS = {TEMPERATURE: "temperature", VIBRATION: "vibration", PRESSURE: "pressure"}
# (typical level, swing of the slow cycle, noise) per kind: °C, mm/s, kPa
PROFILE = {TEMPERATURE: (68.0, 9.0, 2.5), VIBRATION: (8.0, 3.5, 1.5), PRESSURE: (100.0, 4.0, 1.2)}
IDLE_SHARE = 0.05  # vibration sensors read exactly 0 this often (the machine is idle)
PERIOD = 200  # readings per slow cycle (a shift, a day)

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: 64 well-mixed bits from any integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def sensor_of(device: int) -> int:
    """The kind of sensor device `device` carries."""
    return device % 3


def reading(seed: int, device: int, index: int) -> tuple[int, float]:
    """Reading number `index` of `device`: (sensor kind, value), the same on every machine and every call."""
    kind = device % 3
    level, swing, noise = PROFILE[kind]
    bits = _mix(_mix(_mix(seed) ^ device) ^ index)
    uniform = (bits >> 11) / (1 << 53)  # [0, 1)
    if kind == VIBRATION and uniform < IDLE_SHARE:
        return kind, 0.0
    offset = (device * 0.618034) % 1.0  # each device at its own point of the cycle
    jitter = ((bits & 0xFFFF) / 0xFFFF - 0.5) * 2.0
    value = level + swing * math.sin(2 * math.pi * (index / PERIOD + offset)) + noise * jitter
    return kind, round(value, 2)
