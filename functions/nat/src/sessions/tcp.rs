//! The TCP state a session keeps, as RFC 7857 section 2.1 has it: which
//! of SYN and FIN each side sent, and a RST; from it, the timeout class.

use super::Class;

// TCP flags seen, per direction (RFC 9293 section 3.1 bit values are the
// packet's; these are the session's own bits).
pub(super) const SYN_OUT: u8 = 1;
pub(super) const SYN_IN: u8 = 2;
const FIN_OUT: u8 = 4;
const FIN_IN: u8 = 8;
const RST_SEEN: u8 = 16;

pub(super) const TCP_FIN: u8 = 0x01;
pub(super) const TCP_SYN: u8 = 0x02;
pub(super) const TCP_RST: u8 = 0x04;
pub(super) const TCP_ACK: u8 = 0x10;

/// The session's TCP bits after a packet with `flags` (RFC 7857 section
/// 2.1: a RST or FINs both ways close; a new SYN on a closing session
/// starts it again).
pub(super) fn tcp_bits(bits: u8, flags: u8, outbound: bool) -> u8 {
    let (syn, fin) = if outbound { (SYN_OUT, FIN_OUT) } else { (SYN_IN, FIN_IN) };
    let closing = bits & RST_SEEN != 0 || bits & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN;
    let mut b = bits;
    if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 && closing {
        b = 0;
    }
    if flags & TCP_SYN != 0 {
        b |= syn;
    }
    if flags & TCP_FIN != 0 {
        b |= fin;
    }
    if flags & TCP_RST != 0 {
        b |= RST_SEEN;
    }
    b
}

pub(super) fn tcp_class(bits: u8) -> Class {
    let closing = bits & RST_SEEN != 0 || bits & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN;
    if !closing && bits & (SYN_OUT | SYN_IN) == SYN_OUT | SYN_IN { Class::TcpEstablished } else { Class::TcpTransitory }
}
