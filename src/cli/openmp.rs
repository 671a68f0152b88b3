//! The OpenMP runtime's waiting for commands that train.
//!
//! After each parallel region libgomp (libtorch's OpenMP) keeps its worker threads
//! spinning for `GOMP_SPINCOUNT` rounds, 300,000 by default, a few milliseconds. The
//! hand-written training passes run on rayon's threads right after libtorch's products,
//! and a spinning OpenMP thread holds one of the cores they need. libgomp reads the
//! variable once, as it loads, before `main`; so a command that trains starts itself
//! again with `GOMP_SPINCOUNT=1000` when the variable is not set (a value the user set is
//! kept). Measured on 2 cores, 2026-12-04: Conv-4 `xza` steps 2 % faster at 64 x 32 views
//! (faster in 5 of 6 pairs) and 4 % at 64 x 8 (3 of 3).

/// Spin rounds of an idle OpenMP thread.
const SPIN_COUNT: &str = "1000";

/// Replaces this process with the same command under `GOMP_SPINCOUNT=1000`, unless the
/// variable is set already; returns (and the command runs here) when that is not possible.
pub fn respawn_with_short_spin() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GOMP_SPINCOUNT").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        let error = std::process::Command::new(&exe)
            .arg0(arg0)
            .args(args)
            .env("GOMP_SPINCOUNT", SPIN_COUNT)
            .exec();
        // `exec` returns only when it failed: the command runs in this process.
        tracing::debug!("could not restart with GOMP_SPINCOUNT={SPIN_COUNT}: {error}");
    }
}
