//! Every kernel the backend launches: its module, its PTX entry name and how many
//! parameters it takes. `cust`'s launch does not check arguments, so launches go
//! through [`KernelSpec`]s: the launch macro refuses (at compile time) an argument list
//! of the wrong length, and a test checks each spec against the `.entry` in the PTX.

/// A PTX module: one `.cu` file under `kernels/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Module {
    /// Synthetic data generation.
    Synth,
    /// Vector add.
    VectorAdd,
    /// SGEMM variants.
    Sgemm,
    /// Gaussian blur and Sobel.
    ImageFilter,
    /// MLP training steps.
    Mlp,
}

impl Module {
    /// Every module.
    pub const ALL: [Module; 5] = [
        Module::Synth,
        Module::VectorAdd,
        Module::Sgemm,
        Module::ImageFilter,
        Module::Mlp,
    ];

    /// The file stem (`kernels/<name>.cu`, `ptx/<name>.ptx`).
    pub fn name(self) -> &'static str {
        match self {
            Module::Synth => "synth",
            Module::VectorAdd => "vector_add",
            Module::Sgemm => "sgemm",
            Module::ImageFilter => "image_filter",
            Module::Mlp => "mlp",
        }
    }

    /// The PTX compiled into this build (rebuilt by the user's nvcc, or the committed one).
    pub fn ptx(self) -> &'static str {
        match self {
            Module::Synth => include_str!(concat!(env!("OUT_DIR"), "/synth.ptx")),
            Module::VectorAdd => include_str!(concat!(env!("OUT_DIR"), "/vector_add.ptx")),
            Module::Sgemm => include_str!(concat!(env!("OUT_DIR"), "/sgemm.ptx")),
            Module::ImageFilter => include_str!(concat!(env!("OUT_DIR"), "/image_filter.ptx")),
            Module::Mlp => include_str!(concat!(env!("OUT_DIR"), "/mlp.ptx")),
        }
    }
}

/// A kernel: where it lives and its arity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSpec {
    /// Its module.
    pub module: Module,
    /// Its `.entry` name.
    pub name: &'static str,
    /// Number of parameters.
    pub params: usize,
}

const fn spec(module: Module, name: &'static str, params: usize) -> KernelSpec {
    KernelSpec {
        module,
        name,
        params,
    }
}

/// `fill_uniform(out, n, seed, start, lo, hi)`.
pub const FILL_UNIFORM: KernelSpec = spec(Module::Synth, "fill_uniform", 6);
/// `vector_add(a, b, c, n)`.
pub const VECTOR_ADD: KernelSpec = spec(Module::VectorAdd, "vector_add", 4);
/// `blur_rows(in, out, h, w, weights, r)`.
pub const BLUR_ROWS: KernelSpec = spec(Module::ImageFilter, "blur_rows", 6);
/// `blur_rows_direct(in, out, h, w, weights, r)`.
pub const BLUR_ROWS_DIRECT: KernelSpec = spec(Module::ImageFilter, "blur_rows_direct", 6);
/// `blur_cols(in, out, h, w, weights, r)`.
pub const BLUR_COLS: KernelSpec = spec(Module::ImageFilter, "blur_cols", 6);
/// `blur_cols_direct(in, out, h, w, weights, r)`.
pub const BLUR_COLS_DIRECT: KernelSpec = spec(Module::ImageFilter, "blur_cols_direct", 6);
/// `sobel(in, out, h, w)`.
pub const SOBEL: KernelSpec = spec(Module::ImageFilter, "sobel", 4);
/// `gather_rows(x, idx, out, rows, cols)`.
pub const GATHER_ROWS: KernelSpec = spec(Module::Mlp, "gather_rows", 5);
/// `bias_act(z, b, rows, cols, relu)`.
pub const BIAS_ACT: KernelSpec = spec(Module::Mlp, "bias_act", 5);
/// `softmax_xent(logits, labels, idx, grad, rows, classes, inv_bs, loss_sum, correct)`.
pub const SOFTMAX_XENT: KernelSpec = spec(Module::Mlp, "softmax_xent", 9);
/// `relu_mask(g, h, n)`.
pub const RELU_MASK: KernelSpec = spec(Module::Mlp, "relu_mask", 3);
/// `bias_sgd(b, g, rows, cols, lr)`.
pub const BIAS_SGD: KernelSpec = spec(Module::Mlp, "bias_sgd", 5);
/// `transpose(in, out, rows, cols)`.
pub const TRANSPOSE: KernelSpec = spec(Module::Mlp, "transpose", 4);
/// `softmax_rows(logits, probs, labels, rows, classes)`.
pub const SOFTMAX_ROWS: KernelSpec = spec(Module::Mlp, "softmax_rows", 5);

/// An SGEMM variant: its kernel and tile shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SgemmVariant {
    /// The kernel, `(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`.
    pub kernel: KernelSpec,
    /// Rows of C per block.
    pub bm: u32,
    /// Columns of C per block.
    pub bn: u32,
    /// Threads per block.
    pub threads: u32,
    /// Needs K, N and leading dimensions divisible by 4 (16-byte loads).
    pub vectorized: bool,
}

const fn sgemm(
    name: &'static str,
    bm: u32,
    bn: u32,
    threads: u32,
    vectorized: bool,
) -> SgemmVariant {
    SgemmVariant {
        kernel: spec(Module::Sgemm, name, 11),
        bm,
        bn,
        threads,
        vectorized,
    }
}

/// All SGEMM variants; the executor times the applicable ones per shape class and keeps
/// the fastest.
pub const SGEMM_VARIANTS: [SgemmVariant; 6] = [
    sgemm("sgemm_128x128x8_vec", 128, 128, 256, true),
    sgemm("sgemm_128x128x16_vec", 128, 128, 256, true),
    sgemm("sgemm_128x64x8_vec", 128, 64, 256, true),
    sgemm("sgemm_64x64x8_vec", 64, 64, 256, true),
    sgemm("sgemm_128x128x8_scalar", 128, 128, 256, false),
    sgemm("sgemm_64x64x8_scalar", 64, 64, 256, false),
];

/// Every kernel spec, for the signature test.
pub fn all() -> Vec<KernelSpec> {
    let mut v = vec![
        FILL_UNIFORM,
        VECTOR_ADD,
        BLUR_ROWS,
        BLUR_ROWS_DIRECT,
        BLUR_COLS,
        BLUR_COLS_DIRECT,
        SOBEL,
        GATHER_ROWS,
        BIAS_ACT,
        SOFTMAX_XENT,
        RELU_MASK,
        BIAS_SGD,
        TRANSPOSE,
        SOFTMAX_ROWS,
    ];
    v.extend(SGEMM_VARIANTS.iter().map(|s| s.kernel));
    v
}
