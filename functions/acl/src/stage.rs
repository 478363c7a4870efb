//! The `acl` data path: a key per packet from the parsed headers, the whole
//! batch classified at once per address family, then each packet's first
//! matching rule applied and counted (hits and bytes per rule, per worker).
//!
//! Keys: addresses, protocol, ingress port; ports for TCP, UDP and SCTP;
//! ICMP and ICMPv6 type and code in the source and destination port fields
//! (as VPP's ACL plugin does); TCP flags. A non-first fragment has no L4
//! header: ports and flags are 0, so only rules without ports can match it.

use std::sync::Arc;

use nfv_core::packet::flags;
use nfv_core::published::{Published, Snapshot};
use nfv_core::{Batch, Stage, StageCtx};
use nfv_net::wire::{self, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, ethertype, ipv4, ipv6, proto};

use crate::classify::{Key, NO_MATCH};
use crate::config::{Acl, Reflect};
use crate::flows::{Endpoints, FlowTable, Timeouts};
use crate::hits::{HitBoard, HitsSlot, RuleHits};
use crate::rule::{Action, V4_DIMS, V6_DIMS, v4_key, v6_key};
use crate::update::{NEW_RULE, carry};

nfv_core::drop_reasons! {
    /// Why the ACL dropped a packet.
    pub enum AclDrop {
        DeniedByRule => "denied-by-rule",
        DefaultDeny => "default-deny",
        NonIpDenied => "non-ip-denied",
        MalformedIp => "malformed-ip",
    }
}

/// What decides a packet, per position in the batch.
const NON_IP: u32 = u32::MAX - 1;
const MALFORMED: u32 = u32::MAX - 2;
/// Passed by a reflect flow.
const FLOW: u32 = u32::MAX - 3;

/// One worker's ACL.
pub struct AclStage {
    /// The rule set in use, replaced between batches when a new one is
    /// published ([`crate::update`]).
    acl: Snapshot<Acl>,
    /// Rule sets taken since the start.
    updates: u64,
    /// Packets and bytes of rules that updates removed.
    retired: [u64; 2],
    /// Packets and bytes per rule: plain counters on the hot path.
    hits: Vec<[u64; 2]>,
    /// Packets and bytes that took the default action (a field of its
    /// own: no index to compute for the commonest outcome).
    default_hits: [u64; 2],
    /// Their copy the management plane reads (`nfv ctl acl list`),
    /// refreshed when the worker samples its tables, and where it is.
    shown: Arc<RuleHits>,
    slot: HitsSlot,
    keys4: Vec<Key<V4_DIMS>>,
    keys6: Vec<Key<V6_DIMS>>,
    found4: Vec<u32>,
    found6: Vec<u32>,
    /// Per packet: rule number, [`NO_MATCH`], [`NON_IP`] or [`MALFORMED`];
    /// before classification, the index into a family's keys.
    decision: Vec<u32>,
    family6: Vec<bool>,
    /// Reflect flow state (when a rule is `permit-reflect`), and each
    /// packet's endpoints and TCP flags for it.
    flows: Option<FlowTable>,
    endpoints: Vec<(Endpoints, u8)>,
    /// nfv's XDP filter, when the plan placed the rules there, and the
    /// rule-set version it was last given.
    offload: Option<(nfv_core::offload::Offloader, Option<u64>)>,
}

fn flow_table(r: Reflect) -> FlowTable {
    let t = nfv_core::cycles::ticks;
    let timeouts = Timeouts { tcp_established: t(r.tcp), tcp_transient: t(r.tcp_transient), other: t(r.other) };
    FlowTable::new(r.max_flows, timeouts, t(1.0))
}

impl AclStage {
    /// An instance following the published rules, its counters on
    /// `board`.
    pub fn new(rules: Arc<Published<Acl>>, board: &HitBoard) -> Self {
        let n = nfv_core::batch::MAX_BATCH;
        let acl = Snapshot::new(rules);
        let shown = Arc::new(RuleHits::new(acl.version, acl.rules.len()));
        Self {
            flows: acl.reflect.map(flow_table),
            updates: 0,
            retired: [0; 2],
            endpoints: Vec::with_capacity(n),
            slot: board.join(shown.clone()),
            shown,
            hits: vec![[0; 2]; acl.rules.len()],
            default_hits: [0; 2],
            acl,
            keys4: Vec::with_capacity(n),
            keys6: Vec::with_capacity(n),
            found4: vec![NO_MATCH; n],
            found6: vec![NO_MATCH; n],
            decision: Vec::with_capacity(n),
            family6: Vec::with_capacity(n),
            offload: None,
        }
    }

    /// Takes a newly published rule set, if there is one, and gives the
    /// XDP filter the rule set in use if it has not had it.
    #[inline(always)]
    fn take_update(&mut self) {
        if self.acl.stale() {
            let before = self.acl.arc().clone();
            self.acl.refresh();
            self.follow_update(&before);
        }
        if let Some((o, given)) = self.offload.as_mut()
            && *given != Some(self.acl.version)
            && o.set_filter(&self.acl.xdp)
        {
            *given = Some(self.acl.version);
        }
    }

    /// Moves to the rule set just taken (`before` was in use): counters
    /// follow the rules both sets have; the rest are retired. Runs once
    /// per update, between batches.
    #[cold]
    fn follow_update(&mut self, before: &Acl) {
        let acl = &*self.acl;
        let mut old = std::mem::take(&mut self.hits);
        let mut hits = vec![[0u64; 2]; acl.rules.len()];
        // `carry` maps from the version before this one, built off the
        // hot path; a worker that slept through several updates (two
        // `nfv ctl acl` commands between its batches) maps them itself.
        let skipped;
        let carried = if acl.version == before.version + 1 {
            &acl.carry
        } else {
            skipped = carry(&before.rules, &acl.rules);
            &skipped
        };
        for (new, &was) in carried.iter().enumerate().filter(|(_, c)| **c != NEW_RULE) {
            hits[new] = std::mem::take(&mut old[was as usize]);
        }
        for [p, b] in &old {
            self.retired[0] += p;
            self.retired[1] += b;
        }
        self.hits = hits;
        self.shown = Arc::new(RuleHits::new(acl.version, acl.rules.len()));
        self.shown.copy_from(&self.hits, self.default_hits);
        self.slot.store(self.shown.clone());
        if self.flows.is_none() {
            self.flows = acl.reflect.map(flow_table);
        }
        self.updates += 1;
    }
}

/// Source port, destination port and TCP flags of an L4 header at `l4`.
#[inline(always)]
fn l4_fields(d: &[u8], l4: usize, proto_: u8) -> (u16, u16, u8) {
    // Ports (or ICMP type and code) where the first four octets are there;
    // TCP flags where the header reaches them.
    let Some(h) = d.get(l4..).filter(|h| h.len() >= 4) else { return (0, 0, 0) };
    match proto_ {
        proto::TCP => {
            let (sport, dport) = wire::ports(h);
            (sport, dport, TcpPacket::new_unchecked(h).try_flags().unwrap_or(0))
        }
        proto::UDP | proto::SCTP => {
            let (sport, dport) = wire::ports(h);
            (sport, dport, 0)
        }
        proto::ICMP | proto::ICMPV6 => {
            let icmp = IcmpPacket::new_unchecked(h);
            (icmp.msg_type() as u16, icmp.msg_code() as u16, 0)
        }
        _ => (0, 0, 0),
    }
}

/// A packet's flow endpoints for reflect state. ICMP echo (RFC 792;
/// RFC 4443 section 4 for ICMPv6) is keyed by its identifier: a request
/// carries it as source port, a reply as destination port, so a reply
/// seen from the other side is the request's flow reversed.
#[inline(always)]
fn endpoints(d: &[u8], l3: usize, v6: bool, proto_: u8, l4: usize, sport: u16, dport: u16) -> Endpoints {
    let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
    if v6 {
        let ip = Ipv6Packet::new_unchecked(&d[l3..]);
        (src, dst) = (ip.src_addr(), ip.dst_addr());
    } else {
        let ip = Ipv4Packet::new_unchecked(&d[l3..]);
        src[12..].copy_from_slice(&ip.src_addr());
        dst[12..].copy_from_slice(&ip.dst_addr());
    }
    let echo_id = || d.get(l4..).and_then(|i| IcmpPacket::new_unchecked(i).try_echo_ident()).unwrap_or(0);
    let (sport, dport) = match (proto_, sport) {
        (proto::ICMP, 8) | (proto::ICMPV6, 128) if l4 != 0 => (echo_id(), 0),
        (proto::ICMP, 0) | (proto::ICMPV6, 129) if l4 != 0 => (0, echo_id()),
        _ => (sport, dport),
    };
    Endpoints { src, dst, sport, dport, proto: proto_ }
}

impl Stage for AclStage {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.take_update();
        self.keys4.clear();
        self.keys6.clear();
        self.decision.clear();
        self.family6.clear();
        self.endpoints.clear();
        let now = ctx.now_ticks;
        for p in batch.iter_mut() {
            let (d, m) = (p.data(), p.meta());
            if self.flows.is_some() {
                self.endpoints.push((Endpoints::default(), 0));
            }
            let v6 = m.ethertype == ethertype::IPV6;
            self.family6.push(v6);
            if m.ethertype != ethertype::IPV4 && !v6 {
                self.decision.push(NON_IP);
                continue;
            }
            let l3 = m.l3_off as usize;
            let need = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
            if m.flags & flags::L3_OK == 0 || d.len() < l3 + need {
                self.decision.push(MALFORMED);
                continue;
            }
            let (sport, dport, tcp_flags) = if m.l4_off != 0 && m.flags & flags::FRAGMENT == 0 {
                l4_fields(d, m.l4_off as usize, m.l4_proto)
            } else {
                (0, 0, 0)
            };
            if let Some(flows) = &mut self.flows {
                let e = endpoints(d, l3, v6, m.l4_proto, m.l4_off as usize, sport, dport);
                *self.endpoints.last_mut().expect("pushed above") = (e, tcp_flags);
                if flows.pass(&e, tcp_flags, now) {
                    self.decision.push(FLOW);
                    continue;
                }
            }
            if v6 {
                let ip = Ipv6Packet::new_unchecked(&d[l3..]);
                self.decision.push(self.keys6.len() as u32);
                self.keys6.push(v6_key(ip.src_addr(), ip.dst_addr(), sport, dport, m.l4_proto, tcp_flags, m.port));
            } else {
                let ip = Ipv4Packet::new_unchecked(&d[l3..]);
                self.decision.push(self.keys4.len() as u32);
                self.keys4.push(v4_key(ip.src(), ip.dst(), sport, dport, m.l4_proto, tcp_flags, m.port));
            }
        }
        let acl = &*self.acl;
        acl.v4.0.classify_batch(&self.keys4, &mut self.found4[..self.keys4.len()]);
        acl.v6.0.classify_batch(&self.keys6, &mut self.found6[..self.keys6.len()]);
        for (i, mut p) in batch.iter_mut().enumerate() {
            let at = self.decision[i];
            let action = match at {
                FLOW => continue,
                NON_IP => acl.non_ip,
                MALFORMED => {
                    p.drop_with(AclDrop::MalformedIp);
                    continue;
                }
                _ => {
                    let (found, ids) =
                        if self.family6[i] { (&self.found6, &acl.v6.1) } else { (&self.found4, &acl.v4.1) };
                    let box_no = found[at as usize];
                    let counter = if box_no == NO_MATCH {
                        &mut self.default_hits
                    } else {
                        &mut self.hits[ids[box_no as usize] as usize]
                    };
                    counter[0] += 1;
                    counter[1] += p.len() as u64;
                    if box_no == NO_MATCH {
                        if acl.default == Action::Deny {
                            p.drop_with(AclDrop::DefaultDeny);
                        }
                        continue;
                    }
                    acl.rules[ids[box_no as usize] as usize].action
                }
            };
            match action {
                Action::Deny => p.drop_with(if at == NON_IP { AclDrop::NonIpDenied } else { AclDrop::DeniedByRule }),
                Action::PermitReflect => {
                    if let Some(flows) = &mut self.flows {
                        let (e, tcp_flags) = self.endpoints[i];
                        flows.open(&e, tcp_flags, now);
                    }
                }
                Action::Permit => {}
            }
        }
    }

    fn tick(&mut self, _batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        // The filter follows updates even when XDP leaves the workers no
        // packet of this ACL to see.
        if self.offload.is_some() {
            self.take_update();
        }
    }

    fn take_offload(&mut self, o: nfv_core::offload::Offloader) -> bool {
        self.offload = Some((o, None));
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["reflect-flows"]
    }

    fn sample(&self, tables: &mut [nfv_core::Occupancy]) {
        let capacity = self.acl.reflect.map_or(0, |r| r.max_flows as u64);
        tables[0] = nfv_core::Occupancy { entries: self.flows.as_ref().map_or(0, |f| f.len() as u64), capacity };
        self.shown.copy_from(&self.hits, self.default_hits);
    }

    fn report(&self) -> Option<String> {
        use std::fmt::Write;
        let acl = &*self.acl;
        let hits = &self.hits;
        let [default_packets, default_bytes] = self.default_hits;
        let mut out = format!(
            "  {} rules (IPv4 {}, IPv6 {}), version {}; default {:?}: {} packets {} bytes\n",
            acl.rules.len(),
            acl.v4.1.len(),
            acl.v6.1.len(),
            acl.version,
            acl.default,
            default_packets,
            default_bytes
        );
        if self.updates > 0 {
            let [p, b] = self.retired;
            let _ = writeln!(out, "  {} rule updates taken; rules since removed: {p} packets {b} bytes", self.updates);
        }
        if let Some(f) = &self.flows {
            let st = f.stats;
            let _ = writeln!(
                out,
                "  reflect flows {} (created {} expired {} refused-full {}), packets passed by a flow {}",
                f.len(),
                st.created,
                st.expired,
                st.refused_full,
                st.hits
            );
        }
        for (i, [packets, bytes]) in hits.iter().enumerate().filter(|(_, h)| h[0] > 0) {
            let _ =
                writeln!(out, "  rule {} {:?}: {packets} packets {bytes} bytes", acl.origins[i], acl.rules[i].action);
        }
        Some(out)
    }
}
