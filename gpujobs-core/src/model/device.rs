//! Device classes, lanes and device preferences.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A class of device. Each class has its own lane in the queue, served by the workers
/// of that class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceClass {
    /// Host CPUs.
    Cpu,
    /// CUDA GPUs.
    Gpu,
}

impl DeviceClass {
    /// Every class, in lane order.
    pub const ALL: [DeviceClass; 2] = [DeviceClass::Cpu, DeviceClass::Gpu];

    /// The lowercase name used in keys and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Cpu => "cpu",
            DeviceClass::Gpu => "gpu",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceClass::Cpu),
            "gpu" | "cuda" => Ok(DeviceClass::Gpu),
            other => Err(format!(
                "unknown device class `{other}` (expected cpu or gpu)"
            )),
        }
    }
}

/// Where a job asks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DevicePref {
    /// Let the placement policy choose the device that finishes it first.
    #[default]
    Auto,
    /// Pinned to the CPU lane.
    Cpu,
    /// Pinned to the GPU lane.
    Gpu,
}

impl DevicePref {
    /// Lowercase name, as on the wire (`auto`, `cpu`, `gpu`).
    pub fn as_str(self) -> &'static str {
        match self {
            DevicePref::Auto => "auto",
            DevicePref::Cpu => "cpu",
            DevicePref::Gpu => "gpu",
        }
    }

    /// The pinned class, if any.
    pub fn pinned(self) -> Option<DeviceClass> {
        match self {
            DevicePref::Auto => None,
            DevicePref::Cpu => Some(DeviceClass::Cpu),
            DevicePref::Gpu => Some(DeviceClass::Gpu),
        }
    }
}

impl FromStr for DevicePref {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DevicePref::Auto),
            "cpu" => Ok(DevicePref::Cpu),
            "gpu" | "cuda" => Ok(DevicePref::Gpu),
            other => Err(format!(
                "unknown device `{other}` (expected auto, cpu or gpu)"
            )),
        }
    }
}

/// The concrete device that ran a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Its class.
    pub class: DeviceClass,
    /// A human-readable name: the CPU model and thread count, or the GPU's name.
    pub name: String,
    /// The device ordinal within its class on its machine (GPU index; 0 for the CPU).
    pub ordinal: u32,
}

impl DeviceInfo {
    /// Describes this machine's CPU: model name and number of threads.
    pub fn host_cpu() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let model = cpu_model_name().unwrap_or_else(|| std::env::consts::ARCH.to_string());
        DeviceInfo {
            class: DeviceClass::Cpu,
            name: format!("{model} ({threads} threads)"),
            ordinal: 0,
        }
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            DeviceClass::Cpu => write!(f, "cpu: {}", self.name),
            DeviceClass::Gpu => write!(f, "gpu{}: {}", self.ordinal, self.name),
        }
    }
}

/// The CPU model from `/proc/cpuinfo` (Linux); `None` elsewhere.
pub fn cpu_model_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}
