//! The CUDA backend on the simulated driver (`scripts/cuda-sim.sh`; run by `.ci/run
//! sim`): what the device did, asserted through the simulator's counters, and the
//! faults and misuse only a simulator can stage on demand. The kinds' results
//! themselves are checked by tests/gpu.rs, which runs here and on a real GPU.
//!
//! These tests need the simulator: on a real driver `simulator()` is `None` and they
//! fail with that message (scripts/gpu-check.sh does not copy this binary).
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used)]
// tests: a panic is the failure report
// Each test has its own runtime on its own thread; the lock only serialises them.
#![allow(clippy::await_holding_lock)]

use gpujobs_core::kinds::{FilterOp, ImageFilter, VectorAdd, VectorAddOutput};
use gpujobs_core::{
    DeviceClass, ErrorClass, ExecContext, Job, JobEnvelope, Limits, Registry, Tensor,
};
use gpujobs_cuda::sim::{Fault, Simulator, simulator};
use std::sync::{Mutex, MutexGuard};

/// The simulator is one per process and its counters are global: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> (MutexGuard<'static, ()>, Simulator, Registry) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let sim = simulator()
        .expect("run on the simulated driver: LD_LIBRARY_PATH=$(scripts/cuda-sim.sh)/lib64");
    sim.set_background(true);
    let exec = gpujobs_cuda::devices()
        .expect("the simulated device")
        .remove(0);
    let mut r = Registry::with_builtin_kinds();
    gpujobs_cuda::register(&mut r, &exec);
    (guard, sim, r)
}

fn ctx() -> ExecContext {
    ExecContext::standalone(Limits::with_max_bytes(1 << 34))
}

/// Runs `job` on the simulated GPU; Ok(passed the reference check) or the job's error.
async fn run<J: Job>(r: &Registry, job: J) -> Result<bool, gpujobs_core::JobError> {
    let env = JobEnvelope::new(job).unwrap();
    let exec = r.executor(J::KIND, DeviceClass::Gpu).unwrap();
    let result = exec.execute(&env.payload, &env.blobs, &ctx()).await?;
    assert_eq!(result.device.class, DeviceClass::Gpu);
    let check = r
        .check(J::KIND, &env.payload, &env.blobs, &result)
        .unwrap()
        .unwrap();
    Ok(check.passed())
}

fn values(n: usize, seed: u64) -> Tensor {
    let v = Tensor::synthetic(vec![n], seed, -1.0, 1.0)
        .values()
        .unwrap();
    Tensor::from_values(vec![n], v.to_vec()).unwrap()
}

#[tokio::test]
async fn the_device_names_itself_simulated() {
    let (_g, _sim, _r) = setup();
    let exec = gpujobs_cuda::devices().unwrap().remove(0);
    let name = exec.device_info().name;
    assert!(name.contains("simulated, not a GPU"), "{name}");
}

#[tokio::test]
async fn a_vector_add_moves_each_byte_once_each_way() {
    let (_g, sim, r) = setup();
    let n = 10_007;
    sim.reset_counters();
    let job = add(n, 1);
    assert!(run(&r, job).await.unwrap());
    let c = sim.counters();
    assert_eq!(c.h2d_bytes, 2 * 4 * n as u64, "{c:?}");
    assert_eq!(c.d2h_bytes, 4 * n as u64, "{c:?}");
    assert_eq!(c.launches_of("vector_add"), 1);
    assert_eq!(
        c.pageable_copies, 0,
        "every copy goes through pinned memory: {c:?}"
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[tokio::test]
async fn synthetic_inputs_never_cross_the_bus() {
    let (_g, sim, r) = setup();
    sim.reset_counters();
    assert!(run(&r, VectorAdd::synthetic(5000, 3)).await.unwrap());
    let c = sim.counters();
    assert_eq!(c.h2d_bytes, 0, "{c:?}");
    assert_eq!(c.launches_of("fill_uniform"), 2);
    assert_eq!(c.d2h_bytes, 4 * 5000);
}

#[tokio::test]
async fn a_blur_and_a_sobel_upload_the_image_once_and_download_it_once() {
    let (_g, sim, r) = setup();
    let (h, w) = (61, 97);
    let image = Tensor::from_values(
        vec![h, w],
        Tensor::synthetic(vec![h * w], 5, 0.0, 1.0)
            .values()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    for filter in [FilterOp::GaussianBlur { sigma: 2.0 }, FilterOp::Sobel] {
        sim.reset_counters();
        assert!(
            run(
                &r,
                ImageFilter {
                    image: image.clone(),
                    filter
                }
            )
            .await
            .unwrap()
        );
        let c = sim.counters();
        let weights = match filter {
            FilterOp::GaussianBlur { sigma } => weight_bytes(sigma),
            _ => 0,
        };
        assert_eq!(
            c.h2d_bytes,
            (4 * h * w) as u64 + weights,
            "{filter:?} {c:?}"
        );
        assert_eq!(c.d2h_bytes, (4 * h * w) as u64, "{filter:?} {c:?}");
    }
}

/// The simulator's reason to exist: remove a synchronisation and the result is wrong.
/// With the background thread paused, queued work runs only when the program
/// synchronises; the `DropSync` fault makes the download's synchronisation return at
/// once, as if the code had none.
#[tokio::test]
async fn a_missing_synchronisation_gives_a_wrong_result() {
    let (_g, sim, r) = setup();
    let n = 4099;
    // With every synchronisation in place the job passes, background thread or not.
    sim.set_background(false);
    assert!(run(&r, add(n, 7)).await.unwrap());
    // inputs() and upload() synchronise first; the third synchronisation is the
    // download's. Without it the host reads the staging buffer before the copy ran.
    sim.inject(Fault::DropSync, 2, 1);
    let outcome = run(&r, add(n, 9)).await;
    sim.set_background(true);
    assert_ne!(
        outcome.ok(),
        Some(true),
        "a download read before its copy ran must not pass"
    );
    assert_eq!(sim.counters().dropped_syncs, 1);
    // The device keeps serving once the program synchronises again.
    assert!(run(&r, add(n, 11)).await.unwrap());
}

/// The same at the driver level: a pinned download read before the stream is
/// synchronised holds stale bytes, and the same read after it the right ones.
#[test]
fn a_pinned_download_read_early_is_stale() {
    use cust::memory::{AsyncCopyDestination, DeviceBuffer, LockedBuffer};
    use cust::stream::{Stream, StreamFlags};
    let (_g, sim, _r) = setup();
    let _ctx = cust::quick_init().unwrap();
    sim.set_background(false);
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None).unwrap();
    let dev = DeviceBuffer::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let mut host = LockedBuffer::new(&0.0f32, 4).unwrap();
    // SAFETY: `host` is pinned and outlives the synchronisation below.
    #[allow(unsafe_code)]
    unsafe {
        dev.async_copy_to(&mut host, &stream).unwrap()
    };
    assert_eq!(host.as_slice(), &[0.0; 4], "the copy has not run yet");
    stream.synchronize().unwrap();
    assert_eq!(host.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    sim.set_background(true);
}

#[test]
fn freeing_pinned_memory_with_a_copy_queued_is_caught() {
    use cust::memory::{AsyncCopyDestination, DeviceBuffer, LockedBuffer};
    use cust::stream::{Stream, StreamFlags};
    let (_g, sim, _r) = setup();
    let _ctx = cust::quick_init().unwrap();
    sim.set_background(false);
    sim.reset_counters();
    let stream = Stream::new(StreamFlags::NON_BLOCKING, None).unwrap();
    let mut dev = DeviceBuffer::from_slice(&[0.0f32; 1024]).unwrap();
    {
        let host = LockedBuffer::new(&5.0f32, 1024).unwrap();
        // SAFETY: the bug under test: `host` is freed before the stream synchronises.
        #[allow(unsafe_code)]
        unsafe {
            dev.async_copy_from(&host, &stream).unwrap()
        };
    }
    stream.synchronize().unwrap();
    sim.set_background(true);
    let c = sim.counters();
    assert_eq!(c.violations.len(), 1, "{:?}", c.violations);
    assert!(
        c.violations[0].contains("cuMemFreeHost"),
        "{:?}",
        c.violations
    );
}

#[tokio::test]
async fn out_of_memory_fails_one_job_as_temporary_and_the_next_runs() {
    let (_g, sim, r) = setup();
    sim.inject(Fault::OutOfMemory, 0, 1);
    let err = run(&r, VectorAdd::synthetic(1000, 1)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Temporary, "{err}");
    assert!(err.message.contains("out of device memory"), "{err}");
    assert!(run(&r, VectorAdd::synthetic(1000, 2)).await.unwrap());
}

#[tokio::test]
async fn a_sticky_kernel_error_resets_the_device_and_it_keeps_serving() {
    let (_g, sim, r) = setup();
    for fault in [Fault::IllegalAddress, Fault::LaunchTimeout] {
        sim.inject(fault, 0, 1);
        let err = run(&r, VectorAdd::synthetic(1000, 1)).await.unwrap_err();
        assert_eq!(err.class, ErrorClass::Temporary, "{fault:?}: {err}");
        assert!(
            run(&r, VectorAdd::synthetic(1000, 2)).await.unwrap(),
            "{fault:?}"
        );
        assert!(
            run(&r, ImageFilter::synthetic(40, 50, FilterOp::Sobel, 3))
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn a_kernel_without_a_twin_fails_loudly() {
    let (_g, sim, _r) = setup();
    let _ctx = cust::quick_init().unwrap();
    sim.reset_counters();
    let ptx = ".version 9.0\n.target sm_75\n.address_size 64\n.visible .entry mystery(\n\t.param .u64 p0\n)\n{\n\tret;\n}\n";
    let module = cust::module::Module::from_ptx(ptx, &[]).unwrap();
    let f = module.get_function("mystery").unwrap();
    let stream = cust::stream::Stream::new(cust::stream::StreamFlags::NON_BLOCKING, None).unwrap();
    let p = 0u64;
    let args = [&p as *const u64 as *mut std::ffi::c_void];
    // SAFETY: one u64 parameter, as the PTX declares.
    #[allow(unsafe_code)]
    let r = unsafe { stream.launch(&f, 1, 1, 0, &args) };
    assert!(r.is_err());
    let c = sim.counters();
    assert!(
        c.violations
            .iter()
            .any(|v| v.contains("mystery") && v.contains("no CPU twin")),
        "{:?}",
        c.violations
    );
}

#[tokio::test]
async fn the_vector_add_output_is_right_under_random_scheduling() {
    let (_g, sim, r) = setup();
    sim.set_background(true);
    for seed in 0..20 {
        let n = 1000 + seed as usize * 37;
        let (a, b) = (values(n, seed), values(n, seed + 100));
        let env = JobEnvelope::new(VectorAdd {
            a: a.clone(),
            b: b.clone(),
        })
        .unwrap();
        let exec = r.executor("vector-add", DeviceClass::Gpu).unwrap();
        let out: VectorAddOutput = exec
            .execute(&env.payload, &env.blobs, &ctx())
            .await
            .unwrap()
            .decode()
            .unwrap();
        let (a, b, c) = (
            a.values().unwrap(),
            b.values().unwrap(),
            out.c.values().unwrap(),
        );
        assert!(
            a.iter()
                .zip(b.iter())
                .zip(c.iter())
                .all(|((x, y), z)| x + y == *z),
            "seed {seed}"
        );
    }
}

/// A tensor of `n` values in pooled, page-aligned memory (as the readers of .npy files,
/// images and Redis blobs make them).
fn pooled(n: usize, seed: u64) -> Tensor {
    pooled_in(vec![n], seed, -1.0, 1.0)
}

/// A tensor of `shape` with uniform values in `[lo, hi)`, in pooled memory.
fn pooled_in(shape: Vec<usize>, seed: u64, lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    let v = Tensor::synthetic(vec![n], seed, lo, hi).values().unwrap();
    let buf = gpujobs_core::BufferPool::global()
        .copy_of(v.as_slice())
        .unwrap();
    Tensor::from_values(shape, buf).unwrap()
}

/// Bytes of a Gaussian blur's weights, which every blur uploads from a host vector.
fn weight_bytes(sigma: f32) -> u64 {
    4 * gpujobs_core::kinds::filters::gaussian_kernel_f32(f64::from(sigma)).len() as u64
}

/// A vector add of two `n`-value tensors (adopted vectors) from seeds `seed`, `seed + 1`.
fn add(n: usize, seed: u64) -> VectorAdd {
    VectorAdd {
        a: values(n, seed),
        b: values(n, seed + 1),
    }
}

/// Runs a vector add of `a + b` and returns whether every value is exactly right.
async fn vector_add_right(
    r: &Registry,
    a: Tensor,
    b: Tensor,
) -> Result<bool, gpujobs_core::JobError> {
    let env = JobEnvelope::new(VectorAdd {
        a: a.clone(),
        b: b.clone(),
    })
    .unwrap();
    let exec = r.executor("vector-add", DeviceClass::Gpu).unwrap();
    let out: VectorAddOutput = exec
        .execute(&env.payload, &env.blobs, &ctx())
        .await?
        .decode()
        .unwrap();
    let (a, b, c) = (
        a.values().unwrap(),
        b.values().unwrap(),
        out.c.values().unwrap(),
    );
    Ok(c.len() == a.len()
        && a.iter()
            .zip(b.iter())
            .zip(c.iter())
            .all(|((x, y), z)| x + y == *z))
}

/// Releases the pool's idle memory (unregistering it), so the buffers a test takes
/// next are fresh and its registration counts do not depend on earlier tests.
fn fresh_pool() {
    let pool = gpujobs_core::BufferPool::global();
    pool.set_budget(0);
    pool.set_budget(gpujobs_core::buffer::default_budget());
}

/// Turns the pipeline on for one test and off again, even when the test fails.
struct Pipeline;
impl Pipeline {
    fn on() -> Pipeline {
        gpujobs_cuda::set_pipeline(true);
        Pipeline
    }
}
impl Drop for Pipeline {
    fn drop(&mut self) {
        gpujobs_cuda::set_pipeline(false);
    }
}

#[tokio::test]
async fn the_pipeline_copies_straight_between_registered_buffers_and_overlaps_chunks() {
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    let n = 3_000_017; // 12 MB per array: three chunks
    fresh_pool();
    let (a, b) = (pooled(n, 21), pooled(n, 22));
    sim.set_background(false);
    sim.reset_counters();
    let right = vector_add_right(&r, a, b).await;
    sim.set_background(true);
    assert!(right.unwrap());
    let c = sim.counters();
    assert_eq!(c.h2d_bytes, 8 * n as u64, "{c:?}");
    assert_eq!(c.d2h_bytes, 4 * n as u64, "{c:?}");
    assert_eq!(c.pageable_copies, 0, "{c:?}");
    assert_eq!(c.launches_of("vector_add"), 3, "{c:?}");
    assert_eq!(c.h2d_copies, 6, "two inputs, three chunks: {c:?}");
    // No staging: every copy's host side is one of the three registered buffers.
    assert_eq!(c.copies_per_host_buffer.len(), 3, "{c:?}");
    for buffer in c.copies_per_host_buffer.keys() {
        assert!(
            c.registrations_per_host_buffer.contains_key(buffer),
            "{buffer} is not registered: {c:?}"
        );
    }
    assert!(
        c.streams_used.iter().filter(|s| **s != 0).count() >= 2,
        "{c:?}"
    );
    assert!(
        c.kernel_copy_overlap > 0,
        "no kernel ran beside a queued copy: {c:?}"
    );
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[tokio::test]
async fn the_pipeline_registers_each_recycled_buffer_once_and_unregisters_before_release() {
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    let n = 1_234_567;
    fresh_pool();
    sim.reset_counters();
    for seed in 0..4 {
        // Inputs and output go back to the pool after each job and come out again.
        assert!(
            vector_add_right(&r, pooled(n, seed), pooled(n, seed + 50))
                .await
                .unwrap()
        );
    }
    let c = sim.counters();
    assert_eq!(
        c.host_registrations, 3,
        "two inputs and an output, registered once: {c:?}"
    );
    assert!(
        c.registrations_per_host_buffer.values().all(|k| *k == 1),
        "{c:?}"
    );
    // Memory the pool gives back to the OS is unregistered first.
    fresh_pool();
    assert_eq!(
        sim.counters().host_unregistrations,
        3,
        "{:?}",
        sim.counters()
    );
}

#[tokio::test]
async fn the_pipeline_is_right_under_random_scheduling_and_wrong_without_its_synchronisation() {
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    for seed in 0..6 {
        let n = 1_100_000 + seed as usize * 777_777;
        assert!(
            vector_add_right(&r, pooled(n, seed), pooled(n, seed + 9))
                .await
                .unwrap(),
            "seed {seed}"
        );
    }
    // pipeline_inputs synchronises once; the second synchronisation ends the pipeline.
    sim.set_background(false);
    sim.inject(Fault::DropSync, 1, 1);
    let outcome = vector_add_right(&r, pooled(2_000_000, 1), pooled(2_000_000, 2)).await;
    sim.set_background(true);
    assert_ne!(
        outcome.ok(),
        Some(true),
        "a pipeline without its final synchronisation must not pass"
    );
}

#[tokio::test]
async fn adopted_vectors_take_the_verified_path_under_the_pipeline() {
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    // An empty pool: the output buffer is a fresh one, registered by this job.
    fresh_pool();
    sim.reset_counters();
    // `values()` builds a Tensor from a Vec: not registrable in place, so the inputs go
    // through the staging buffer; only the pooled output is registered.
    assert!(
        vector_add_right(&r, values(5000, 1), values(5000, 2))
            .await
            .unwrap()
    );
    let c = sim.counters();
    assert_eq!(c.host_registrations, 1, "{c:?}");
    let staged = c
        .copies_per_host_buffer
        .keys()
        .filter(|b| !c.registrations_per_host_buffer.contains_key(*b))
        .count();
    assert_eq!(
        staged, 1,
        "the inputs came through one staging buffer: {c:?}"
    );
}

/// The PTX of examples/custom_gpu_kind.rs: `saxpy(float a, float* x, float* y, u64 n)`.
const SAXPY_PTX: &str = include_str!("../../examples/custom_gpu_kind/saxpy.ptx");

fn saxpy_twin(l: &gpujobs_cuda::sim::TwinLaunch) -> Result<(), gpujobs_cuda::sim::SimError> {
    let (a, x, y, n) = (l.f32(0)?, l.u64(1)?, l.u64(2)?, l.u64(3)? as usize);
    let xs = l.read_f32(x, n)?;
    let ys: Vec<f32> = l
        .read_f32(y, n)?
        .iter()
        .zip(&xs)
        .map(|(y, x)| a.mul_add(*x, *y))
        .collect();
    l.write_f32(y, &ys)
}

#[tokio::test]
async fn custom_kernels_are_launched_with_checked_arguments_and_timed() {
    use gpujobs_cuda::custom::{Arg, KernelModule};
    let (_g, sim, _r) = setup();
    sim.register_twin("saxpy", saxpy_twin).unwrap();
    let exec = gpujobs_cuda::devices().unwrap().remove(0);
    let module = KernelModule::new("sim-test::saxpy", SAXPY_PTX).unwrap();
    assert_eq!(module.kernels()[0].1, vec![".f32", ".u64", ".u64", ".u64"]);
    let m = module.clone();
    let (out, times) = exec
        .run_custom(move |dev| {
            dev.admit(8000)?;
            let x = dev.upload(&[1.0, 2.0, 3.0])?;
            let y = dev.upload(&[10.0, 20.0, 30.0])?;
            dev.launch(
                &m,
                "saxpy",
                (1, 1, 1),
                (32, 1, 1),
                0,
                &[Arg::F32(2.0), Arg::Array(&x), Arg::Array(&y), Arg::U64(3)],
            )?;
            dev.download(&y, 3)
        })
        .await
        .unwrap();
    assert_eq!(out.as_slice(), &[12.0, 24.0, 36.0]);
    assert!(times.compute > std::time::Duration::ZERO || times.h2d > std::time::Duration::ZERO);
    // A wrong argument type or count is refused before anything launches.
    for (args, needle) in [
        (
            vec![Arg::U64(2), Arg::U64(0), Arg::U64(0), Arg::U64(3)],
            "parameter 0 is .f32",
        ),
        (vec![Arg::F32(2.0)], "takes 4 parameters"),
    ] {
        let m = module.clone();
        let err = exec
            .run_custom(move |dev| {
                let y = dev.alloc(3)?;
                let args: Vec<Arg<'_>> = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| if i == 1 { Arg::Array(&y) } else { *a })
                    .collect();
                dev.launch(&m, "saxpy", (1, 1, 1), (32, 1, 1), 0, &args)
            })
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Permanent, "{err}");
        assert!(err.message.contains(needle), "{err}");
    }
    let err = exec
        .run_custom(move |dev| dev.launch(&module, "nope", (1, 1, 1), (1, 1, 1), 0, &[]))
        .await
        .unwrap_err();
    assert!(err.message.contains("has no kernel `nope`"), "{err}");
}

/// Runs one image filter on `image` and returns its output.
async fn filter(r: &Registry, image: Tensor, filter: FilterOp) -> Tensor {
    let env = JobEnvelope::new(ImageFilter { image, filter }).unwrap();
    let exec = r.executor("image-filter", DeviceClass::Gpu).unwrap();
    let out: gpujobs_core::kinds::ImageFilterOutput = exec
        .execute(&env.payload, &env.blobs, &ctx())
        .await
        .unwrap()
        .decode()
        .unwrap();
    out.image
}

#[tokio::test]
async fn a_filter_chain_under_the_pipeline_uploads_the_image_once_and_stages_nothing() {
    let (_g, sim, r) = setup();
    let (h, w) = (301, 257);
    let n = (h * w) as u64;
    let image = pooled_in(vec![h, w], 31, 0.0, 1.0);
    // The same chain on the verified path, for the expected values.
    let mut want = image.clone();
    for f in [
        FilterOp::GaussianBlur { sigma: 2.0 },
        FilterOp::Sobel,
        FilterOp::GaussianBlur { sigma: 1.0 },
    ] {
        want = filter(&r, want, f).await;
    }
    let _p = Pipeline::on();
    sim.reset_counters();
    let mut got = image.clone();
    for f in [
        FilterOp::GaussianBlur { sigma: 2.0 },
        FilterOp::Sobel,
        FilterOp::GaussianBlur { sigma: 1.0 },
    ] {
        got = filter(&r, got, f).await;
    }
    let c = sim.counters();
    assert_eq!(
        got.values().unwrap().as_slice(),
        want.values().unwrap().as_slice()
    );
    // The image crosses PCIe once; each later step reads the previous output from
    // device memory (the weights are small host vectors, staged).
    assert_eq!(
        c.h2d_bytes,
        4 * n + weight_bytes(2.0) + weight_bytes(1.0),
        "{c:?}"
    );
    assert_eq!(c.d2d_bytes, 2 * 4 * n, "{c:?}");
    assert_eq!(
        c.d2h_bytes,
        3 * 4 * n,
        "every step's output is still a result: {c:?}"
    );
    assert_eq!(c.pageable_copies, 0, "{c:?}");
    assert!(c.violations.is_empty(), "{:?}", c.violations);
}

#[tokio::test]
async fn kept_outputs_give_way_before_a_job_is_refused_device_memory() {
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    let total = gpujobs_cuda::devices()
        .unwrap()
        .remove(0)
        .memory_info()
        .await
        .unwrap()
        .1;
    // Keep 15 outputs of a 64th of device memory each (the kept outputs may hold a
    // quarter), then ask for a job that fits only once some of them are evicted.
    let each = (total / 64 / 4) as usize;
    let mut kept = Vec::new();
    for seed in 0..15 {
        let env = JobEnvelope::new(VectorAdd::synthetic(each, seed)).unwrap();
        let exec = r.executor("vector-add", DeviceClass::Gpu).unwrap();
        let out: VectorAddOutput = exec
            .execute(&env.payload, &env.blobs, &ctx())
            .await
            .unwrap()
            .decode()
            .unwrap();
        kept.push(out.c);
    }
    let before = sim.counters().device_bytes_in_use;
    assert!(
        before >= 15 * 4 * each as u64,
        "outputs are kept: {before} bytes in use"
    );
    // A vector add needs 12 bytes per element: 82% of the device, more than is free
    // beside the kept outputs (76%), less than admission's 95%.
    let n = (total / 100 * 82 / 12) as usize;
    assert!(
        12 * n as u64 > total - before,
        "the job must not fit beside the kept outputs"
    );
    assert!(run(&r, VectorAdd::synthetic(n, 1)).await.unwrap());
    let after = sim.counters().device_bytes_in_use;
    assert!(
        after < before,
        "kept outputs were evicted: {before} bytes in use before, {after} after"
    );
    drop(kept);
}

/// The same chain as a graph through the embedded queue, scheduler and a CUDA worker:
/// the worker hands each step its parent's output, and the device still has it.
#[tokio::test]
async fn a_filter_graph_on_one_gpu_worker_uploads_its_image_once() {
    use gpujobs_core::{DevicePref, EmbeddedCluster, Graph, WorkerConfig};
    let (_g, sim, r) = setup();
    let _p = Pipeline::on();
    let (h, w) = (211, 333);
    let n = (h * w) as u64;
    let image = pooled_in(vec![h, w], 41, 0.0, 1.0);
    let gpu = |job: ImageFilter| JobEnvelope::new(job).unwrap().with_device(DevicePref::Gpu);
    let mut g = Graph::new();
    let blur = g
        .add_envelope(
            "blur",
            gpu(ImageFilter {
                image,
                filter: FilterOp::GaussianBlur { sigma: 2.0 },
            }),
        )
        .unwrap();
    let edges = g
        .add_envelope(
            "edges",
            gpu(ImageFilter {
                image: Tensor::output_of(&blur, "image", vec![h, w]),
                filter: FilterOp::Sobel,
            }),
        )
        .unwrap();
    let smooth = g
        .add_envelope(
            "smooth",
            gpu(ImageFilter {
                image: Tensor::output_of(&edges, "image", vec![h, w]),
                filter: FilterOp::GaussianBlur { sigma: 1.0 },
            }),
        )
        .unwrap();
    let device = gpujobs_cuda::devices().unwrap().remove(0).device_info();
    let cluster = EmbeddedCluster::builder()
        .worker(WorkerConfig::new(device), std::sync::Arc::new(r))
        .start();
    sim.reset_counters();
    cluster.client().submit_graph(g).await.unwrap();
    let done = cluster
        .client()
        .output::<ImageFilter>(&smooth, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let c = sim.counters();
    cluster.shutdown().await;
    assert_eq!(done.output.image.shape(), &[h, w]);
    assert_eq!(
        c.h2d_bytes,
        4 * n + weight_bytes(2.0) + weight_bytes(1.0),
        "{c:?}"
    );
    assert_eq!(c.d2d_bytes, 2 * 4 * n, "{c:?}");
}

#[tokio::test]
async fn a_model_trained_under_the_pipeline_stays_on_the_device_for_predict() {
    use gpujobs_core::kinds::{MlpModel, MlpPredict, MlpPredictOutput, MlpTrain, MlpTrainOutput};
    let (_g, sim, _) = setup();
    // One executor (one device state) for both jobs, as on one worker.
    let exec = gpujobs_cuda::devices().unwrap().remove(0);
    let mut r = Registry::with_builtin_kinds();
    gpujobs_cuda::register(&mut r, &exec);
    r.register::<MlpPredict, _>(&exec.device_info(), exec.clone());
    let _p = Pipeline::on();
    let mut train = MlpTrain::synthetic(600, 12, 4, 40, 3);
    train.epochs = 2;
    let env = JobEnvelope::new(train).unwrap();
    let trained: MlpTrainOutput = r
        .executor("mlp-train", DeviceClass::Gpu)
        .unwrap()
        .execute(&env.payload, &env.blobs, &ctx())
        .await
        .unwrap()
        .decode()
        .unwrap();
    let params: u64 = trained
        .weights
        .iter()
        .chain(&trained.biases)
        .map(|t| 4 * t.numel().unwrap() as u64)
        .sum();
    let rows = 500;
    let x = pooled_in(vec![rows, 12], 4, -1.0, 1.0);
    let job = MlpPredict {
        model: MlpModel {
            weights: trained.weights,
            biases: trained.biases,
        },
        x,
    };
    let env = JobEnvelope::new(job.clone()).unwrap();
    sim.reset_counters();
    let result = r
        .executor("mlp-predict", DeviceClass::Gpu)
        .unwrap()
        .execute(&env.payload, &env.blobs, &ctx())
        .await
        .unwrap();
    let c = sim.counters();
    assert_eq!(
        c.d2d_bytes, params,
        "the parameters are copied on the device: {c:?}"
    );
    assert_eq!(
        c.h2d_bytes,
        4 * (rows * 12) as u64,
        "only the inputs cross PCIe: {c:?}"
    );
    let check = r
        .check("mlp-predict", &env.payload, &env.blobs, &result)
        .unwrap()
        .unwrap();
    assert!(check.passed(), "{check}");
    let _: MlpPredictOutput = result.decode().unwrap();
}
