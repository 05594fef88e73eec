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
/// `--adapter` (set once at startup, before the wgpu device is opened).
static ADAPTER: OnceLock<Option<String>> = OnceLock::new();

/// Choose the wgpu adapter `--device wgpu` opens: an index of [`adapters`] (`darts-pt devices`)
/// or a case-insensitive part of its name. Call it once at startup, before the first wgpu
/// device; without it [`open`] prefers a discrete GPU over an integrated one over a CPU
/// rasteriser (lavapipe).
pub fn set_adapter(choice: Option<String>) {
    let _ = ADAPTER.set(choice);
}

/// One adapter wgpu offers on this machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AdapterInfo {
    /// Position in [`adapters`]' list (what `--adapter N` takes).
    pub index: usize,
    /// Adapter name, e.g. `NVIDIA H200` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Graphics API: `Vulkan`, `Metal`, `Dx12` or `Gl`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver and its version, as the driver reports them.
    pub driver: String,
    /// Position among the adapters of the same API and type (how Burn addresses it).
    pub type_index: usize,
}

impl AdapterInfo {
    /// Preference of `--device wgpu` without `--adapter` (lower first): discrete GPUs, then
    /// integrated, virtual, other, and CPU rasterisers last; Vulkan before Metal, DX12 and GL.
    fn rank(&self) -> (usize, usize) {
        let t = ["DiscreteGpu", "IntegratedGpu", "VirtualGpu", "Other", "Cpu"]
            .iter()
            .position(|&t| t == self.device_type)
            .unwrap_or(5);
        let b = ["Vulkan", "Metal", "Dx12", "Gl"]
            .iter()
            .position(|&b| b == self.backend)
            .unwrap_or(4);
        (t, b)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn selector(&self) -> (burn::tensor::DeviceKind, burn::tensor::wgpu::WgpuBackend) {
        use burn::tensor::DeviceKind;
        use burn::tensor::wgpu::WgpuBackend;
        let kind = match self.device_type.as_str() {
            "DiscreteGpu" => DeviceKind::DiscreteGpu(self.type_index),
            "IntegratedGpu" => DeviceKind::IntegratedGpu(self.type_index),
            "VirtualGpu" => DeviceKind::VirtualGpu(self.type_index),
            "Cpu" => DeviceKind::Cpu,
            _ => DeviceKind::DefaultDevice,
        };
        let api = match self.backend.as_str() {
            "Vulkan" => WgpuBackend::Vulkan,
            "Metal" => WgpuBackend::Metal,
            "Dx12" => WgpuBackend::Dx12,
            "Gl" => WgpuBackend::Gl,
            _ => WgpuBackend::Auto,
        };
        (kind, api)
    }
}

/// Every adapter wgpu finds, API by API (Vulkan, Metal, DX12, GL), in each API's order. Empty
/// when there is none (no driver) or in the browser (which offers one, unnamed).
pub fn adapters() -> Vec<AdapterInfo> {
    list_adapters(true)
}

/// [`adapters`]; without `gl`, the GL adapters are left out (probing GL opens EGL, which is slow
/// and talks to the display server: `--device wgpu` asks GL only when no other API has one).
fn list_adapters(gl: bool) -> Vec<AdapterInfo> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = gl;
        Vec::new()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use burn::tensor::wgpu::wgpu;
        let mut out = Vec::new();
        for backend in [
            wgpu::Backend::Vulkan,
            wgpu::Backend::Metal,
            wgpu::Backend::Dx12,
            wgpu::Backend::Gl,
        ] {
            if backend == wgpu::Backend::Gl && !gl {
                continue;
            }
            let listed = std::panic::catch_unwind(|| {
                let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                    backends: backend.into(),
                    ..wgpu::InstanceDescriptor::new_without_display_handle()
                });
                pollster::block_on(instance.enumerate_adapters(backend.into()))
                    .iter()
                    .map(wgpu::Adapter::get_info)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
            let mut per_type: Vec<(String, usize)> = Vec::new();
            for info in listed {
                let device_type = format!("{:?}", info.device_type);
                let type_index = match per_type.iter_mut().find(|(t, _)| *t == device_type) {
                    Some((_, n)) => {
                        *n += 1;
                        *n - 1
                    }
                    None => {
                        per_type.push((device_type.clone(), 1));
                        0
                    }
                };
                out.push(AdapterInfo {
                    index: out.len(),
                    name: info.name.clone(),
                    backend: format!("{:?}", info.backend),
                    device_type,
                    driver: format!("{} {}", info.driver, info.driver_info)
                        .trim()
                        .to_string(),
                    type_index,
                });
            }
        }
        out
    }
}

/// The adapter `--device wgpu` opens among `list`: `choice` (an index or part of a name), else
/// the most preferred ([`AdapterInfo`]'s order). `None` when `list` is empty and nothing was
/// asked for (Burn's own default then tries, and its error is reported).
///
/// # Errors
/// [`Error::Device`] naming what was asked and what exists.
pub fn choose_adapter(list: &[AdapterInfo], choice: Option<&str>) -> Result<Option<AdapterInfo>> {
    let best = |it: Vec<&AdapterInfo>| it.into_iter().min_by_key(|a| a.rank()).cloned();
    let Some(choice) = choice.map(str::trim) else {
        return Ok(best(list.iter().collect()));
    };
    let names = || {
        if list.is_empty() {
            "none is available (no Vulkan, Metal, DX12 or GL driver)".to_string()
        } else {
            list.iter()
                .map(|a| format!("{}: {} ({}, {})", a.index, a.name, a.backend, a.device_type))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let found = match choice.parse::<usize>() {
        Ok(i) => list.get(i).cloned(),
        Err(_) => {
            let want = choice.to_lowercase();
            best(
                list.iter()
                    .filter(|a| a.name.to_lowercase().contains(&want))
                    .collect(),
            )
        }
    };
    match found {
        Some(a) => Ok(Some(a)),
        None => Err(Error::Device {
            device: format!("wgpu --adapter {choice}"),
            message: format!(
                "no adapter has that number or name; `darts-pt devices` lists them: {}",
                names()
            ),
        }),
    }
}
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

/// The process's wgpu device (native): opened once, on the adapter [`set_adapter`] chose or the
/// preferred one ([`choose_adapter`]).
#[cfg(not(target_arch = "wasm32"))]
fn native_wgpu() -> Result<&'static Opened> {
    let choice = ADAPTER.get().cloned().flatten();
    let listed = |choice: &Option<String>| {
        // `--adapter N` counts in the whole list `darts-pt devices` shows; the default
        // asks GL only when no other API offers an adapter.
        let list = list_adapters(choice.is_some());
        if list.is_empty() && choice.is_none() {
            list_adapters(true)
        } else {
            list
        }
    };
    if WGPU.get().is_none()
        && let Some(c) = &choice
    {
        // A choice that names no adapter is the user's error, not a missing driver.
        choose_adapter(&listed(&choice), Some(c))?;
    }
    Ok(WGPU.get_or_init(|| {
        let chosen = match choose_adapter(&listed(&choice), choice.as_deref()) {
            Ok(a) => a,
            Err(e) => return Err(e.to_string()),
        };
        let init = move || match &chosen {
            Some(a) => {
                let (kind, api) = a.selector();
                Device::wgpu_options()
                    .device_kind(kind)
                    .graphics_api(api)
                    .init_with_setup()
            }
            None => Device::wgpu_options().init_with_setup(),
        };
        match std::panic::catch_unwind(init) {
            Ok(result) => describe(result),
            Err(_) => Err("the wgpu runtime panicked while looking for an adapter".into()),
        }
    }))
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
            let opened = native_wgpu()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn a(
        index: usize,
        name: &str,
        backend: &str,
        device_type: &str,
        type_index: usize,
    ) -> AdapterInfo {
        AdapterInfo {
            index,
            name: name.into(),
            backend: backend.into(),
            device_type: device_type.into(),
            driver: String::new(),
            type_index,
        }
    }

    #[test]
    fn discrete_before_integrated_before_a_cpu_rasteriser() {
        let list = vec![
            a(0, "llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "Cpu", 0),
            a(1, "Intel(R) UHD Graphics 630", "Vulkan", "IntegratedGpu", 0),
            a(2, "NVIDIA H200", "Vulkan", "DiscreteGpu", 0),
            a(3, "NVIDIA H200", "Gl", "DiscreteGpu", 0),
        ];
        assert_eq!(choose_adapter(&list, None).unwrap().unwrap().index, 2);
        assert_eq!(choose_adapter(&list[..2], None).unwrap().unwrap().index, 1);
        assert_eq!(choose_adapter(&list[..1], None).unwrap().unwrap().index, 0);
        assert_eq!(choose_adapter(&[], None).unwrap(), None);
        // By number, or by part of the name (the preferred of several matches).
        assert_eq!(
            choose_adapter(&list, Some("3")).unwrap().unwrap().backend,
            "Gl"
        );
        assert_eq!(
            choose_adapter(&list, Some("llvmpipe"))
                .unwrap()
                .unwrap()
                .index,
            0
        );
        assert_eq!(
            choose_adapter(&list, Some("nvidia"))
                .unwrap()
                .unwrap()
                .index,
            2
        );
        let e = choose_adapter(&list, Some("7")).unwrap_err().to_string();
        assert!(
            e.contains("no adapter has that number or name")
                && e.contains("2: NVIDIA H200 (Vulkan, DiscreteGpu)"),
            "{e}"
        );
        let e = choose_adapter(&[], Some("radeon")).unwrap_err().to_string();
        assert!(e.contains("none is available"), "{e}");
    }

    #[test]
    fn adapters_are_numbered_within_their_api_and_type() {
        let list = adapters();
        for (i, x) in list.iter().enumerate() {
            assert_eq!(x.index, i);
            let before = list[..i]
                .iter()
                .filter(|y| y.backend == x.backend && y.device_type == x.device_type)
                .count();
            assert_eq!(x.type_index, before, "{x:?}");
        }
    }
}
