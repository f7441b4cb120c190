//! The guard `cust`'s unchecked launches need: every kernel the Rust code launches is an
//! `.entry` of its module's PTX with the parameter count the launch passes (launch
//! sites are held to the spec's count at compile time). Runs without a GPU.

use gpujobs_cuda::kernels::{self, Module};
use gpujobs_cuda::ptx;

#[test]
fn every_launched_kernel_is_an_entry_with_its_arity() {
    for spec in kernels::all() {
        let entries = ptx::entries(spec.module.ptx());
        let found = entries.iter().find(|(name, _)| name == spec.name);
        let Some((_, params)) = found else {
            panic!(
                "kernel `{}` is not an .entry of {}.ptx (entries: {entries:?})",
                spec.name,
                spec.module.name()
            );
        };
        assert_eq!(
            *params, spec.params,
            "kernel `{}`: PTX has {params} params, the launch passes {}",
            spec.name, spec.params
        );
    }
}

#[test]
fn every_ptx_entry_is_known() {
    let known: Vec<&str> = kernels::all().iter().map(|s| s.name).collect();
    for module in Module::ALL {
        for (name, _) in ptx::entries(module.ptx()) {
            assert!(
                known.contains(&name.as_str()),
                "{}.ptx has an entry `{name}` the Rust side does not know",
                module.name()
            );
        }
    }
}

#[test]
fn ptx_targets_a_driver_the_lent_gpus_have() {
    for module in Module::ALL {
        let isa = ptx::isa_version(module.ptx()).expect("PTX has a .version");
        // Driver 580 (CUDA 13.0) JITs PTX ISA up to 9.0.
        assert!(
            isa <= (9, 0),
            "{}.ptx is PTX ISA {isa:?}, newer than CUDA 13.0 drivers accept",
            module.name()
        );
        assert!(
            module.ptx().contains(".target sm_75"),
            "{}.ptx should target sm_75 so Turing and newer can JIT it",
            module.name()
        );
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn without_the_feature_devices_say_so() {
    assert_eq!(
        gpujobs_cuda::devices().err(),
        Some(gpujobs_cuda::CudaError::NotCompiled)
    );
}
