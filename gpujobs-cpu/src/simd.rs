//! Run-time selection of the instruction set for the hand-written kernels.
//!
//! Rust compiles for baseline x86-64 (SSE2) unless told otherwise, while the machines we
//! run on have AVX2 and often AVX-512. Each kernel is written once, generic over how it
//! multiplies-and-adds (`Madd`), and `multiversion!` compiles it three times: for
//! AVX-512, for AVX2+FMA, and for the baseline; the first call picks the best the CPU
//! supports. This is the only module that needs `unsafe`: calling a function compiled
//! for features the CPU may lack is undefined behaviour, so the call happens only after
//! `is_x86_feature_detected!` confirmed them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// Instruction-set level detected at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// AVX-512 F/VL with FMA.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Whatever the target baseline offers.
    Baseline,
}

static CAP: AtomicU8 = AtomicU8::new(0);

/// The level the kernels use: the best this CPU supports (detected once), lowered by
/// [`cap_level`] if set.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    let detected = *LEVEL.get_or_init(detect);
    match CAP.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 if detected == Level::Avx512 => Level::Avx2,
        _ => detected,
    }
}

/// Caps the level the kernels use (never above what the CPU supports), or removes the
/// cap with `None`. For tests and for comparing code paths in benchmarks; it affects
/// every thread of the process.
pub fn cap_level(cap: Option<Level>) {
    let v = match cap {
        None | Some(Level::Avx512) => 0,
        Some(Level::Baseline) => 1,
        Some(Level::Avx2) => 2,
    };
    CAP.store(v, Ordering::Relaxed);
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("GPUJOBS_NO_AVX512").is_none()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("fma")
        {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// How a kernel computes `a * b + c`.
pub(crate) trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// One rounding: compiles to an FMA instruction where FMA is enabled.
pub(crate) struct Fused;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Two roundings: used where FMA is not available (`mul_add` would be a library call).
pub(crate) struct Separate;

impl Madd for Separate {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Defines `$name` as a dispatcher over copies of the generic `$imp::<M: Madd>`
/// compiled for AVX-512, AVX2+FMA and the baseline.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) = $imp:ident) => {
        $(#[$meta])*
        #[allow(unsafe_code)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $imp::<$crate::simd::Fused>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $imp::<$crate::simd::Fused>($($arg),*)
                }
                match $crate::simd::level() {
                    // SAFETY: `level()` returned these only after run-time detection
                    // confirmed the CPU has every feature the function was compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            $imp::<$crate::simd::Separate>($($arg),*)
        }
    };
}
pub(crate) use multiversion;
