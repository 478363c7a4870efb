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
/// The backend's answers to it (NAT mode) are installed.
pub(super) const OFFLOADED_BACK: u8 = 4;

/// Touches taken per call at most.
const TOUCHES_PER_CALL: usize = 256;

fn flow_key(k: &ConnKey) -> FlowKey {
    FlowKey::new(k.proto, k.client, k.client_port, k.vip, k.vip_port)
}

impl ConnTable {
    /// Hands the table the XDP engine's flows.
    pub fn set_offload(&mut self, o: Offloader) {
        self.offload = Some(o);
        // NAT mode's answers: their key per connection (the backend's
        // end and ours), kept beside the table, never read on a hit.
        self.backs = vec![FlowKey::default(); self.buckets.len() * WAYS];
    }

    /// The offload, when there is one (its counters for reports).
    pub fn offload(&self) -> Option<&Offloader> {
        self.offload.as_ref()
    }

    /// A packet of connection `id` just left by `port` as `value` says
    /// (direct server return: the backend's Ethernet address; NAT mode:
    /// both ends translated; IP-in-IP: in a tunnel to the backend):
    /// installs its flow in XDP if it is open and not there yet.
    #[inline(always)]
    pub fn offer(&mut self, id: u32, value: impl FnOnce() -> FlowValue, port: u16) {
        if self.offload.is_some() {
            self.offer_slow(id, value(), port);
        }
    }

    #[inline(never)]
    fn offer_slow(&mut self, id: u32, value: FlowValue, port: u16) {
        let c = *self.get(id);
        if c.flags & OFFLOADED != 0 || c.opening() {
            return;
        }
        let Some(o) = self.offload.as_mut() else { return };
        if o.install(flow_key(&c.key()), value, port) {
            self.get_mut(id).flags |= OFFLOADED;
        }
    }

    /// NAT mode: an answer of connection `id` from its backend at
    /// `backend` to our `ours` (address, port) was just translated back
    /// and left by `port` from `smac` to `dmac` (the client or its
    /// gateway): installs that direction in XDP if not there yet.
    #[inline(always)]
    pub fn offer_back(&mut self, id: u32, backend: (u32, u16), ours: (u32, u16), macs: ([u8; 6], [u8; 6]), port: u16) {
        let c = *self.get(id);
        if c.flags & OFFLOADED_BACK != 0 || c.opening() {
            return;
        }
        let Some(o) = self.offload.as_mut() else { return };
        let k = c.key();
        let key = FlowKey::new(k.proto, backend.0, backend.1, ours.0, ours.1);
        let value = FlowValue::both((k.vip, k.vip_port), (k.client, k.client_port), macs.0, macs.1, 0);
        if o.install(key, value, port) {
            self.get_mut(id).flags |= OFFLOADED_BACK;
            self.backs[id as usize] = key;
        }
    }

    /// Takes connection `id`'s flows out of XDP, if they are there.
    #[inline(always)]
    pub(super) fn withdraw(&mut self, id: u32) {
        let c = self.get_mut(id);
        let gone = c.flags & (OFFLOADED | OFFLOADED_BACK);
        if gone == 0 {
            return;
        }
        c.flags &= !(OFFLOADED | OFFLOADED_BACK);
        let key = flow_key(&c.key());
        let back = self.backs.get(id as usize).copied();
        if let Some(o) = self.offload.as_mut() {
            if gone & OFFLOADED != 0 {
                o.remove(key);
            }
            if let (true, Some(b)) = (gone & OFFLOADED_BACK != 0, back) {
                o.remove(b);
            }
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
        t.offer(id, || FlowValue::forward([2, 0, 0, 0, 0xb, 2], [2; 6], 0), 1);
        task.step();
        assert!(engine.flows().is_empty(), "an opening connection stays in the workers");
        t.set_opening(id, false);
        t.offer(id, || FlowValue::forward([2, 0, 0, 0, 0xb, 2], [2; 6], 0), 1);
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
        t.offer(id, || FlowValue::forward([2, 0, 0, 0, 0xb, 3], [2; 6], 0), 1);
        t.withdraw_all();
        task.step();
        assert!(engine.flows().is_empty(), "a change of backends takes every flow up");
        t.offer(id, || FlowValue::forward([2, 0, 0, 0, 0xb, 3], [2; 6], 0), 1);
        task.step();
        assert_eq!(engine.flows().len(), 1);
        // Expired: gone from XDP with it.
        assert_eq!(t.expire(1000, 64, |_| {}), 1);
        task.step();
        assert!(engine.flows().is_empty());
    }
}
