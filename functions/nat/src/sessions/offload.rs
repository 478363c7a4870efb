//! A session's established flows in the XDP engine
//! ([`nfv_core::offload`]): each direction installed once software has
//! translated one of its packets on the fast path (UDP at once, TCP once
//! both SYNs were seen, RFC 7857 section 2.1 established), with the
//! Ethernet addresses and egress the workers used; removed before the
//! session changes state (FIN, RST: those packets always reach the
//! workers), when its host moves, and when it ends. Activity in XDP comes
//! back as touches that restart the idle timer as a packet would.

use nfv_core::offload::{FlowKey, FlowValue, Offloader};

use super::{Class, NatTable, Tuple, proto};

/// The inside-to-outside direction is installed.
pub(super) const OUTBOUND: u8 = 1;
/// The outside-to-inside direction is installed.
pub(super) const INBOUND: u8 = 2;
/// Both.
pub(super) const BOTH: u8 = OUTBOUND | INBOUND;

/// Touches taken per call at most (a tick's share of the work).
const TOUCHES_PER_CALL: usize = 256;

impl NatTable {
    /// Hands the table the XDP engine's flows.
    pub fn set_offload(&mut self, o: Offloader) {
        self.offload = Some(o);
    }

    /// The offload's counters, when there is one.
    pub fn offload(&self) -> Option<&Offloader> {
        self.offload.as_ref()
    }

    /// The packet of session `id` just translated (`outbound` or in) left
    /// by `port` from `smac` to `dmac`: installs that direction in XDP if
    /// the session is established and it is not there yet.
    #[inline(always)]
    pub fn offer(&mut self, id: u32, outbound: bool, dmac: [u8; 6], smac: [u8; 6], port: u16) {
        if self.offload.is_some() {
            self.offer_slow(id, outbound, dmac, smac, port);
        }
    }

    #[inline(never)]
    fn offer_slow(&mut self, id: u32, outbound: bool, dmac: [u8; 6], smac: [u8; 6], port: u16) {
        let s = &self.sessions[id as usize];
        let bit = if outbound { OUTBOUND } else { INBOUND };
        let established = match s.proto {
            proto::UDP => true,
            proto::TCP => s.class == Class::TcpEstablished,
            _ => false,
        };
        if s.offloaded & bit != 0 || !established {
            return;
        }
        let (key, value) = if outbound {
            (
                FlowKey::new(s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port),
                FlowValue::new(true, s.out_addr, s.out_port, dmac, smac, 0),
            )
        } else {
            (
                FlowKey::new(s.proto, s.rem_addr, s.rem_port, s.out_addr, s.out_port),
                FlowValue::new(false, s.in_addr, s.in_port, dmac, smac, 0),
            )
        };
        let Some(o) = self.offload.as_mut() else { return };
        if o.install(key, value, port) {
            self.sessions[id as usize].offloaded |= bit;
        }
    }

    /// Takes directions `bits` of session `id` out of XDP.
    pub(super) fn withdraw(&mut self, id: u32, bits: u8) {
        let s = &mut self.sessions[id as usize];
        let gone = s.offloaded & bits;
        s.offloaded &= !bits;
        let s = *s;
        let Some(o) = self.offload.as_mut() else { return };
        if gone & OUTBOUND != 0 {
            o.remove(FlowKey::new(s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port));
        }
        if gone & INBOUND != 0 {
            o.remove(FlowKey::new(s.proto, s.rem_addr, s.rem_port, s.out_addr, s.out_port));
        }
    }

    /// Restarts the idle timers of the sessions XDP forwarded packets of
    /// since the engine last said (at `now`, seconds).
    pub fn take_touches(&mut self, now: u32) {
        for _ in 0..TOUCHES_PER_CALL {
            let Some(touched) = self.offload.as_mut().and_then(Offloader::touched) else { return };
            let nfv_core::offload::Key::Flow(k) = touched else { continue };
            let (src, dst) = (u32::from_be_bytes(k.src), u32::from_be_bytes(k.dst));
            let (sp, dp) = (u16::from_be_bytes(k.sport), u16::from_be_bytes(k.dport));
            let out = Tuple { proto: k.proto, addr: src, port: sp, rem_addr: dst, rem_port: dp };
            let back = Tuple { proto: k.proto, addr: dst, port: dp, rem_addr: src, rem_port: sp };
            if let Some(id) = self.find_inside(&out) {
                self.refresh(id, now, 0, true);
            } else if let Some(id) = self.find_outside(&back) {
                self.refresh(id, now, 0, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use nfv_core::offload::{EngineTask, MemoryEngine};

    use super::super::tcp::{TCP_ACK, TCP_FIN, TCP_SYN};
    use super::super::{TableConfig, Timeouts, WhenFull};
    use super::*;

    const IN: u32 = 0x0a00_0001;
    const POOL: u32 = 0xc633_640a;
    const REM: u32 = 0xc633_6402;
    const GW: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
    const HOST: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn table() -> (NatTable, EngineTask, Arc<MemoryEngine>) {
        let mut t = NatTable::new(&TableConfig {
            max_sessions: 16,
            when_full: WhenFull::Refuse,
            timeouts: Timeouts::default(),
            pool: vec![POOL],
            port_range: (1024, 65535),
            worker: 0,
            workers: 1,
            forwards: vec![],
            seed: 1,
        });
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![11, 12]));
        t.set_offload(task.offloader());
        (t, task, engine)
    }

    fn out_key(proto: u8) -> FlowKey {
        FlowKey::new(proto, IN, 5000, REM, 53)
    }

    fn in_key(proto: u8) -> FlowKey {
        FlowKey::new(proto, REM, 53, POOL, 5000)
    }

    #[test]
    fn an_established_udp_flow_goes_below_both_ways_and_stays_while_xdp_sees_it() {
        let (mut t, mut task, engine) = table();
        let id = t
            .open_outbound(&Tuple { proto: proto::UDP, addr: IN, port: 5000, rem_addr: REM, rem_port: 53 }, 0)
            .unwrap();
        t.offer(id, true, GW, [2, 0, 0, 0, 0, 0xb], 1);
        t.offer(id, true, GW, [2, 0, 0, 0, 0, 0xb], 1);
        t.offer(id, false, HOST, [2, 0, 0, 0, 0, 0xa], 0);
        task.step();
        let flows = engine.flows();
        assert_eq!(flows.len(), 2, "each direction once");
        let o = flows[&out_key(proto::UDP)];
        assert_eq!((o.addr, o.port, o.side, o.dmac, o.ifindex), (POOL.to_be_bytes(), 5000u16.to_be_bytes(), 0, GW, 12));
        let i = flows[&in_key(proto::UDP)];
        assert_eq!((i.addr, i.port, i.side, i.dmac, i.ifindex), (IN.to_be_bytes(), 5000u16.to_be_bytes(), 1, HOST, 11));
        // XDP forwards for longer than the UDP timeout: each touch is a
        // packet to the idle timer, and the session stays.
        for (n, now) in (100..=400).step_by(100).enumerate() {
            engine.touch(&nfv_core::offload::Key::Flow(out_key(proto::UDP)), n as u64 + 1);
            task.scan_now();
            task.step();
            t.take_touches(now);
            assert_eq!(t.expire(now, 64), 0, "at {now} s");
        }
        // Then silence: it expires, and its flows leave XDP with it.
        assert_eq!(t.expire(400 + 301, 64), 1);
        task.step();
        assert!(engine.flows().is_empty());
    }

    #[test]
    fn tcp_goes_below_only_established_and_comes_back_up_at_its_fin() {
        let (mut t, mut task, engine) = table();
        let tu = Tuple { proto: proto::TCP, addr: IN, port: 5000, rem_addr: REM, rem_port: 53 };
        let id = t.open_outbound(&tu, 0).unwrap();
        t.refresh(id, 0, TCP_SYN, true);
        t.offer(id, true, GW, [2; 6], 1);
        task.step();
        assert!(engine.flows().is_empty(), "a half-open connection stays in the workers");
        t.refresh(id, 0, TCP_SYN | TCP_ACK, false);
        t.offer(id, true, GW, [2; 6], 1);
        t.offer(id, false, HOST, [2; 6], 0);
        task.step();
        assert_eq!(engine.flows().len(), 2);
        // A host that moves takes its inbound flow up with it.
        t.set_host(id, [2, 0, 0, 0, 0, 7], 0);
        task.step();
        assert_eq!(engine.flows().keys().copied().collect::<Vec<_>>(), vec![out_key(proto::TCP)]);
        // FINs reach the workers (XDP never keeps one): one way changes
        // no timeout class; both ways close, and the rest of the flow is
        // the workers' again.
        t.refresh(id, 1, TCP_FIN | TCP_ACK, true);
        task.step();
        assert_eq!(engine.flows().len(), 1, "half-closed: still established");
        t.refresh(id, 1, TCP_FIN | TCP_ACK, false);
        task.step();
        assert!(engine.flows().is_empty());
        t.offer(id, true, GW, [2; 6], 1);
        task.step();
        assert!(engine.flows().is_empty(), "a closing connection is not installed again");
    }
}
