//! The Jetson boards jetrt knows: one table, the source of docs/BOARDS.md
//! (`JETRT_BLESS=1 cargo test -p jetrt-boards` rewrites it; the test fails
//! when it is stale).
//!
//! Figures are NVIDIA's published module specifications. A module is told
//! apart by its device-tree `compatible` part number (`nvidia,p3767-0003`),
//! which L4T writes for every carrier board.

/// One board (module) profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Stable name: what `jetrt update --board` and `jetc publish --boards` use.
    pub name: &'static str,
    /// As NVIDIA names it.
    pub title: &'static str,
    pub soc: &'static str,
    pub gpu_arch: &'static str,
    /// CUDA compute capability (major, minor); `sm_MAJORMINOR`.
    pub compute_capability: (u32, u32),
    pub cuda_cores: u32,
    pub tensor_cores: u32,
    /// Deep-learning accelerators (NVDLA engines).
    pub dla: u32,
    pub dram_bytes: u64,
    pub cpu: &'static str,
    pub cpu_cores: u32,
    /// CPU SIMD features jetrt's kernels use (Linux `hwcap` names).
    pub simd: &'static [&'static str],
    /// JetPack releases that support it, with their L4T and CUDA versions.
    pub jetpack: &'static [JetPack],
    /// nvpmodel power modes, by name.
    pub power_modes: &'static [&'static str],
    /// Device-tree `compatible` entries that identify the module.
    pub compatible: &'static [&'static str],
}

/// A JetPack release line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JetPack {
    pub jetpack: &'static str,
    /// L4T major release (`R36`).
    pub l4t: &'static str,
    pub cuda: &'static str,
}

const GIB: u64 = 1 << 30;

const JP4: JetPack = JetPack { jetpack: "4.6", l4t: "R32", cuda: "10.2" };
const JP5: JetPack = JetPack { jetpack: "5.1", l4t: "R35", cuda: "11.4" };
const JP6: JetPack = JetPack { jetpack: "6.2", l4t: "R36", cuda: "12.6" };
const JP7: JetPack = JetPack { jetpack: "7.0", l4t: "R38", cuda: "13.0" };

const A57: &[&str] = &["asimd"];
const CARMEL: &[&str] = &["asimd", "fphp", "asimdhp", "asimddp"];
const A78AE: &[&str] = &["asimd", "fphp", "asimdhp", "asimddp"];
const V3AE: &[&str] = &["asimd", "fphp", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2"];

/// Every board jetrt knows, smallest first.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "jetson-nano",
        title: "Jetson Nano (4 GB)",
        soc: "Tegra X1 (T210)",
        gpu_arch: "Maxwell",
        compute_capability: (5, 3),
        cuda_cores: 128,
        tensor_cores: 0,
        dla: 0,
        dram_bytes: 4 * GIB,
        cpu: "4x Cortex-A57",
        cpu_cores: 4,
        simd: A57,
        jetpack: &[JP4],
        power_modes: &["MAXN (10W)", "5W"],
        compatible: &["nvidia,p3448-0000", "nvidia,p3448-0002", "nvidia,p3450-0000", "nvidia,jetson-nano"],
    },
    Profile {
        name: "jetson-tx2",
        title: "Jetson TX2 (8 GB)",
        soc: "Tegra X2 (T186)",
        gpu_arch: "Pascal",
        compute_capability: (6, 2),
        cuda_cores: 256,
        tensor_cores: 0,
        dla: 0,
        dram_bytes: 8 * GIB,
        cpu: "2x Denver 2 + 4x Cortex-A57",
        cpu_cores: 6,
        simd: A57,
        jetpack: &[JP4],
        power_modes: &["MAXN", "MAXQ", "MAXP_CORE_ALL", "MAXP_CORE_ARM", "MAXP_CORE_DENVER"],
        compatible: &["nvidia,p3310-1000", "nvidia,p3489-0000", "nvidia,p2771-0000"],
    },
    Profile {
        name: "jetson-xavier-nx",
        title: "Jetson Xavier NX (8 GB)",
        soc: "Xavier (T194)",
        gpu_arch: "Volta",
        compute_capability: (7, 2),
        cuda_cores: 384,
        tensor_cores: 48,
        dla: 2,
        dram_bytes: 8 * GIB,
        cpu: "6x Carmel",
        cpu_cores: 6,
        simd: CARMEL,
        jetpack: &[JP4, JP5],
        power_modes: &["10W", "15W", "20W"],
        compatible: &["nvidia,p3668-0000", "nvidia,p3668-0001"],
    },
    Profile {
        name: "jetson-agx-xavier",
        title: "Jetson AGX Xavier (32 GB)",
        soc: "Xavier (T194)",
        gpu_arch: "Volta",
        compute_capability: (7, 2),
        cuda_cores: 512,
        tensor_cores: 64,
        dla: 2,
        dram_bytes: 32 * GIB,
        cpu: "8x Carmel",
        cpu_cores: 8,
        simd: CARMEL,
        jetpack: &[JP4, JP5],
        power_modes: &["MAXN", "10W", "15W", "30W"],
        compatible: &["nvidia,p2888-0001", "nvidia,p2888-0004", "nvidia,p2972-0000"],
    },
    Profile {
        name: "jetson-orin-nano-4gb",
        title: "Jetson Orin Nano 4GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 512,
        tensor_cores: 16,
        dla: 0,
        dram_bytes: 4 * GIB,
        cpu: "6x Cortex-A78AE",
        cpu_cores: 6,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["7W", "10W", "MAXN SUPER (JetPack 6.2)"],
        compatible: &["nvidia,p3767-0004"],
    },
    Profile {
        name: "jetson-orin-nano-8gb",
        title: "Jetson Orin Nano 8GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 1024,
        tensor_cores: 32,
        dla: 0,
        dram_bytes: 8 * GIB,
        cpu: "6x Cortex-A78AE",
        cpu_cores: 6,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["7W", "15W", "MAXN SUPER (JetPack 6.2)"],
        compatible: &["nvidia,p3767-0003", "nvidia,p3767-0005"],
    },
    Profile {
        name: "jetson-orin-nx-8gb",
        title: "Jetson Orin NX 8GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 1024,
        tensor_cores: 32,
        dla: 1,
        dram_bytes: 8 * GIB,
        cpu: "6x Cortex-A78AE",
        cpu_cores: 6,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["10W", "15W", "20W", "MAXN SUPER (JetPack 6.2)"],
        compatible: &["nvidia,p3767-0001"],
    },
    Profile {
        name: "jetson-orin-nx-16gb",
        title: "Jetson Orin NX 16GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 1024,
        tensor_cores: 32,
        dla: 2,
        dram_bytes: 16 * GIB,
        cpu: "8x Cortex-A78AE",
        cpu_cores: 8,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["10W", "15W", "25W", "MAXN SUPER (JetPack 6.2)"],
        compatible: &["nvidia,p3767-0000"],
    },
    Profile {
        name: "jetson-agx-orin-32gb",
        title: "Jetson AGX Orin 32GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 1792,
        tensor_cores: 56,
        dla: 2,
        dram_bytes: 32 * GIB,
        cpu: "8x Cortex-A78AE",
        cpu_cores: 8,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["15W", "30W", "40W"],
        compatible: &["nvidia,p3701-0004"],
    },
    Profile {
        name: "jetson-agx-orin-64gb",
        title: "Jetson AGX Orin 64GB",
        soc: "Orin (T234)",
        gpu_arch: "Ampere",
        compute_capability: (8, 7),
        cuda_cores: 2048,
        tensor_cores: 64,
        dla: 2,
        dram_bytes: 64 * GIB,
        cpu: "12x Cortex-A78AE",
        cpu_cores: 12,
        simd: A78AE,
        jetpack: &[JP5, JP6],
        power_modes: &["MAXN", "15W", "30W", "50W"],
        compatible: &["nvidia,p3701-0005", "nvidia,p3701-0000"],
    },
    Profile {
        name: "jetson-agx-thor",
        title: "Jetson AGX Thor (T5000, 128 GB)",
        soc: "Thor (T264)",
        gpu_arch: "Blackwell",
        compute_capability: (11, 0),
        cuda_cores: 2560,
        tensor_cores: 96,
        dla: 0,
        dram_bytes: 128 * GIB,
        cpu: "14x Neoverse-V3AE",
        cpu_cores: 14,
        simd: V3AE,
        jetpack: &[JP7],
        power_modes: &["MAXN (130W)", "120W", "90W", "70W", "40W"],
        compatible: &["nvidia,tegra264"],
    },
];

/// DRAM kept for L4T, the OS and the application around the model: 15 %
/// of it, at least 1 GiB.
pub fn reserve_for(dram_bytes: u64) -> u64 {
    (dram_bytes * 15 / 100).max(1 << 30)
}

/// What the CUDA driver's context takes on a Jetson before the first
/// allocation (host and device share DRAM there), counted when a model
/// runs on the GPU. Reported figures for Xavier and Orin lie between 150
/// and 300 MB; this is the upper end.
pub const CUDA_CONTEXT_BYTES: u64 = 300 << 20;

impl Profile {
    /// DRAM kept for L4T, the OS and the application around the model.
    pub fn reserve_bytes(&self) -> u64 {
        reserve_for(self.dram_bytes)
    }

    /// DRAM a model may use: the rest.
    pub fn spare_bytes(&self) -> u64 {
        self.dram_bytes.saturating_sub(self.reserve_bytes())
    }

    /// Whether jetrt's CUDA backend runs on its GPU (compute capability
    /// 7.2 and later; Nano and TX2 stop at CUDA 10.2, below what it binds).
    pub fn runs_cuda(&self) -> bool {
        self.compute_capability >= (7, 2)
    }

    /// `needs` against what the board can spare.
    pub fn budget(&'static self, needs: Needs) -> Budget {
        Budget {
            board: self.name,
            dram_bytes: self.dram_bytes,
            reserve_bytes: self.reserve_bytes(),
            spare_bytes: self.spare_bytes(),
            needs,
        }
    }
}

/// The memory a model takes when it runs, by where it goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The mapped .jrt file (weights and all); on an integrated GPU the
    /// GPU reads the weights from it in place.
    pub file_bytes: u64,
    /// The session's host memory: arena, per-thread scratch and the shared scratch.
    pub session_bytes: u64,
    /// On the GPU: the device arena, the kernel modules and the CUDA
    /// context; 0 on the CPU.
    pub gpu_bytes: u64,
}

impl Needs {
    pub fn total(&self) -> u64 {
        self.file_bytes + self.session_bytes + self.gpu_bytes
    }
}

/// A model's memory against a machine's.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Profile name, or "generic".
    pub board: &'static str,
    pub dram_bytes: u64,
    pub reserve_bytes: u64,
    pub spare_bytes: u64,
    pub needs: Needs,
}

impl Budget {
    /// A machine that is no known board, by the memory its kernel reports.
    pub fn generic(dram_bytes: u64, needs: Needs) -> Budget {
        let reserve_bytes = reserve_for(dram_bytes);
        Budget { board: GENERIC, dram_bytes, reserve_bytes, spare_bytes: dram_bytes.saturating_sub(reserve_bytes), needs }
    }

    pub fn needs_bytes(&self) -> u64 {
        self.needs.total()
    }

    pub fn fits(&self) -> bool {
        self.needs.total() <= self.spare_bytes
    }
}

/// What a machine that is not a known Jetson is called.
pub const GENERIC: &str = "generic";

/// The profile named `name` (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The profile whose module part number appears in `compatible`.
pub fn by_compatible(compatible: &[String]) -> Option<&'static Profile> {
    // Carrier+module entries ("nvidia,p3768-0000+p3767-0005") name the module after '+'.
    let parts: Vec<&str> = compatible.iter().flat_map(|c| c.split('+')).map(|c| c.strip_prefix("nvidia,").unwrap_or(c)).collect();
    PROFILES.iter().find(|p| p.compatible.iter().any(|want| parts.contains(&want.strip_prefix("nvidia,").unwrap_or(want))))
}

/// CUDA cores per multiprocessor: 64 on Volta (sm_7x), 128 on Maxwell,
/// Pascal, Ampere's sm_86/87 and Blackwell.
fn cores_per_sm(cc: (u32, u32)) -> u32 {
    match cc {
        (7, _) | (6, 0) | (8, 0) => 64,
        _ => 128,
    }
}

/// The boards whose integrated GPU has this compute capability, this many
/// multiprocessors and about this much memory (what CUDA reports: the DRAM
/// the kernel sees, a little under the module's): for a Jetson whose device
/// tree cannot be read (a container without /proc/device-tree). Some
/// modules share all three (Orin Nano 8GB and Orin NX 8GB): all are returned.
pub fn by_gpu(compute_capability: (u32, u32), multiprocessors: u32, memory_bytes: u64) -> Vec<&'static Profile> {
    PROFILES
        .iter()
        .filter(|p| {
            p.compute_capability == compute_capability
                && p.cuda_cores == multiprocessors * cores_per_sm(compute_capability)
                && memory_bytes <= p.dram_bytes
                && memory_bytes >= p.dram_bytes / 100 * 80
        })
        .collect()
}

/// The profiles' table as Markdown (docs/BOARDS.md).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Boards\n\nGenerated from `boards/src/profiles.rs` (`JETRT_BLESS=1 cargo test -p jetrt-boards` rewrites it).\n\
         The name is what `jetrt update --board` and `jetc publish --boards` use; `jetrt info` prints it.\n\n\
         | name | board | SoC | GPU | sm | CUDA cores | tensor cores | DLA | DRAM | CPU | SIMD | JetPack (L4T, CUDA) | power modes | jetrt backend |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in PROFILES {
        let (maj, min) = p.compute_capability;
        let jp: Vec<String> = p.jetpack.iter().map(|j| format!("{} ({}, CUDA {})", j.jetpack, j.l4t, j.cuda)).collect();
        // cudarc binds CUDA 11.4 and newer: JetPack 4 boards (CUDA 10.2) run on the CPU.
        let backend = if p.runs_cuda() { "cpu, cuda" } else { "cpu (CUDA 10.2 is below what jetrt binds)" };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {maj}{min} | {} | {} | {} | {} GiB | {} | {} | {} | {} | {} |\n",
            p.name,
            p.title,
            p.soc,
            p.gpu_arch,
            p.cuda_cores,
            p.tensor_cores,
            p.dla,
            p.dram_bytes / GIB,
            p.cpu,
            p.simd.join(" "),
            jp.join("; "),
            p.power_modes.join(", "),
            backend
        ));
    }
    s.push_str(&format!(
        "| `{GENERIC}` | any other Linux machine | | | | | | | | | | | | cpu, cuda |\n\n\
         A board is recognised by the module part number in `/proc/device-tree/compatible`\n\
         (`nvidia,p3767-0005` in `nvidia,p3768-0000+p3767-0005`). Within a JetPack line the\n\
         newest release is listed; older point releases of the same line behave alike for jetrt.\n\n\
         `$JETRT_ROOT` makes every jetrt command read the board's files under that folder instead\n\
         of `/` (`jetrt info --root DIR` for one command): the tests point it at copies of real\n\
         boards' files in `boards/tests/fixtures`, and it answers \"what would jetrt decide on that\n\
         board\" from a workstation.\n\n\
         ## Memory budgets\n\n\
         A model may use a board's DRAM less 15 % of it (at least 1 GiB), kept for L4T, the OS and\n\
         the application. What a model takes:\n\n\
         - on the CPU: the mapped `.jrt` file, plus per session the arena, per-thread scratch and the shared scratch\n  \
           (all the board's cores for a named board, the session's threads at load);\n\
         - on a Jetson's GPU (Xavier and later), also the device arena, the kernel module and the\n  \
           CUDA context ({ctx} MiB, the upper end of what Xavier and Orin report); the weights are\n  \
           read in place from the mapped file, so they are counted once.\n\n\
         `jetc inspect FILE --board NAME|all` says which boards a file fits, and on which device.\n\
         `jetc convert --board NAME` refuses to write a model that does not fit (what was at the\n\
         output path stays). `jetrt run`, `bench`, `verify`, `drift`, `serve` (for each worker's\n\
         session) and the update agent's health check refuse at load, before anything is\n\
         allocated, with every figure; on a machine that is no known board the same rule applies\n\
         to the memory its kernel reports (`MemTotal`). `JETRT_MEMORY_CHECK=0` loads it anyway.\n\n\
         ## Telemetry\n\n\
         `jetrt info --telemetry [--json] [--watch [SECS] [--count N]]` reads, without tegrastats:\n\n\
         | what | where (under `/`) |\n\
         |---|---|\n\
         | temperatures and passive trip points | `sys/class/thermal/thermal_zone*/{{type,temp,trip_point_*}}` (Nano and TX2's fixed 100 °C `PMIC-Die` is left out) |\n\
         | power per rail, JetPack 5 and later | INA3221 hwmon: `sys/class/hwmon/hwmon*/{{name,inN_label,inN_input,currN_input}}` |\n\
         | power per rail, JetPack 4 | `sys/bus/i2c/drivers/ina3221x/*/iio:device*/{{rail_name_N,in_powerN_input}}` |\n\
         | GPU load and clock | the GPU's devfreq node: `sys/class/devfreq/*{{gpu,gv11b,ga10b,...}}/{{cur_freq,max_freq,device/load}}` |\n\
         | CPU clocks | `sys/devices/system/cpu/cpu*/cpufreq/{{scaling_cur_freq,scaling_max_freq,cpuinfo_max_freq}}` |\n\
         | EMC (memory) clock | debugfs, root only: `sys/kernel/debug/bpmp/debug/clk/emc/rate` (JetPack 4: `clk/emc/clk_rate`) |\n\
         | nvpmodel mode | `var/lib/nvpmodel/status` (`pmode:0000`), names from `etc/nvpmodel.conf` |\n\
         | throttling | non-fan cooling devices in use (`sys/class/thermal/cooling_device*/cur_state`), a zone at its passive trip point, over-current events (`oc*_event_cnt` of the `soctherm_oc` hwmon device on Orin), clock ceilings lowered |\n\n\
         `jetrt bench` reads it before the first warm-up run, every half second during the\n\
         measurement and after it; it prints the temperature and input power before and after,\n\
         records them under `telemetry` in `--json`, and warns on stderr when the board\n\
         throttled during the measurement (the figures are then below what the board can do).\n\n\
         ## Pins and buses\n\n\
         `jetrt_boards::io` drives a field device's pins and buses through embedded-hal's traits\n\
         (`OutputPin`, `I2c`): a status LED and an alarm line (`Line`, active-high or active-low,\n\
         touched only when their state changes) and an LM75/TMP102-compatible temperature sensor\n\
         (`TempSensor`). `io::linux` (the `linux` feature) opens the real ones with\n\
         linux-embedded-hal: GPIO lines through the character device, I2C buses as `/dev/i2c-N`;\n\
         `io::fake` records what was done, for tests. The runtime holds only the traits' types\n\
         (the drift monitor's `AlarmPin<P: OutputPin>`).\n\n\
         | option | what |\n\
         |---|---|\n\
         | `jetrt run/bench/drift --monitor --alarm-gpio CHIP:LINE` | the drift alarm line, active while the verdict is at `--alarm-level` |\n\
         | `jetrt serve --status-led CHIP:LINE` | lit while a model is served |\n\
         | `jetrt info --telemetry --i2c-temp BUS:ADDRESS` | a board temperature sensor, e.g. `/dev/i2c-1:0x48` |\n\n\
         On a Jetson, `gpioinfo` (libgpiod) lists the chips and lines; the 40-pin header's I2C\n\
         pins are bus 1 and bus 7 on Orin (`/dev/i2c-1`, `/dev/i2c-7`), 1 and 0 on Nano. The\n\
         user needs access to `/dev/gpiochipN` and `/dev/i2c-N` (the `gpio` and `i2c` groups).\n",
        ctx = CUDA_CONTEXT_BYTES >> 20
    ));
    s
}
