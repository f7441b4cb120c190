//! Kernel launches, held to the kernel table: the argument count is checked against the
//! [`crate::kernels::KernelSpec`] at compile time, and the spec against the PTX by a test.

use super::state::DeviceState;
use crate::kernels::KernelSpec;
use cust::function::{BlockSize, GridSize};
use gpujobs_core::JobError;
use std::ffi::c_void;

/// `launch!(state, SPEC, grid, block, shared_bytes; arg, ...)` launches `SPEC` on the
/// job stream. Arguments must be plain locals of the kernel's parameter types (`u64`
/// device pointers, `i32`, `u64`, `f32`), in order.
#[macro_export]
#[doc(hidden)]
macro_rules! launch {
    ($state:expr, $spec:expr, $grid:expr, $block:expr, $shared:expr; $($arg:expr),* $(,)?) => {{
        const _: () = assert!(
            <[()]>::len(&[$($crate::launch!(@unit $arg)),*]) == $spec.params,
            "the launch passes a different number of arguments than the kernel takes"
        );
        let mut args: Vec<*mut ::std::ffi::c_void> = vec![$(&$arg as *const _ as *mut ::std::ffi::c_void),*];
        $state.launch_raw(&$spec, $grid, $block, $shared, &mut args)
    }};
    (@unit $e:expr) => { () };
}

impl DeviceState {
    /// Launches a kernel on the job stream with prepared argument pointers (use
    /// [`launch!`]).
    pub(crate) fn launch_raw(
        &mut self,
        spec: &KernelSpec,
        grid: impl Into<GridSize>,
        block: impl Into<BlockSize>,
        shared: u32,
        args: &mut [*mut c_void],
    ) -> Result<(), JobError> {
        self.launch_raw_on(false, spec, grid, block, shared, args)
    }

    /// [`DeviceState::launch_raw`] on the job stream, or on the side stream (`side`)
    /// the pipeline overlaps chunks with.
    pub(crate) fn launch_raw_on(
        &mut self,
        side: bool,
        spec: &KernelSpec,
        grid: impl Into<GridSize>,
        block: impl Into<BlockSize>,
        shared: u32,
        args: &mut [*mut c_void],
    ) -> Result<(), JobError> {
        if args.len() != spec.params {
            return Err(JobError::permanent(format!(
                "kernel {} takes {} arguments, got {}",
                spec.name,
                spec.params,
                args.len()
            )));
        }
        let result = {
            let module = self.module(spec.module);
            let stream = if side {
                self.side.as_ref().unwrap_or(&self.stream)
            } else {
                &self.stream
            };
            match module.get_function(spec.name) {
                Ok(function) => {
                    // SAFETY: the argument count matches the kernel's PTX signature (checked
                    // above and by the signature test), each pointer refers to a live local of
                    // the parameter's type, and device pointers refer to buffers that outlive
                    // the stream synchronisation that ends every job.
                    #[allow(unsafe_code)]
                    unsafe {
                        stream.launch(&function, grid, block, shared, args)
                    }
                }
                Err(e) => Err(e),
            }
        };
        result.map_err(|e| self.err(&format!("launching {}", spec.name), e))
    }
}
