//! Injectable faults, so the worker's recovery paths run in tests: an allocation that
//! runs out of memory, a kernel that hits an illegal address or times out (sticky: the
//! context is unusable until reset), a synchronisation that returns without waiting
//! (what code that forgot to synchronise does).
//!
//! Armed by `gpujobs_sim_fault(kind, after, times)` or, for a whole process, by
//! `GPUJOBS_CUDA_SIM_FAULTS=kind[@n],...` (fire on the n-th matching call, once).

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `cuMemAlloc` fails with out-of-memory.
    Oom,
    /// The next kernel to run fails with an illegal address.
    IllegalAddress,
    /// The next kernel to run times out.
    LaunchTimeout,
    /// A stream/event/context synchronisation returns at once, running nothing.
    DropSync,
}

impl Fault {
    /// By name: `oom`, `illegal_address`, `launch_timeout`, `drop_sync`.
    pub fn parse(s: &str) -> Option<Fault> {
        Some(match s {
            "oom" => Fault::Oom,
            "illegal_address" => Fault::IllegalAddress,
            "launch_timeout" => Fault::LaunchTimeout,
            "drop_sync" => Fault::DropSync,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    skip: u64,
    times: u64,
}

/// The armed faults.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Vec<Armed>,
}

impl Faults {
    /// From `GPUJOBS_CUDA_SIM_FAULTS`; unknown names are reported on stderr and ignored.
    pub fn from_env() -> Faults {
        let mut f = Faults::default();
        let Ok(spec) = std::env::var("GPUJOBS_CUDA_SIM_FAULTS") else {
            return f;
        };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, n) = item.split_once('@').unwrap_or((item, "1"));
            match (Fault::parse(name), n.parse::<u64>()) {
                (Some(fault), Ok(n)) if n >= 1 => f.arm(fault, n - 1, 1),
                _ => eprintln!("gpujobs-cuda-sim: ignoring fault `{item}` (kind[@n], n >= 1)"),
            }
        }
        f
    }

    /// Fires `fault` `times` times after letting `after` matching calls pass.
    pub fn arm(&mut self, fault: Fault, after: u64, times: u64) {
        self.armed.push(Armed {
            fault,
            skip: after,
            times,
        });
    }

    /// Whether this call of `fault`'s kind fails.
    pub fn fires(&mut self, fault: Fault) -> bool {
        let mut fired = false;
        for a in self
            .armed
            .iter_mut()
            .filter(|a| a.fault == fault && a.times > 0)
        {
            if a.skip > 0 {
                a.skip -= 1;
            } else if !fired {
                a.times -= 1;
                fired = true;
            }
        }
        self.armed.retain(|a| a.times > 0);
        fired
    }
}
