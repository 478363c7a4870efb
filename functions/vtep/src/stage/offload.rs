//! What a forwarded packet teaches nfv's XDP program: the FDB entries
//! it used ([`crate::fdb::Fdb::offer`]).

use super::*;

impl VtepStage {
    /// A known-unicast packet of `vni` (inner `macs`: destination,
    /// source; `len` before delivery) just went to `t` from local `port`
    /// or the underlay: the FDB entries it used go to nfv's XDP program
    /// (the destination where it went, the source where it came from),
    /// so the next packets between the two skip the workers. An
    /// encapsulation is offered only once sent (its next hop resolved).
    #[cold]
    pub(super) fn offer(
        &mut self,
        p: &PacketMut<'_>,
        t: Target,
        vni: u32,
        port: Option<PortId>,
        macs: ([u8; 6], [u8; 6]),
        len: usize,
    ) {
        let (dmac, smac) = macs;
        let v4 = |ip: IpAddr| match ip {
            IpAddr::V4(a) => Some(u32::from(a)),
            IpAddr::V6(_) => None,
        };
        match (t, port) {
            (Target::Port(q), None) => {
                // Decapsulated: the source is behind the sending VTEP.
                let Some((ip, outer_smac, Some(_))) = self.last_remote else { return };
                let Some(ip) = v4(ip) else { return };
                self.fdb.offer(vni, &dmac, Some(q), None);
                self.fdb.offer(vni, &smac, None, Some((ip, outer_smac)));
            }
            (Target::Port(q), Some(inp)) => {
                self.fdb.offer(vni, &dmac, Some(q), None);
                self.fdb.offer(vni, &smac, Some(inp), None);
            }
            (Target::Remote(id), Some(inp)) => {
                let d = p.data();
                if p.len() != len + self.v.overhead() || d[..6] == [0; 6] {
                    return;
                }
                let Some(ip) = v4(self.remotes[id as usize]) else { return };
                let hop: [u8; 6] = d[..6].try_into().unwrap();
                self.fdb.offer(vni, &dmac, None, Some((ip, hop)));
                self.fdb.offer(vni, &smac, Some(inp), None);
            }
            (Target::Remote(_), None) => {}
        }
    }
}
