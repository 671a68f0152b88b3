//! Choosing where tensors live: CPU, CUDA, or whichever is available.
//!
//! The PyTorch wheel ships CUDA support in `libtorch_cuda.so`, which the linker drops
//! because nothing references it directly. Loading it at run time registers the CUDA
//! backend, so one binary serves CPU-only machines (where the library or its CUDA
//! dependencies are missing) and GPU machines alike.

use std::ffi::CString;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a run asks its tensors to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// The first CUDA GPU; an error when none is available.
    Cuda,
    /// The first CUDA GPU when one is available, else the CPU (the default).
    #[default]
    Auto,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown device `{other}`: expected cpu, cuda or auto"
            )),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Auto => "auto",
        };
        f.write_str(name)
    }
}

/// Tries to load libtorch's CUDA backend; returns whether CUDA is then usable.
pub fn load_cuda_backend() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        for name in ["libtorch_cuda.so"] {
            let Ok(c_name) = CString::new(name) else {
                continue;
            };
            // SAFETY: dlopen with a valid C string; the handle is kept for the process.
            let handle =
                unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !handle.is_null() {
                return tch::Cuda::is_available();
            }
        }
        false
    })
}

/// Resolves a choice to a device.
///
/// Returns an error message when CUDA is asked for and cannot be used.
pub fn resolve(choice: DeviceChoice) -> Result<tch::Device, String> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Cuda => {
            if load_cuda_backend() {
                Ok(tch::Device::Cuda(0))
            } else {
                Err(
                    "device `cuda` was asked for but no usable CUDA GPU was found \
                     (libtorch_cuda.so or its CUDA libraries could not be loaded)"
                        .to_string(),
                )
            }
        }
        DeviceChoice::Auto => {
            if load_cuda_backend() {
                Ok(tch::Device::Cuda(0))
            } else {
                Ok(tch::Device::Cpu)
            }
        }
    }
}
