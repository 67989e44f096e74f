//! Helpers shared by the test binaries of `ev-loop`.
//!
//! Tests decide from events, not from sleeps assumed long enough. Where a time bound is the
//! point, the lower bound is exact and the upper bound is generous and stretched by one factor,
//! [`time_scale`], which `scripts/memcheck.sh` raises for valgrind.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;
use std::time::Duration;

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How much slower than a plain run a test may be: `GEVENT_TEST_TIME_SCALE` (a whole number,
/// at least 1; `scripts/memcheck.sh` sets it for valgrind), 1 when unset.
pub(crate) fn time_scale() -> u32 {
    static SCALE: OnceLock<u32> = OnceLock::new();
    *SCALE.get_or_init(|| {
        std::env::var("GEVENT_TEST_TIME_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1)
    })
}

/// An upper time bound: `d` stretched by [`time_scale`]. Pass a bound that is already generous
/// on a loaded machine; the scale only adds valgrind's slowdown.
pub(crate) fn generous(d: Duration) -> Duration {
    d * time_scale()
}
