//! Compute devices: Burn's `flex` CPU backend and its wgpu backend (Vulkan, Metal, DX12, WebGPU).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which backend to compute on (`--device cpu|wgpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust `flex` CPU backend.
    Cpu,
    /// Burn's wgpu backend on the best adapter wgpu finds.
    Wgpu,
}

impl Backend {
    /// CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" | "flex" => Ok(Backend::Cpu),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            _ => Err(Error::Config {
                field: "device".into(),
                message: format!("unknown device `{s}`; expected `cpu` or `wgpu`"),
            }),
        }
    }
}

/// An opened compute device and a human-readable description of it (adapter name and API).
#[derive(Clone, Debug)]
pub struct ComputeDevice {
    /// The backend.
    pub backend: Backend,
    /// Burn device (plain, without autodiff; call `.autodiff()` for training).
    pub device: Device,
    /// E.g. `flex (CPU)` or `llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan, Cpu]`.
    pub description: String,
}

type Opened = std::result::Result<(Device, String), String>;

static WGPU: OnceLock<Opened> = OnceLock::new();
static WGPU_SETUP: OnceLock<burn::tensor::wgpu::WgpuSetup> = OnceLock::new();

/// The wgpu instance, adapter, device and queue Burn computes on, once the wgpu device is open:
/// for sharing the device with another wgpu user (the browser page's UI renderer).
pub fn wgpu_setup() -> Option<burn::tensor::wgpu::WgpuSetup> {
    WGPU_SETUP.get().cloned()
}

fn describe(
    result: std::result::Result<(Device, burn::tensor::wgpu::WgpuSetup), impl fmt::Display>,
) -> Opened {
    match result {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            // Kept for the life of the process: the browser page hands the same instance,
            // adapter, device and queue to its UI renderer (one WebGPU device for both).
            let _ = WGPU_SETUP.set(setup);
            Ok((
                device,
                format!(
                    "{} [{:?}, {:?}]",
                    // Browsers do not name their adapter.
                    if info.name.is_empty() {
                        "WebGPU adapter"
                    } else {
                        &info.name
                    },
                    info.backend,
                    info.device_type
                ),
            ))
        }
        Err(e) => Err(format!("{e}")),
    }
}

/// Initialise Burn's wgpu runtime without blocking: the only way in a browser, where the adapter
/// and device requests are promises. Call it (and await it) before the first tensor; later
/// [`open`]`(Backend::Wgpu)` calls return the same device. Natively [`open`] initialises on its own.
/// Errors: [`Error::Device`] when the browser (or system) offers no WebGPU-capable adapter.
pub async fn init_wgpu_async() -> Result<ComputeDevice> {
    if WGPU.get().is_none() {
        let result = describe(Device::wgpu_options().init_with_setup_async().await);
        let _ = WGPU.set(result);
    }
    open(Backend::Wgpu)
}

/// Open `backend`. The wgpu runtime is initialised once per process; when no adapter exists the
/// error says so and suggests `--device cpu`. In the browser build, [`init_wgpu_async`] must have
/// run first.
pub fn open(backend: Backend) -> Result<ComputeDevice> {
    match backend {
        Backend::Cpu => Ok(ComputeDevice {
            backend,
            device: Device::flex(),
            description: "flex (CPU)".into(),
        }),
        Backend::Wgpu => {
            #[cfg(not(target_arch = "wasm32"))]
            let opened = WGPU.get_or_init(|| {
                match std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup()) {
                    Ok(result) => describe(result),
                    Err(_) => Err("the wgpu runtime panicked while looking for an adapter".into()),
                }
            });
            #[cfg(target_arch = "wasm32")]
            let opened = WGPU.get().ok_or_else(|| Error::Device {
                device: "wgpu".into(),
                message: "the browser's WebGPU device is not initialised yet".into(),
            })?;
            match opened {
                Ok((device, description)) => Ok(ComputeDevice {
                    backend,
                    device: device.clone(),
                    description: description.clone(),
                }),
                Err(message) => Err(Error::Device {
                    device: "wgpu".into(),
                    message: format!(
                        "{message}. No usable GPU adapter was found (on Linux install a Vulkan driver, e.g. Mesa's \
                         `mesa-vulkan-drivers`; in a browser, one with WebGPU enabled), or run with `--device cpu`"
                    ),
                }),
            }
        }
    }
}
