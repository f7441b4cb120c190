//! The driver API's numbers: result codes, attributes, handles.

/// `CUresult`.
pub type CuResult = u32;

/// `CUDA_SUCCESS`.
pub const SUCCESS: CuResult = 0;
/// `CUDA_ERROR_INVALID_VALUE`.
pub const INVALID_VALUE: CuResult = 1;
/// `CUDA_ERROR_OUT_OF_MEMORY`.
pub const OUT_OF_MEMORY: CuResult = 2;
/// `CUDA_ERROR_NOT_INITIALIZED`.
pub const NOT_INITIALIZED: CuResult = 3;
/// `CUDA_ERROR_NO_DEVICE`.
pub const NO_DEVICE: CuResult = 100;
/// `CUDA_ERROR_INVALID_DEVICE`.
pub const INVALID_DEVICE: CuResult = 101;
/// `CUDA_ERROR_INVALID_IMAGE`.
pub const INVALID_IMAGE: CuResult = 200;
/// `CUDA_ERROR_INVALID_CONTEXT`.
pub const INVALID_CONTEXT: CuResult = 201;
/// `CUDA_ERROR_INVALID_PTX`.
pub const INVALID_PTX: CuResult = 218;
/// `CUDA_ERROR_UNSUPPORTED_PTX_VERSION`.
pub const UNSUPPORTED_PTX_VERSION: CuResult = 222;
/// `CUDA_ERROR_INVALID_HANDLE`.
pub const INVALID_HANDLE: CuResult = 400;
/// `CUDA_ERROR_NOT_FOUND`.
pub const NOT_FOUND: CuResult = 500;
/// `CUDA_ERROR_NOT_READY`.
pub const NOT_READY: CuResult = 600;
/// `CUDA_ERROR_ILLEGAL_ADDRESS` (sticky).
pub const ILLEGAL_ADDRESS: CuResult = 700;
/// `CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES`.
pub const LAUNCH_OUT_OF_RESOURCES: CuResult = 701;
/// `CUDA_ERROR_LAUNCH_TIMEOUT` (sticky).
pub const LAUNCH_TIMEOUT: CuResult = 702;
/// `CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED`.
pub const HOST_MEMORY_ALREADY_REGISTERED: CuResult = 712;
/// `CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED`.
pub const HOST_MEMORY_NOT_REGISTERED: CuResult = 713;
/// `CUDA_ERROR_MISALIGNED_ADDRESS` (sticky).
pub const MISALIGNED_ADDRESS: CuResult = 716;
/// `CUDA_ERROR_LAUNCH_FAILED` (sticky).
pub const LAUNCH_FAILED: CuResult = 719;
/// `CUDA_ERROR_NOT_SUPPORTED`.
pub const NOT_SUPPORTED: CuResult = 801;

/// Whether an error leaves the context unusable until the primary context is reset.
pub fn is_sticky(e: CuResult) -> bool {
    matches!(
        e,
        ILLEGAL_ADDRESS | LAUNCH_TIMEOUT | MISALIGNED_ADDRESS | LAUNCH_FAILED
    )
}

/// `cuGetErrorName`'s text.
pub fn name(e: CuResult) -> &'static str {
    match e {
        SUCCESS => "CUDA_SUCCESS",
        INVALID_VALUE => "CUDA_ERROR_INVALID_VALUE",
        OUT_OF_MEMORY => "CUDA_ERROR_OUT_OF_MEMORY",
        NOT_INITIALIZED => "CUDA_ERROR_NOT_INITIALIZED",
        NO_DEVICE => "CUDA_ERROR_NO_DEVICE",
        INVALID_DEVICE => "CUDA_ERROR_INVALID_DEVICE",
        INVALID_IMAGE => "CUDA_ERROR_INVALID_IMAGE",
        INVALID_CONTEXT => "CUDA_ERROR_INVALID_CONTEXT",
        INVALID_PTX => "CUDA_ERROR_INVALID_PTX",
        UNSUPPORTED_PTX_VERSION => "CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
        INVALID_HANDLE => "CUDA_ERROR_INVALID_HANDLE",
        NOT_FOUND => "CUDA_ERROR_NOT_FOUND",
        NOT_READY => "CUDA_ERROR_NOT_READY",
        ILLEGAL_ADDRESS => "CUDA_ERROR_ILLEGAL_ADDRESS",
        LAUNCH_OUT_OF_RESOURCES => "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
        LAUNCH_TIMEOUT => "CUDA_ERROR_LAUNCH_TIMEOUT",
        HOST_MEMORY_ALREADY_REGISTERED => "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED",
        HOST_MEMORY_NOT_REGISTERED => "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED",
        MISALIGNED_ADDRESS => "CUDA_ERROR_MISALIGNED_ADDRESS",
        LAUNCH_FAILED => "CUDA_ERROR_LAUNCH_FAILED",
        NOT_SUPPORTED => "CUDA_ERROR_NOT_SUPPORTED",
        _ => "CUDA_ERROR_UNKNOWN",
    }
}

/// `cuGetErrorString`'s text: the simulator says it is the simulator.
pub fn describe(e: CuResult) -> &'static str {
    match e {
        SUCCESS => "no error",
        INVALID_VALUE => "invalid argument (simulated driver)",
        OUT_OF_MEMORY => "out of memory (simulated driver)",
        NOT_INITIALIZED => "initialization error (simulated driver)",
        NO_DEVICE => "no CUDA-capable device is detected (simulated driver)",
        INVALID_IMAGE => "device kernel image is invalid (simulated driver)",
        INVALID_PTX => "a PTX JIT compilation failed (simulated driver)",
        UNSUPPORTED_PTX_VERSION => {
            "the provided PTX was compiled with an unsupported toolchain (simulated driver)"
        }
        INVALID_HANDLE => "invalid resource handle (simulated driver)",
        NOT_FOUND => "named symbol not found (simulated driver)",
        NOT_READY => "device not ready (simulated driver)",
        ILLEGAL_ADDRESS => "an illegal memory access was encountered (simulated driver)",
        LAUNCH_OUT_OF_RESOURCES => "too many resources requested for launch (simulated driver)",
        LAUNCH_TIMEOUT => "the launch timed out and was terminated (simulated driver)",
        MISALIGNED_ADDRESS => "misaligned address (simulated driver)",
        LAUNCH_FAILED => "unspecified launch failure (simulated driver)",
        NOT_SUPPORTED => "operation not supported by the simulated driver",
        _ => "unknown error (simulated driver)",
    }
}

/// `CU_DEVICE_ATTRIBUTE_*` values the simulator answers.
pub mod attribute {
    /// Max threads per block.
    pub const MAX_THREADS_PER_BLOCK: u32 = 1;
    /// Max block dimension x.
    pub const MAX_BLOCK_DIM_X: u32 = 2;
    /// Max block dimension y.
    pub const MAX_BLOCK_DIM_Y: u32 = 3;
    /// Max block dimension z.
    pub const MAX_BLOCK_DIM_Z: u32 = 4;
    /// Max grid dimension x.
    pub const MAX_GRID_DIM_X: u32 = 5;
    /// Max grid dimension y.
    pub const MAX_GRID_DIM_Y: u32 = 6;
    /// Max grid dimension z.
    pub const MAX_GRID_DIM_Z: u32 = 7;
    /// Shared memory per block.
    pub const MAX_SHARED_MEMORY_PER_BLOCK: u32 = 8;
    /// Warp size.
    pub const WARP_SIZE: u32 = 10;
    /// Multiprocessors.
    pub const MULTIPROCESSOR_COUNT: u32 = 16;
    /// Compute capability, major.
    pub const COMPUTE_CAPABILITY_MAJOR: u32 = 75;
    /// Compute capability, minor.
    pub const COMPUTE_CAPABILITY_MINOR: u32 = 76;
}

/// The largest dynamic shared memory a launch may ask for without opting in.
pub const SHARED_LIMIT: u32 = 48 * 1024;
