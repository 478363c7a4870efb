//! An engine without a kernel, for the tests of stages that install
//! entries: the program's tables in memory, activity set by hand.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

use super::{Engine, EngineStats, Entry, Filter, FlowKey, FlowValue, Key, L2Key, L2Value, PortProgram, Vtep};
use crate::config::XdpMode;

#[derive(Default)]
struct Tables {
    flows: HashMap<FlowKey, FlowValue>,
    l2: HashMap<L2Key, L2Value>,
    filter: Option<Filter>,
    vtep: Option<(Vtep, Vec<u32>)>,
}

/// The program's tables in memory, as the XDP program would hold them,
/// with activity set by hand ([`MemoryEngine::touch`]).
#[derive(Default)]
pub struct MemoryEngine {
    tables: Mutex<Tables>,
}

impl MemoryEngine {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The filter set last.
    pub fn filter(&self) -> Option<Filter> {
        self.lock().filter.clone()
    }

    /// The flows installed now.
    pub fn flows(&self) -> HashMap<FlowKey, FlowValue> {
        self.lock().flows.clone()
    }

    /// A VTEP's MACs installed now.
    pub fn l2(&self) -> HashMap<L2Key, L2Value> {
        self.lock().l2.clone()
    }

    /// The VTEP set, with the ports' interfaces it was mapped with.
    pub fn vtep(&self) -> Option<(Vtep, Vec<u32>)> {
        self.lock().vtep.clone()
    }

    /// As if the program forwarded a packet of `key` at `at` (ns).
    pub fn touch(&self, key: &Key, at: u64) {
        let mut t = self.lock();
        match key {
            Key::Flow(k) => {
                if let Some(v) = t.flows.get_mut(k) {
                    v.last_seen = at;
                }
            }
            Key::L2(k) => {
                if let Some(v) = t.l2.get_mut(k) {
                    v.last_seen = at;
                }
            }
        }
    }
}

impl Engine for MemoryEngine {
    fn attach(&self, _: u32, _: XdpMode, _: PortProgram, _: u32) -> Result<(bool, String), String> {
        Ok((true, String::new()))
    }
    fn add_socket(&self, _: u32, _: u32, _: RawFd) -> Result<(), String> {
        Ok(())
    }
    fn insert(&self, e: &Entry) -> Result<(), String> {
        let mut t = self.lock();
        match *e {
            Entry::Flow(k, v) => t.flows.insert(k, v).map(|_| ()),
            Entry::L2(k, v) => t.l2.insert(k, v).map(|_| ()),
        };
        Ok(())
    }
    fn remove(&self, k: &Key) -> Result<bool, String> {
        let mut t = self.lock();
        Ok(match k {
            Key::Flow(k) => t.flows.remove(k).is_some(),
            Key::L2(k) => t.l2.remove(k).is_some(),
        })
    }
    fn last_seen(&self, k: &Key) -> Result<Option<u64>, String> {
        let t = self.lock();
        Ok(match k {
            Key::Flow(k) => t.flows.get(k).map(|v| v.last_seen),
            Key::L2(k) => t.l2.get(k).map(|v| v.last_seen),
        })
    }
    fn set_filter(&self, f: &Filter) -> Result<(), String> {
        self.lock().filter = Some(f.clone());
        Ok(())
    }
    fn set_vtep(&self, v: &Vtep, ifindex: &[u32]) -> Result<(), String> {
        self.lock().vtep = Some((v.clone(), ifindex.to_vec()));
        Ok(())
    }
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}
