//! Per-packet descriptor, metadata and verdict.
//!
//! A packet is a small descriptor (32 bytes: frame index, data window,
//! metadata, verdict) that moves through the batch; the bytes stay in the
//! frame. Stages see a [`PacketMut`], which gives bounds-checked access to
//! the data window and its headroom.

use std::cell::Cell;

use crate::adjacency::AdjacencyDrop;
use crate::frame::{FRAME_SIZE, FrameId, HEADROOM};

/// Index of a port in the running configuration.
pub type PortId = u16;

/// Metadata filled once by the input stage so later stages do not re-parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Port the packet arrived on. Stages read it, never change it: a batch
    /// holds packets of one rx port, and dispatch sends its `Next` packets
    /// by that port (or the worker's `tx`) without looking at each one.
    /// (One exception: a stage handing a packet off to another worker may
    /// set the port it should be taken as coming from there.)
    pub port: PortId,
    /// Offset of the L3 header from the start of data (after VLAN tags).
    pub l3_off: u16,
    /// Offset of the L4 header, or 0 when there is none or it was not parsed.
    pub l4_off: u16,
    /// EtherType of the L3 payload (after VLAN tags), 0 before parsing.
    pub ethertype: u16,
    /// IP protocol / IPv6 next header of the L4 payload.
    pub l4_proto: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// Flow hash (from the NIC's RSS, the generator, or computed on demand).
    pub hash: u32,
}

/// Bits of [`Meta::flags`].
pub mod flags {
    /// `l3_off`/`ethertype` describe a well-formed IPv4/IPv6 header.
    pub const L3_OK: u8 = 1 << 0;
    /// `l4_off`/`l4_proto` describe an L4 header that fits in the frame.
    pub const L4_OK: u8 = 1 << 1;
    /// The IP packet is a fragment (first or not).
    pub const FRAGMENT: u8 = 1 << 2;
    /// `Meta::hash` is valid.
    pub const HASH_OK: u8 = 1 << 3;
    /// Follow this packet through the chain (like VPP's `trace add`).
    pub const TRACE: u8 = 1 << 4;
    /// The L4 checksum is left to the NIC (TX offload requested).
    pub const CSUM_OFFLOAD: u8 = 1 << 5;
    /// A service function forwarder took this packet's NSH off for an
    /// NSH-unaware function and keeps it in the headroom to put back
    /// (RFC 7665 4.6); a re-parse keeps the mark.
    pub const NSH_PROXIED: u8 = 1 << 6;
}

/// A stage-local drop reason: the index into the names the stage declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropReason(pub u8);

/// Index of a chain in the running configuration's graph.
pub type ChainId = u16;

/// Whether a packet goes on through the chain, and if not, why it left.
///
/// Encoded in one word so the descriptor stays small: the top byte is the
/// kind, the rest its operands. Where a packet goes out (its egress) is
/// kept apart, in [`Egress`]: deciding it does not end the chain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Verdict(u32);

impl Verdict {
    const NEXT: u32 = 0;
    const DROP: u32 = 1;
    const PUNT: u32 = 2;
    const HANDOFF: u32 = 3;
    const GOTO: u32 = 4;

    /// Continue to the next stage; after the chain's last, to where the
    /// chain ends (`then`), else out of its egress.
    pub const fn next() -> Self {
        Self(Self::NEXT << 24)
    }
    /// Leave the graph now, dropped and counted under the stage's `reason`.
    pub const fn drop(reason: DropReason) -> Self {
        Self((Self::DROP << 24) | reason.0 as u32)
    }
    /// Leave the graph now, handed to the control thread (slow path).
    pub const fn punt() -> Self {
        Self(Self::PUNT << 24)
    }
    /// Leave this worker: its peer of rank `worker` runs the packet from
    /// position `stage` of chain `chain` on (the chain stamps where the
    /// stage that handed it off sits).
    pub const fn handoff(worker: u8, chain: u8, stage: u8) -> Self {
        Self((Self::HANDOFF << 24) | (chain as u32) << 16 | (stage as u32) << 8 | worker as u32)
    }
    /// Leave this chain for chain `chain` (a classifier's branch).
    pub const fn goto(chain: ChainId) -> Self {
        Self((Self::GOTO << 24) | chain as u32)
    }
    /// True for [`Verdict::next`].
    #[inline(always)]
    pub const fn is_next(self) -> bool {
        self.0 == 0
    }
    /// The chain of a [`Verdict::goto`].
    #[inline(always)]
    pub(crate) const fn goto_target(self) -> Option<ChainId> {
        if self.0 >> 24 == Self::GOTO { Some(self.0 as u16) } else { None }
    }
    /// Decoded form for matching; `egress` completes a packet still `Next`.
    pub const fn kind(self, egress: Egress) -> VerdictKind {
        match self.0 >> 24 {
            Self::NEXT => match egress.kind() {
                EgressKind::None => VerdictKind::Next,
                EgressKind::Port(p) => VerdictKind::Out(p),
                EgressKind::Via { .. } => VerdictKind::Held,
                EgressKind::Refused(r) => VerdictKind::Refused(AdjacencyDrop::from_index(r)),
            },
            Self::DROP => VerdictKind::Drop(DropReason(self.0 as u8)),
            Self::HANDOFF => {
                VerdictKind::Handoff { worker: self.0 as u8, chain: (self.0 >> 16) as u8, stage: (self.0 >> 8) as u8 }
            }
            Self::GOTO => VerdictKind::Goto(self.0 as u16),
            _ => VerdictKind::Punt,
        }
    }
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind(Egress::NONE).fmt(f)
    }
}

/// Where a packet leaves the graph, as decided so far: nowhere yet, out
/// of a port (its Ethernet header complete), to a next hop the worker's
/// adjacency still resolves (held at the end of the graph), or refused by
/// the adjacency (dropped at the end, counted there). A later stage may
/// change it; only the end of the graph acts on it (VPP's NAT and tunnel
/// nodes hand on to lookup and rewrite the same way).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Egress(u32);

impl Egress {
    const PORT: u32 = 1;
    const VIA: u32 = 2;
    const REFUSED: u32 = 3;

    /// Not decided.
    pub const NONE: Self = Self(0);

    /// Out of `port` as the frame is.
    pub const fn port(port: PortId) -> Self {
        Self((Self::PORT << 30) | port as u32)
    }
    /// Out of `port` once next hop `slot` of the adjacency resolves.
    pub(crate) const fn via(port: PortId, slot: u8) -> Self {
        Self((Self::VIA << 30) | (slot as u32) << 16 | port as u32)
    }
    /// Refused by the adjacency for `reason` ([`crate::adjacency::AdjacencyDrop`]).
    pub(crate) const fn refused(reason: u8) -> Self {
        Self((Self::REFUSED << 30) | (reason as u32) << 16)
    }
    /// The egress as another worker may take it: a wait for a next hop
    /// names this worker's adjacency, so it crosses undecided (the stage
    /// the packet resumes at decides again).
    #[inline(always)]
    pub(crate) const fn portable(self) -> Self {
        if self.0 >> 30 == Self::VIA { Self::NONE } else { self }
    }

    /// True when some stage decided.
    #[inline(always)]
    pub const fn is_decided(self) -> bool {
        self.0 != 0
    }
    /// Decoded form for matching.
    #[inline(always)]
    pub const fn kind(self) -> EgressKind {
        match self.0 >> 30 {
            0 => EgressKind::None,
            Self::PORT => EgressKind::Port(self.0 as u16),
            Self::VIA => EgressKind::Via { port: self.0 as u16, slot: (self.0 >> 16) as u8 },
            _ => EgressKind::Refused((self.0 >> 16) as u8),
        }
    }
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind().fmt(f)
    }
}

/// [`Egress`] decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressKind {
    /// Not decided.
    None,
    /// Out of this port.
    Port(PortId),
    /// Out of `port` when the adjacency's next hop `slot` resolves.
    Via {
        /// The port.
        port: PortId,
        /// The adjacency's index of the next hop.
        slot: u8,
    },
    /// Refused by the adjacency, for this [`crate::adjacency::AdjacencyDrop`].
    Refused(u8),
}

/// What became of a packet, [`Verdict`] and [`Egress`] together: what a
/// test runner reports and dispatch acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    /// Nothing decided.
    Next,
    /// Transmit on this port.
    Out(PortId),
    /// Drop with this stage-local reason.
    Drop(DropReason),
    /// Send to the slow path.
    Punt,
    /// Continue on another worker (the one holding the packet's flow
    /// state), at position `stage` of chain `chain`.
    Handoff {
        /// Rank of the worker among its peers.
        worker: u8,
        /// Chain to resume in.
        chain: u8,
        /// Chain position to resume at.
        stage: u8,
    },
    /// Continue in this chain.
    Goto(ChainId),
    /// Held until its next hop resolves; the worker sends or drops it.
    Held,
    /// Refused by the adjacency (no route to the next hop, too many
    /// waiting): dropped, counted under the adjacency's reason.
    Refused(AdjacencyDrop),
}

/// The descriptor of one packet in a batch.
///
/// Only this crate makes descriptors (from frames its ports and pool hand
/// out), and outside it a descriptor can be neither built nor copied
/// (no constructor, private fields, no `Clone`): safe code elsewhere sees
/// descriptors only by reference and cannot make a second owner of a
/// frame. Packets made elsewhere are [`NewPacket`]s, which own their frame.
#[derive(Debug)]
pub struct PktDesc {
    /// Frame holding the bytes.
    pub(crate) frame: FrameId,
    /// Offset of the first data byte inside the frame.
    pub(crate) head: u16,
    /// Data length.
    pub len: u16,
    /// Parsed metadata.
    pub meta: Meta,
    /// Verdict of the last stage that looked at the packet.
    pub verdict: Verdict,
    /// Where it leaves the graph, as decided so far.
    pub egress: Egress,
}

impl PktDesc {
    /// A second descriptor of the same frame, for the crate's own moves
    /// between lists (batch, done list, tx queue, held packets), each of
    /// which gives up its copy.
    #[inline(always)]
    pub(crate) fn dup(&self) -> Self {
        Self {
            frame: self.frame,
            head: self.head,
            len: self.len,
            meta: self.meta,
            verdict: self.verdict,
            egress: self.egress,
        }
    }

    /// A descriptor for `len` bytes starting at the default headroom.
    #[inline(always)]
    pub(crate) fn new(frame: FrameId, len: u16, port: PortId) -> Self {
        Self {
            frame,
            head: HEADROOM as u16,
            len,
            meta: Meta { port, ..Meta::default() },
            verdict: Verdict::next(),
            egress: Egress::NONE,
        }
    }

    /// What became of the packet: its verdict, completed by its egress.
    #[inline(always)]
    pub fn outcome(&self) -> VerdictKind {
        self.verdict.kind(self.egress)
    }

    /// Range of the data inside the frame.
    #[inline(always)]
    pub(crate) fn data_range(&self) -> std::ops::Range<usize> {
        self.head as usize..self.head as usize + self.len as usize
    }
}

/// The name of a packet's frame, comparable and nothing more: test runners
/// tell the packet they fed from those a stage added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTag(pub(crate) FrameId);

/// A packet leaving a batch that no worker dispatches
/// ([`crate::Batch::finish_into`]).
pub struct Finished<'a> {
    /// Its frame's name ([`NewPacket::tag`]).
    pub tag: FrameTag,
    /// What the chain decided.
    pub verdict: VerdictKind,
    /// Its metadata as it left.
    pub meta: &'a Meta,
    /// Its bytes as it left.
    pub data: &'a [u8],
}

/// A packet a stage (or a test) made, owning its frame until it enters a
/// batch ([`crate::Batch::push`]) or goes back to its pool
/// ([`crate::frame::FramePool::discard`]). Neither `Copy` nor `Clone`: the
/// compiler sees to it that one frame enters a batch once.
#[must_use = "a new packet owns a frame: push it into a batch or discard it"]
#[derive(Debug)]
pub struct NewPacket {
    desc: PktDesc,
    /// The arena of the pool it came from, checked when it enters a batch.
    arena: u32,
}

impl NewPacket {
    #[inline(always)]
    pub(crate) fn new(desc: PktDesc, arena: u32) -> Self {
        Self { desc, arena }
    }

    #[inline(always)]
    pub(crate) fn arena(&self) -> u32 {
        self.arena
    }

    /// Gives up ownership to the caller inside the crate (a batch, a pool).
    #[inline(always)]
    pub(crate) fn into_desc(self) -> PktDesc {
        self.desc
    }

    /// Names its frame, to recognise the packet when it leaves a batch
    /// ([`crate::Batch::finish_into`]); gives no access to the frame.
    pub fn tag(&self) -> FrameTag {
        FrameTag(self.desc.frame)
    }

    /// Its metadata (port, parsed headers).
    pub fn meta(&self) -> &Meta {
        &self.desc.meta
    }

    /// Its metadata, writable: a stage sets what the parser would find.
    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.desc.meta
    }

    /// Data length in bytes.
    pub fn len(&self) -> usize {
        self.desc.len as usize
    }

    /// True for an empty packet.
    pub fn is_empty(&self) -> bool {
        self.desc.len == 0
    }

    /// Decides where it leaves (a released packet, a reply): out of
    /// `port` as it is, unless a later stage decides otherwise.
    pub fn send_to(&mut self, port: PortId) {
        self.desc.egress = Egress::port(port);
    }
}

/// Errors of headroom/tailroom manipulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomError {
    /// Not enough headroom in front of the data to push the header.
    NoHeadroom,
    /// Not enough room behind the data.
    NoTailroom,
    /// Asked to remove more bytes than the packet has.
    TooShort,
}

/// A stage's handle on one packet: the descriptor plus its frame's bytes.
pub struct PacketMut<'a> {
    pub(crate) desc: &'a mut PktDesc,
    pub(crate) frame: &'a mut [u8; FRAME_SIZE],
    pub(crate) marks: &'a Marks,
}

impl<'a> PacketMut<'a> {
    /// The packet bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.frame[self.desc.data_range()]
    }

    /// The packet bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let r = self.desc.data_range();
        &mut self.frame[r]
    }

    /// Data length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.desc.len as usize
    }

    /// True for an empty packet.
    pub fn is_empty(&self) -> bool {
        self.desc.len == 0
    }

    /// Parsed metadata.
    #[inline(always)]
    pub fn meta(&self) -> &Meta {
        &self.desc.meta
    }

    /// Parsed metadata, writable (stages that change headers keep it true).
    #[inline(always)]
    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.desc.meta
    }

    /// The bytes and the metadata at once, for a parser that reads one and
    /// writes the other.
    #[inline(always)]
    pub fn data_and_meta_mut(&mut self) -> (&[u8], &mut Meta) {
        let r = self.desc.data_range();
        (&self.frame[r], &mut self.desc.meta)
    }

    /// Parses the packet again after a stage changed its framing (a
    /// decapsulation, an encapsulation), for the stages after it that
    /// read headers ([`crate::BuildCtx::headers_read_later`]); its flow
    /// hash is forgotten with the old headers.
    #[inline]
    pub fn reparse(&mut self) -> Result<(), crate::parse::ParseError> {
        let (d, meta) = self.data_and_meta_mut();
        meta.flags &= !flags::HASH_OK;
        crate::parse::classify(d, meta)
    }

    /// Bytes free in front of the data.
    pub fn headroom(&self) -> usize {
        self.desc.head as usize
    }

    /// Grows the data window by `n` bytes at the front (for encapsulation)
    /// and returns the whole new data window; the new bytes come first.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], RoomError> {
        if n > self.desc.head as usize {
            return Err(RoomError::NoHeadroom);
        }
        self.desc.head -= n as u16;
        self.desc.len += n as u16;
        Ok(self.data_mut())
    }

    /// Removes `n` bytes from the front (for decapsulation).
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> Result<(), RoomError> {
        if n > self.desc.len as usize {
            return Err(RoomError::TooShort);
        }
        self.desc.head += n as u16;
        self.desc.len -= n as u16;
        Ok(())
    }

    /// Sets the data length, growing into tailroom or trimming the end.
    pub fn set_len(&mut self, len: usize) -> Result<(), RoomError> {
        if self.desc.head as usize + len > FRAME_SIZE {
            return Err(RoomError::NoTailroom);
        }
        self.desc.len = len as u16;
        Ok(())
    }

    /// The current verdict.
    pub fn verdict(&self) -> Verdict {
        self.desc.verdict
    }

    /// Where it leaves the graph, as decided so far (an earlier stage may
    /// have decided: a later one may change it).
    #[inline(always)]
    pub fn egress(&self) -> Egress {
        self.desc.egress
    }

    #[inline(always)]
    fn finish(&mut self, v: Verdict) {
        if self.desc.verdict.is_next() {
            self.marks.finished.set(self.marks.finished.get() + 1);
        }
        self.desc.verdict = v;
    }

    /// Sets the egress, counted for the deciding stage.
    #[inline(always)]
    pub(crate) fn route(&mut self, e: Egress) {
        self.marks.routed.set(self.marks.routed.get() + 1);
        self.desc.egress = e;
    }

    /// Drops the packet under the stage's `reason` (counted by the chain).
    #[inline(always)]
    pub fn drop_with(&mut self, reason: impl Into<DropReason>) {
        self.finish(Verdict::drop(reason.into()));
    }

    /// Decides that the packet leaves out of `port`, its frame as it is
    /// (its Ethernet header complete). The rest of the graph still runs
    /// over it and may drop it or decide otherwise; the last decision is
    /// carried out when the graph ends.
    #[inline(always)]
    pub fn send_to(&mut self, port: PortId) {
        self.route(Egress::port(port));
    }

    /// Hands the packet to the slow path.
    #[inline(always)]
    pub fn punt(&mut self) {
        self.finish(Verdict::punt());
    }

    /// Sends the packet on to chain `chain` (a classifier's branch): it
    /// leaves this chain now, in order with the others sent there.
    #[inline(always)]
    pub fn goto(&mut self, chain: ChainId) {
        self.finish(Verdict::goto(chain));
    }

    /// Hands the packet to the worker of rank `worker` among those
    /// running this stage, whose instance runs it from this stage on
    /// (software steering: the flow's state lives there). The frame is
    /// copied across; see [`crate::handoff`].
    #[inline(always)]
    pub fn hand_off(&mut self, worker: usize) {
        self.finish(Verdict::handoff(worker as u8, 0, 0));
    }
}

/// What stages did to a batch's packets since the chain last settled it:
/// how many they finished (dropped, punted, branched, handed off) and how
/// many they gave an egress. Cells: stages set them through [`PacketMut`]
/// while the batch is borrowed packet by packet.
#[derive(Default)]
pub(crate) struct Marks {
    pub(crate) finished: Cell<u32>,
    pub(crate) routed: Cell<u32>,
}

/// Declares a stage's drop reasons as an enum with their display names,
/// the way VPP nodes declare error strings.
///
/// ```
/// nfv_core::drop_reasons! {
///     pub enum TtlDrop { Expired => "ttl-expired", NotIp => "not-ip" }
/// }
/// assert_eq!(TtlDrop::NAMES[TtlDrop::NotIp as usize], "not-ip");
/// ```
#[macro_export]
macro_rules! drop_reasons {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        $vis enum $name { $(#[doc = $text] $variant),+ }
        impl $name {
            /// Display names, indexed by the enum value.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
        }
        impl From<$name> for $crate::packet::DropReason {
            fn from(r: $name) -> Self { $crate::packet::DropReason(r as u8) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_stays_small() {
        assert!(std::mem::size_of::<PktDesc>() <= 32);
    }

    #[test]
    fn verdict_round_trips() {
        let none = Egress::NONE;
        assert_eq!(Verdict::next().kind(none), VerdictKind::Next);
        assert_eq!(Verdict::next().kind(Egress::port(513)), VerdictKind::Out(513));
        assert_eq!(Verdict::next().kind(Egress::via(3, 9)), VerdictKind::Held);
        assert_eq!(Verdict::next().kind(Egress::refused(1)), VerdictKind::Refused(AdjacencyDrop::NoRoute));
        assert_eq!(Egress::via(513, 200).kind(), EgressKind::Via { port: 513, slot: 200 });
        assert_eq!(Verdict::drop(DropReason(7)).kind(none), VerdictKind::Drop(DropReason(7)));
        assert_eq!(Verdict::punt().kind(none), VerdictKind::Punt);
        assert_eq!(Verdict::goto(300).kind(none), VerdictKind::Goto(300));
        let h = Verdict::handoff(3, 250, 7).kind(none);
        assert_eq!(h, VerdictKind::Handoff { worker: 3, chain: 250, stage: 7 });
        assert!(!Verdict::punt().is_next() && Verdict::next().is_next());
    }
}
