//! An engine without a kernel, for the tests of stages that install
//! entries: the program's tables in memory, activity set by hand.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

use super::{
    Engine, EngineStats, Entry, Filter, FlowKey, FlowValue, Key, L2Key, L2Value, PortProgram, UpfConf, UpfDownlink,
    UpfUplink, UsageCounts, Vtep,
};
use crate::config::XdpMode;

#[derive(Default)]
struct Tables {
    flows: HashMap<FlowKey, FlowValue>,
    l2: HashMap<L2Key, L2Value>,
    filter: Option<Filter>,
    vtep: Option<(Vtep, Vec<u32>)>,
    upf: Option<UpfConf>,
    uplink: HashMap<u32, UpfUplink>,
    downlink: HashMap<u32, UpfDownlink>,
    usage: HashMap<u32, UsageCounts>,
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

    /// A UPF's sessions installed now: uplinks by TEID, downlinks by UE.
    pub fn upf(&self) -> (Option<UpfConf>, HashMap<u32, UpfUplink>, HashMap<u32, UpfDownlink>) {
        let t = self.lock();
        (t.upf, t.uplink.clone(), t.downlink.clone())
    }

    /// As if the program counted a packet of `bytes` octets into URR
    /// slot `slot`.
    pub fn count(&self, slot: u32, downlink: bool, bytes: u64) {
        let mut t = self.lock();
        let c = t.usage.entry(slot).or_default();
        if downlink {
            c.dl_bytes += bytes;
            c.dl_packets += 1;
        } else {
            c.ul_bytes += bytes;
            c.ul_packets += 1;
        }
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
            Key::Teid(_) | Key::Ue(_) => {}
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
            Entry::Uplink(k, v) => t.uplink.insert(k, v).map(|_| ()),
            Entry::Downlink(k, v) => t.downlink.insert(k, v).map(|_| ()),
        };
        Ok(())
    }
    fn remove(&self, k: &Key) -> Result<bool, String> {
        let mut t = self.lock();
        Ok(match k {
            Key::Flow(k) => t.flows.remove(k).is_some(),
            Key::L2(k) => t.l2.remove(k).is_some(),
            Key::Teid(k) => t.uplink.remove(k).is_some(),
            Key::Ue(k) => t.downlink.remove(k).is_some(),
        })
    }
    fn last_seen(&self, k: &Key) -> Result<Option<u64>, String> {
        let t = self.lock();
        Ok(match k {
            Key::Flow(k) => t.flows.get(k).map(|v| v.last_seen),
            Key::L2(k) => t.l2.get(k).map(|v| v.last_seen),
            Key::Teid(k) => t.uplink.get(k).map(|_| 0),
            Key::Ue(k) => t.downlink.get(k).map(|_| 0),
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
    fn set_upf(&self, u: &UpfConf, _: &[u32]) -> Result<(), String> {
        self.lock().upf = Some(*u);
        Ok(())
    }
    fn usage(&self, slot: u32) -> Result<UsageCounts, String> {
        Ok(self.lock().usage.get(&slot).copied().unwrap_or_default())
    }
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}
