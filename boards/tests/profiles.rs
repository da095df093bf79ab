//! The board table: docs/BOARDS.md is generated from it and must be fresh;
//! names and module part numbers are unique; detection by `compatible`.

use jetrt_boards::profiles::{self, PROFILES};
use std::path::Path;

#[test]
fn boards_md_is_generated_from_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/BOARDS.md");
    let want = profiles::markdown();
    if std::env::var("JETRT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(have == want, "docs/BOARDS.md is stale: run JETRT_BLESS=1 cargo test -p jetrt-boards --test profiles");
}

#[test]
fn names_and_part_numbers_are_unique_and_figures_sane() {
    let mut names = std::collections::HashSet::new();
    let mut parts = std::collections::HashSet::new();
    for p in PROFILES {
        assert!(names.insert(p.name), "{} twice", p.name);
        for c in p.compatible {
            assert!(parts.insert(*c), "{c} names two boards");
        }
        assert!(p.dram_bytes >= 4 << 30 && p.cpu_cores >= 4 && p.cuda_cores >= 128, "{}", p.name);
        assert!(!p.jetpack.is_empty() && !p.power_modes.is_empty() && p.simd.contains(&"asimd"), "{}", p.name);
        assert_eq!(profiles::by_name(&p.name.to_uppercase()), Some(p));
    }
    assert!(profiles::by_name(profiles::GENERIC).is_none());
}

#[test]
fn a_module_is_found_by_its_part_number_on_any_carrier() {
    let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let orin_nano_devkit = c(&["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"]);
    assert_eq!(profiles::by_compatible(&orin_nano_devkit).map(|p| p.name), Some("jetson-orin-nano-8gb"));
    // The same module on a third-party carrier: only the module entry matches.
    let custom = c(&["vendor,carrier-1+p3767-0001", "nvidia,tegra234"]);
    assert_eq!(profiles::by_compatible(&custom).map(|p| p.name), Some("jetson-orin-nx-8gb"));
    assert_eq!(
        profiles::by_compatible(&c(&["nvidia,p3448-0000", "nvidia,jetson-nano", "nvidia,tegra210"])).map(|p| p.name),
        Some("jetson-nano")
    );
    assert_eq!(profiles::by_compatible(&c(&["nvidia,tegra264"])).map(|p| p.name), Some("jetson-agx-thor"));
    assert_eq!(profiles::by_compatible(&c(&["raspberrypi,5-model-b", "brcm,bcm2712"])), None);
}

/// Fixture trees laid out as L4T lays out a board's files.
#[test]
fn boards_are_detected_from_their_files() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases = [
        ("jetson-nano-devkit", "jetson-nano", Some("R32.7.4"), 4, 4059224u64),
        ("jetson-xavier-nx-devkit", "jetson-xavier-nx", Some("R35.4.1"), 6, 7796748),
        ("jetson-orin-nano-devkit", "jetson-orin-nano-8gb", Some("R36.4.3"), 6, 7802128),
        ("jetson-agx-orin-64gb", "jetson-agx-orin-64gb", Some("R35.5.0"), 12, 64335120),
        ("jetson-agx-thor-devkit", "jetson-agx-thor", Some("R38.2.0"), 14, 128350000),
        ("generic-x86", "generic", None, 2, 24576000),
    ];
    for (dir, board, l4t, cores, mem_kb) in cases {
        let m = jetrt_boards::machine(&fx.join(dir));
        assert_eq!(m.board_name(), board, "{dir}");
        assert_eq!(m.info.l4t_release.as_deref(), l4t, "{dir}");
        assert_eq!((m.cpu.cores, m.dram_bytes), (cores, Some(mem_kb * 1024)), "{dir}");
        assert!(m.cpu.model.is_some() && !m.cpu.features.is_empty(), "{dir}: {:?}", m.cpu);
        if let Some(p) = m.profile {
            // The kernel sees a little less than the module's DRAM, never more.
            assert!(m.dram_bytes.unwrap() <= p.dram_bytes && m.dram_bytes.unwrap() > p.dram_bytes / 10 * 9, "{dir}");
            assert!(
                p.simd.iter().all(|f| m.cpu.features.iter().any(|g| g == f)),
                "{dir}: profile SIMD {:?} not in {:?}",
                p.simd,
                m.cpu.features
            );
        }
    }
    assert_eq!(jetrt_boards::machine(&fx.join("generic-x86")).cpu.model.as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
    let orin = jetrt_boards::machine(&fx.join("jetson-orin-nano-devkit"));
    assert_eq!(jetrt_boards::gpu_presence(&fx.join("jetson-orin-nano-devkit"), &orin.info).len(), 1, "the integrated GPU's node");
}

#[test]
fn budgets_keep_a_reserve_for_the_os() {
    let nano = profiles::by_name("jetson-nano").unwrap();
    assert_eq!(nano.spare_bytes(), 3 << 30, "4 GiB less the 1 GiB floor");
    let orin = profiles::by_name("jetson-agx-orin-64gb").unwrap();
    assert_eq!(orin.spare_bytes(), (64u64 << 30) - (64u64 << 30) * 15 / 100);
    let needs = |gpu_bytes| profiles::Needs { file_bytes: 1 << 30, session_bytes: 1 << 30, gpu_bytes };
    assert!(nano.budget(needs(1 << 30)).fits());
    let over = nano.budget(needs((1 << 30) + 1));
    assert!(!over.fits() && over.needs_bytes() == (3 << 30) + 1 && over.board == "jetson-nano");
    assert!(!nano.runs_cuda() && orin.runs_cuda());
    assert!(!profiles::by_name("jetson-tx2").unwrap().runs_cuda() && profiles::by_name("jetson-xavier-nx").unwrap().runs_cuda());
    // A machine that is no board: by its memory, with the same reserve.
    let g = profiles::Budget::generic(24 << 30, needs(0));
    assert_eq!((g.board, g.spare_bytes, g.fits()), (profiles::GENERIC, (24u64 << 30) - (24u64 << 30) * 15 / 100, true));
    assert!(!profiles::Budget::generic(2 << 30, needs(0)).fits(), "2 GiB less the 1 GiB floor leaves 1 GiB");
}

/// Without a device tree, the GPU's properties narrow the board down.
#[test]
fn the_gpu_names_the_board_when_the_device_tree_cannot() {
    let names = |cc, sms, mem: u64| profiles::by_gpu(cc, sms, mem).iter().map(|p| p.name).collect::<Vec<_>>();
    // Orin Nano 4GB: 4 SMs of 128 cores; the kernel sees about 3.4 GiB of its 4.
    assert_eq!(names((8, 7), 4, 3_600_000_000), ["jetson-orin-nano-4gb"]);
    // 8 SMs and 7.4 GiB: Orin Nano 8GB and Orin NX 8GB are the same GPU and memory.
    assert_eq!(names((8, 7), 8, 7_990_000_000), ["jetson-orin-nano-8gb", "jetson-orin-nx-8gb"]);
    assert_eq!(names((8, 7), 16, 64_335_120 * 1024), ["jetson-agx-orin-64gb"]);
    // Xavier NX: Volta, 6 SMs of 64 cores.
    assert_eq!(names((7, 2), 6, 7_980_000_000), ["jetson-xavier-nx"]);
    assert!(names((9, 0), 132, 80 << 30).is_empty(), "an H100 is no Jetson");
}
