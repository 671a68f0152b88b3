//! The `hssl` command line: parses arguments and calls the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc serves every allocation of the process, libtorch's tensors included (its
/// `malloc` and `free` replace the C library's). A training step frees and allocates tensors
/// of a hundred megabytes or more, the same ones every step; glibc's allocator either maps
/// each afresh (page faults on all of them every step) or, told to keep them, fragments
/// its heap to about twice the memory in use. jemalloc, built never to return freed pages
/// (`.cargo/config.toml`), reuses them: measured on Conv-4 `xza` at the paper's batch, a
/// step 14% faster and peak memory 38% lower than glibc kept from returning memory.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    if args.trains() {
        cli::openmp::respawn_with_short_spin();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
