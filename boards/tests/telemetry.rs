//! Telemetry from fixture trees laid out as L4T lays out a board's sysfs:
//! JetPack 6 on an Orin Nano (hwmon INA3221, devfreq, bpmp debugfs) and
//! JetPack 4 on a hot Nano (ina3221x through IIO, throttling).

use jetrt_boards::telemetry::{self, PowerMode};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn orin_nano_on_jetpack_6() {
    let t = telemetry::read(&fixture("jetson-orin-nano-devkit"));
    assert_eq!(t.zones.len(), 9);
    let cpu = t.zones.iter().find(|z| z.name == "cpu-thermal").unwrap();
    assert_eq!((cpu.celsius, cpu.passive_c), (51.25, Some(99.0)));
    let names: Vec<&str> = t.rails.iter().map(|r| r.name.as_str()).collect();
    // The "sum of shunt voltages" channel is not a rail.
    assert_eq!(names, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    let vin = t.input_watts().unwrap();
    assert!((vin - 5.056 * 1.272).abs() < 1e-9, "{vin}");
    let gpu = t.gpu.as_ref().unwrap();
    assert_eq!((gpu.device.as_str(), gpu.load_percent, gpu.freq_hz), ("17000000.gpu", Some(14.3), Some(306_000_000)));
    assert_eq!(t.cpus.len(), 6);
    assert_eq!(t.cpus[1].freq_hz, 1_510_400_000);
    assert_eq!(t.emc_hz, Some(2_133_000_000));
    assert_eq!(t.power_mode, Some(PowerMode { id: 0, name: Some("15W".into()) }));
    // Its fan spins (cooling device pwm-fan at 2): that is not throttling.
    assert!(t.cooling.is_empty());
    assert_eq!(t.oc_events, Some(0));
    assert!(t.throttling(Some(&t)).is_empty(), "{:?}", t.throttling(Some(&t)));
}

#[test]
fn a_hot_nano_on_jetpack_4_is_throttling() {
    let t = telemetry::read(&fixture("jetson-nano-devkit"));
    // PMIC-Die's fixed 100 °C is left out.
    assert!(t.zones.iter().all(|z| z.name != "PMIC-Die"));
    assert_eq!(t.hottest().map(|z| z.name.as_str()), Some("CPU-therm"));
    assert_eq!(t.rails.len(), 3);
    // JetPack 4 reports the power itself: 6336 mW.
    assert_eq!(t.input_watts(), Some(6.336));
    assert_eq!(t.gpu.as_ref().and_then(|g| g.load_percent), Some(99.8));
    assert_eq!(t.power_mode.as_ref().and_then(|m| m.name.as_deref()), Some("MAXN"));
    assert_eq!(t.emc_hz, None);
    let why = t.throttling(None);
    assert!(why.iter().any(|w| w.contains("cpu-balanced at state 3 of 7")), "{why:?}");
    assert!(why.iter().any(|w| w.contains("CPU-therm at 84.5 °C")), "{why:?}");
    // The fan and a cooling device at state 0 are not reasons.
    assert!(!why.iter().any(|w| w.contains("fan") || w.contains("emergency")), "{why:?}");
}

#[test]
fn throttling_against_a_baseline() {
    let before = telemetry::read(&fixture("jetson-orin-nano-devkit"));
    let mut after = before.clone();
    after.oc_events = Some(3);
    after.cpus[2].cap_hz = Some(960_000_000);
    if let Some(g) = &mut after.gpu {
        g.max_freq_hz = Some(408_000_000);
    }
    let why = after.throttling(Some(&before));
    assert_eq!(why.len(), 3, "{why:?}");
    assert!(why[0].contains("3 over-current event(s)"));
    assert!(why[1].contains("cpu2 clock ceiling lowered from 1510 to 960 MHz"));
    assert!(why[2].contains("GPU clock ceiling lowered from 625 to 408 MHz"));
    // Without a baseline only what the reading itself shows counts.
    assert!(after.throttling(None).is_empty());
}

#[test]
fn generic_machine_has_little_or_nothing() {
    let t = telemetry::read(&fixture("generic-x86"));
    assert!(t.is_empty(), "{t:?}");
}
