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

/// What loading libtorch's CUDA backend found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaStatus {
    /// The backend loaded and sees at least one GPU.
    Available,
    /// The backend loaded, but no GPU is visible (no NVIDIA driver, or no device).
    NoDevice,
    /// `libtorch_cuda.so` or one of its CUDA libraries could not be loaded; the loader's
    /// message.
    NotLoaded(String),
}

impl CudaStatus {
    /// Whether CUDA tensors can be made.
    pub fn is_available(&self) -> bool {
        *self == Self::Available
    }
}

/// Tries (once per process) to load libtorch's CUDA backend and says what it found.
pub fn cuda_status() -> &'static CudaStatus {
    static STATUS: std::sync::OnceLock<CudaStatus> = std::sync::OnceLock::new();
    STATUS.get_or_init(|| {
        let name = CString::new("libtorch_cuda.so").expect("no NUL in a literal");
        // SAFETY: dlopen with a valid C string; the handle is kept for the process.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns null or a C string valid until the next dl* call.
            let message = unsafe { libc::dlerror() };
            let message = if message.is_null() {
                "unknown loader error".to_string()
            } else {
                // SAFETY: non-null, NUL-terminated, read before any other dl* call.
                unsafe { std::ffi::CStr::from_ptr(message) }
                    .to_string_lossy()
                    .into_owned()
            };
            CudaStatus::NotLoaded(message)
        } else if tch::Cuda::is_available() {
            CudaStatus::Available
        } else {
            CudaStatus::NoDevice
        }
    })
}

/// Resolves a choice to a device.
///
/// Returns an error message when CUDA is asked for and cannot be used, saying why.
pub fn resolve(choice: DeviceChoice) -> Result<tch::Device, String> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Cuda => cuda_or_why(cuda_status()),
        DeviceChoice::Auto => Ok(cuda_or_why(cuda_status()).unwrap_or(tch::Device::Cpu)),
    }
}

/// The first GPU when `status` is available, else why not.
fn cuda_or_why(status: &CudaStatus) -> Result<tch::Device, String> {
    match status {
        CudaStatus::Available => Ok(tch::Device::Cuda(0)),
        CudaStatus::NoDevice => Err(
            "device `cuda` was asked for, but libtorch's CUDA backend sees no GPU \
             (is the NVIDIA driver installed and a GPU visible? `nvidia-smi` should list one)"
                .to_string(),
        ),
        CudaStatus::NotLoaded(why) => Err(format!(
            "device `cuda` was asked for, but libtorch's CUDA backend could not be loaded: \
             {why} (on a GPU machine `make build` installs the CUDA libraries; \
             `HSSL_CUDA=1 make build` forces it)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print_back() {
        for name in ["cpu", "cuda", "auto"] {
            assert_eq!(name.parse::<DeviceChoice>().unwrap().to_string(), name);
        }
        let err = "gpu".parse::<DeviceChoice>().unwrap_err();
        assert!(
            err.contains("`gpu`") && err.contains("cpu, cuda or auto"),
            "{err}"
        );
    }

    #[test]
    fn the_cpu_is_always_there() {
        assert_eq!(resolve(DeviceChoice::Cpu).unwrap(), tch::Device::Cpu);
    }

    #[test]
    fn a_missing_gpu_says_why() {
        assert_eq!(
            cuda_or_why(&CudaStatus::Available).unwrap(),
            tch::Device::Cuda(0)
        );
        let no_device = cuda_or_why(&CudaStatus::NoDevice).unwrap_err();
        assert!(no_device.contains("sees no GPU") && no_device.contains("nvidia-smi"));
        let missing = "libcusparse.so.12: cannot open shared object file".to_string();
        let not_loaded = cuda_or_why(&CudaStatus::NotLoaded(missing)).unwrap_err();
        assert!(not_loaded.contains("libcusparse.so.12"), "{not_loaded}");
        assert!(
            not_loaded.contains("HSSL_CUDA=1 make build"),
            "{not_loaded}"
        );
    }

    #[test]
    fn auto_falls_back_to_the_cpu_exactly_when_cuda_is_unusable() {
        let auto = resolve(DeviceChoice::Auto).unwrap();
        let cuda = resolve(DeviceChoice::Cuda);
        match cuda {
            Ok(device) => assert_eq!(auto, device),
            Err(_) => assert_eq!(auto, tch::Device::Cpu),
        }
        assert_eq!(cuda_status().is_available(), auto.is_cuda());
    }
}
