//! CPU kernels: portable Rust plus SIMD micro-kernels for x86-64 (AVX2+FMA, AVX-512)
//! and aarch64 (NEON), chosen at run time.

pub mod activation;
pub mod conv;
pub mod conv_transpose;
pub(crate) mod depthwise;
pub mod elementwise;
pub mod gemm;
pub(crate) mod grouped;
pub mod int8;
pub mod layout;
pub mod lrn;
pub mod packed;
pub mod pool;
pub mod reduce;
pub mod reference;
pub mod resize;
pub mod softmax;
pub mod strided;
mod winograd;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use activation::Activation;

/// The instruction-set variant a session runs its matrix kernels with.
///
/// Chosen once per session ([`Isa::detect`]) and stored; every variant says
/// whether the machine supports it ([`Isa::supported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, any machine.
    Generic,
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
    /// x86-64 with AVX-512F (and AVX2 and FMA): the matrix kernels on
    /// 512-bit registers; everything else as [`Isa::Avx2Fma`].
    Avx512,
    /// aarch64 Advanced SIMD (every ARMv8-A core, so every Jetson).
    Neon,
}

impl Isa {
    /// Every variant this build knows, best first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2Fma, Isa::Neon, Isa::Generic];

    /// The best variant this machine supports.
    pub fn detect() -> Isa {
        Self::ALL.into_iter().find(|isa| isa.supported()).unwrap_or(Isa::Generic)
    }

    /// Whether this machine can run the variant.
    pub fn supported(self) -> bool {
        match self {
            Isa::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Isa::Avx2Fma.supported() && std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether the variant implies AVX2 and FMA (code compiled for them
    /// may run).
    pub fn avx2(self) -> bool {
        matches!(self, Isa::Avx2Fma | Isa::Avx512)
    }

    /// Short name used in logs, `jetrt info` and benchmark reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Generic => "generic",
            Isa::Avx2Fma => "avx2_fma",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }
}

/// CPU features of this machine relevant to jetrt, for `jetrt info`.
pub fn cpu_features() -> Vec<&'static str> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($f) { out.push($f); }
            )*};
        }
        probe!("sse4.1", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vnni", "avxvnni");
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($f) { out.push($f); }
            )*};
        }
        probe!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    out
}
