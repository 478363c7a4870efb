//! A connection's client flow in the XDP engine ([`nfv_core::offload`]),
//! as Katran forwards established flows in XDP: installed once software
//! forwarded one of its packets past the opening (a direct-server-return
//! VIP: only the Ethernet addresses change), with the backend's Ethernet
//! address and the port the worker used; removed before the connection
//! gets another backend, when it is replaced or expires, and all at once
//! when the backends or their addresses change (the next packet of each
//! goes through the workers again and installs it anew). SYNs, FINs and
//! RSTs always reach the workers. Activity in XDP comes back as touches
//! that keep the connection alive as a packet would.

use nfv_core::offload::{FlowKey, FlowValue, Offloader};

use super::{ConnKey, ConnTable, WAYS};

/// The connection's client flow is installed.
pub(super) const OFFLOADED: u8 = 2;

/// Touches taken per call at most.
const TOUCHES_PER_CALL: usize = 256;

fn flow_key(k: &ConnKey) -> FlowKey {
    FlowKey::new(k.proto, k.client, k.client_port, k.vip, k.vip_port)
}

impl ConnTable {
    /// Hands the table the XDP engine's flows.
    pub fn set_offload(&mut self, o: Offloader) {
        self.offload = Some(o);
    }

    /// The offload, when there is one (its counters for reports).
    pub fn offload(&self) -> Option<&Offloader> {
        self.offload.as_ref()
    }

    /// A packet of connection `id` just left by `port` from `smac` to
    /// the backend at `dmac`, unchanged but for those (direct server
    /// return): installs its flow in XDP if it is open and not there yet.
    #[inline(always)]
    pub fn offer(&mut self, id: u32, dmac: [u8; 6], smac: [u8; 6], port: u16) {
        if self.offload.is_some() {
            self.offer_slow(id, dmac, smac, port);
        }
    }

    #[inline(never)]
    fn offer_slow(&mut self, id: u32, dmac: [u8; 6], smac: [u8; 6], port: u16) {
        let c = *self.get(id);
        if c.flags & OFFLOADED != 0 || c.opening() {
            return;
        }
        let Some(o) = self.offload.as_mut() else { return };
        if o.install(flow_key(&c.key()), FlowValue::forward(dmac, smac, 0), port) {
            self.get_mut(id).flags |= OFFLOADED;
        }
    }

    /// Takes connection `id`'s flow out of XDP, if it is there.
    #[inline(always)]
    pub(super) fn withdraw(&mut self, id: u32) {
        let c = self.get_mut(id);
        if c.flags & OFFLOADED == 0 {
            return;
        }
        c.flags &= !OFFLOADED;
        let key = flow_key(&c.key());
        if let Some(o) = self.offload.as_mut() {
            o.remove(key);
        }
    }

    /// Takes every flow out of XDP (the backends or their addresses
    /// changed). A walk over the table: once per change, between batches.
    pub fn withdraw_all(&mut self) {
        if self.offload.is_none() {
            return;
        }
        for id in 0..(self.buckets.len() * WAYS) as u32 {
            self.withdraw(id);
        }
    }

    /// Keeps alive the connections XDP forwarded packets of since the
    /// engine last said (at `now`, seconds).
    pub fn take_touches(&mut self, now: u32) {
        for _ in 0..TOUCHES_PER_CALL {
            let Some(touched) = self.offload.as_mut().and_then(Offloader::touched) else { return };
            let nfv_core::offload::Key::Flow(k) = touched else { continue };
            let key = ConnKey {
                client: u32::from_be_bytes(k.src),
                vip: u32::from_be_bytes(k.dst),
                client_port: u16::from_be_bytes(k.sport),
                vip_port: u16::from_be_bytes(k.dport),
                proto: k.proto,
            };
            if let Some(id) = self.find(self.index_hash(key.hash()), &key, now) {
                self.touch(id, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nfv_core::offload::{EngineTask, MemoryEngine};

    use super::super::Timeouts;
    use super::*;

    fn key(port: u16) -> ConnKey {
        ConnKey { client: 0xcb00_7107, vip: 0xc000_020a, client_port: port, vip_port: 80, proto: 6 }
    }

    #[test]
    fn open_connections_go_below_and_come_back_up_when_their_backend_or_life_changes() {
        let mut t = ConnTable::new(64, Timeouts { tcp: 300, udp: 30 }, 1);
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![0, 21]));
        t.set_offload(task.offloader());
        let k = key(40000);
        let h = t.index_hash(k.hash());
        let (id, _) = t.insert(h, k, 1, 0, 0, true);
        t.offer(id, [2, 0, 0, 0, 0xb, 2], [2; 6], 1);
        task.step();
        assert!(engine.flows().is_empty(), "an opening connection stays in the workers");
        t.set_opening(id, false);
        t.offer(id, [2, 0, 0, 0, 0xb, 2], [2; 6], 1);
        task.step();
        let v = engine.flows()[&flow_key(&k)];
        assert_eq!((v.side, v.dmac, v.ifindex), (2, [2, 0, 0, 0, 0xb, 2], 21));
        // Forwarded in XDP past the timeout: touched, it lives.
        engine.touch(&nfv_core::offload::Key::Flow(flow_key(&k)), 5);
        task.scan_now();
        task.step();
        t.take_touches(299);
        assert!(t.find(h, &k, 400).is_some());
        // Another backend: out of XDP first.
        t.set_backend(id, 2);
        task.step();
        assert!(engine.flows().is_empty());
        t.offer(id, [2, 0, 0, 0, 0xb, 3], [2; 6], 1);
        t.withdraw_all();
        task.step();
        assert!(engine.flows().is_empty(), "a change of backends takes every flow up");
        t.offer(id, [2, 0, 0, 0, 0xb, 3], [2; 6], 1);
        task.step();
        assert_eq!(engine.flows().len(), 1);
        // Expired: gone from XDP with it.
        assert_eq!(t.expire(1000, 64, |_| {}), 1);
        task.step();
        assert!(engine.flows().is_empty());
    }
}
