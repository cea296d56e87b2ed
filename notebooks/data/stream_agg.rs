//! stream_agg.rs: tumbling-window aggregation at the collection point, compiled to a Wasm library (notebook 9).
//!
//! Input: packed events of 12 bytes, little-endian, in timestamp order:
//!     u32 timestamp_ms | u16 sensor | u16 flags | i32 value (fixed point: hundredths of a unit)
//! The host copies up to `input_capacity()` events to `input_ptr()` and calls `push(n)`.
//!
//! Output, rebuilt by every `push` and `flush` call, read by the host before its next call:
//!  * one summary per (window, sensor) with events, each window's summaries in sensor order, 20 bytes each:
//!        u32 window_start_ms | u16 sensor | u16 count | i32 min | i32 max | f32 mean
//!    at `summary_ptr()`; `push` and `flush` return how many are ready.
//!  * every event whose value is above the alert threshold, forwarded as is (12 bytes): `alert_count()` of
//!    them at `alert_ptr()`. Anomalies must not hide inside a mean.
//! A window is emitted when the first event of a later window arrives; `flush()` emits the last one.
//! Sums are exact (i64), so the mean is one correctly rounded division: any engine, and pandas, agree bit
//! for bit.

const EVENT_BYTES: usize = 12;
const SUMMARY_BYTES: usize = 20;
const CHUNK_EVENTS: usize = 8192;
const MAX_SENSORS: usize = 1024;
// Worst case per chunk: every event closes a window holding one sensor, and every event is an alert.
const MAX_SUMMARIES: usize = CHUNK_EVENTS + MAX_SENSORS;

#[derive(Clone, Copy)]
struct Acc {
    count: u32,
    min: i32,
    max: i32,
    sum: i64,
}

const EMPTY: Acc = Acc { count: 0, min: i32::MAX, max: i32::MIN, sum: 0 };

struct State {
    window_ms: u32,
    alert_above: i32,
    current: u32, // index of the open window
    open: bool,
    acc: [Acc; MAX_SENSORS],
    touched: [bool; MAX_SENSORS],
    summaries: usize,
    alerts: usize,
    events_in: u64,
    rejected: u64,
    summaries_out: u64,
    alerts_out: u64,
}

static mut INPUT: [u8; CHUNK_EVENTS * EVENT_BYTES] = [0; CHUNK_EVENTS * EVENT_BYTES];
static mut SUMMARIES: [u8; MAX_SUMMARIES * SUMMARY_BYTES] = [0; MAX_SUMMARIES * SUMMARY_BYTES];
static mut ALERTS: [u8; CHUNK_EVENTS * EVENT_BYTES] = [0; CHUNK_EVENTS * EVENT_BYTES];
static mut STATE: State = State {
    window_ms: 10_000,
    alert_above: i32::MAX,
    current: 0,
    open: false,
    acc: [EMPTY; MAX_SENSORS],
    touched: [false; MAX_SENSORS],
    summaries: 0,
    alerts: 0,
    events_in: 0,
    rejected: 0,
    summaries_out: 0,
    alerts_out: 0,
};

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

unsafe fn emit_window(s: &mut State) {
    if !s.open {
        return;
    }
    let start = s.current.wrapping_mul(s.window_ms);
    for sensor in 0..MAX_SENSORS {
        if !s.touched[sensor] {
            continue;
        }
        let a = s.acc[sensor];
        let mean = (a.sum as f64 / a.count as f64) as f32;
        let at = s.summaries * SUMMARY_BYTES;
        let out = &mut SUMMARIES[at..at + SUMMARY_BYTES];
        out[0..4].copy_from_slice(&start.to_le_bytes());
        out[4..6].copy_from_slice(&(sensor as u16).to_le_bytes());
        out[6..8].copy_from_slice(&(a.count.min(u16::MAX as u32) as u16).to_le_bytes());
        out[8..12].copy_from_slice(&a.min.to_le_bytes());
        out[12..16].copy_from_slice(&a.max.to_le_bytes());
        out[16..20].copy_from_slice(&mean.to_le_bytes());
        s.summaries += 1;
        s.summaries_out += 1;
        s.acc[sensor] = EMPTY;
        s.touched[sensor] = false;
    }
    s.open = false;
}

#[no_mangle]
pub extern "C" fn input_ptr() -> *mut u8 {
    unsafe { INPUT.as_mut_ptr() }
}
#[no_mangle]
pub extern "C" fn input_capacity() -> u32 {
    CHUNK_EVENTS as u32
}
#[no_mangle]
pub extern "C" fn summary_ptr() -> *const u8 {
    unsafe { SUMMARIES.as_ptr() }
}
#[no_mangle]
pub extern "C" fn alert_ptr() -> *const u8 {
    unsafe { ALERTS.as_ptr() }
}
#[no_mangle]
pub extern "C" fn alert_count() -> u32 {
    unsafe { STATE.alerts as u32 }
}

/// Start a new stream: window length in ms, and the value above which an event is forwarded as an alert.
#[no_mangle]
pub extern "C" fn configure(window_ms: u32, alert_above: i32) {
    unsafe {
        let s = &mut STATE;
        s.window_ms = window_ms.max(1);
        s.alert_above = alert_above;
        s.open = false;
        s.acc = [EMPTY; MAX_SENSORS];
        s.touched = [false; MAX_SENSORS];
        s.summaries = 0;
        s.alerts = 0;
        s.events_in = 0;
        s.rejected = 0;
        s.summaries_out = 0;
        s.alerts_out = 0;
    }
}

/// Aggregate `n` events from the input buffer; returns the number of summaries ready.
#[no_mangle]
pub extern "C" fn push(n: u32) -> u32 {
    unsafe {
        let s = &mut STATE;
        s.summaries = 0;
        s.alerts = 0;
        let n = (n as usize).min(CHUNK_EVENTS);
        for e in 0..n {
            let at = e * EVENT_BYTES;
            let ev = &INPUT[at..at + EVENT_BYTES];
            let ts = u32_at(ev, 0);
            let sensor = u16_at(ev, 4) as usize;
            let value = u32_at(ev, 8) as i32;
            s.events_in += 1;
            if sensor >= MAX_SENSORS {
                s.rejected += 1;
                continue;
            }
            let window = ts / s.window_ms;
            if !s.open || window != s.current {
                emit_window(s);
                s.current = window;
                s.open = true;
            }
            let a = &mut s.acc[sensor];
            a.count += 1;
            a.sum += value as i64;
            if value < a.min {
                a.min = value;
            }
            if value > a.max {
                a.max = value;
            }
            s.touched[sensor] = true;
            if value > s.alert_above {
                let out = s.alerts * EVENT_BYTES;
                ALERTS[out..out + EVENT_BYTES].copy_from_slice(ev);
                s.alerts += 1;
                s.alerts_out += 1;
            }
        }
        s.summaries as u32
    }
}

/// End of stream: emit the open window; returns the number of summaries ready.
#[no_mangle]
pub extern "C" fn flush() -> u32 {
    unsafe {
        let s = &mut STATE;
        s.summaries = 0;
        s.alerts = 0;
        emit_window(s);
        s.summaries as u32
    }
}

/// Totals since `configure`: events in, events rejected (unknown sensor), summaries out, alerts out.
#[no_mangle]
pub extern "C" fn events_in() -> u64 {
    unsafe { STATE.events_in }
}
#[no_mangle]
pub extern "C" fn rejected() -> u64 {
    unsafe { STATE.rejected }
}
#[no_mangle]
pub extern "C" fn summaries_out() -> u64 {
    unsafe { STATE.summaries_out }
}
#[no_mangle]
pub extern "C" fn alerts_out() -> u64 {
    unsafe { STATE.alerts_out }
}
