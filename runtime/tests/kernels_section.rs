//! The optional Kernels section (GPU code compiled by jetc): it round-trips,
//! a damaged one is a clear error, and a file without it is unchanged.

mod common;

use jetrt::{Model, SectionKind};
use jetrt_format::kernels::KernelImage;

fn with_images() -> Vec<u8> {
    let mut fb = common::small_model();
    fb.kernels = vec![
        KernelImage { arch: 87, nvrtc: (12, 9), source_hash: 0x1234, image: b"\x7fELF orin".to_vec() },
        KernelImage { arch: 110, nvrtc: (13, 5), source_hash: 0x1234, image: vec![7; 100] },
    ];
    fb.to_bytes()
}

#[test]
fn images_round_trip_and_the_model_still_runs() {
    let b = with_images();
    let m = Model::from_bytes(&b).unwrap();
    let imgs = m.info().kernel_images;
    assert_eq!(imgs.iter().map(|k| (k.arch, k.nvrtc, k.bytes)).collect::<Vec<_>>(), vec![(87, (12, 9), 9), (110, (13, 5), 100)]);
    assert!(m.info().sections.iter().any(|s| s.kind == SectionKind::Kernels));
    // The section is flagged optional: a reader that predates it skips it.
    let e = common::section(&b, SectionKind::Kernels);
    assert_eq!(u32::from_le_bytes(b[e.at + 4..e.at + 8].try_into().unwrap()) & 1, 1);
    let mut s = m.session(jetrt::SessionOptions::default().with_backend(jetrt::Backend::Cpu)).unwrap();
    let x = common::values(192, 5);
    let (mut p, mut l) = (vec![0.0f32; 10], vec![0.0f32; 10]);
    s.run(&[jetrt::TensorRef::f32(&[1, 3, 8, 8], &x)], &mut [jetrt::TensorMut::f32(&mut p), jetrt::TensorMut::f32(&mut l)]).unwrap();
    // Without images there is no section at all.
    let plain = common::small_model().to_bytes();
    assert!(Model::from_bytes(&plain).unwrap().info().kernel_images.is_empty());
    assert!(common::table(&plain).iter().all(|e| e.kind != SectionKind::Kernels as u32));
}

#[test]
fn a_damaged_kernels_section_is_an_error_naming_it() {
    let mut b = with_images();
    let e = common::section(&b, SectionKind::Kernels);
    // The second image's length runs past the section.
    let at = e.offset + 4 + 40 + 32;
    b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    common::reseal(&mut b);
    let err = Model::from_bytes(&b).unwrap_err().to_string();
    assert!(err.contains("Kernels") && err.contains("image #1 end"), "{err}");
    // Unsealed damage is caught by the checksum.
    let mut b = with_images();
    b[e.offset + 50] ^= 1;
    let err = Model::from_bytes(&b).unwrap_err().to_string();
    assert!(err.contains("Kernels") && err.contains("checksum"), "{err}");
}
