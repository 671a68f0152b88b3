//! Test support: tch's default generator is one per process, shared by every test thread,
//! so a test that seeds it and then draws can see another test's draws in between.
//! [`seeded`] holds a lock for the whole seed-and-draw, which makes such a setup repeat
//! exactly.

use std::sync::Mutex;

static GENERATOR: Mutex<()> = Mutex::new(());

/// Runs `draw` with tch's generator seeded with `seed` and no other [`seeded`] call in
/// between.
pub(crate) fn seeded<T>(seed: i64, draw: impl FnOnce() -> T) -> T {
    let _guard = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed);
    draw()
}
