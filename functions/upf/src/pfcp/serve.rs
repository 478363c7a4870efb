//! Datagrams in and out: requests read from the N4 socket and answered
//! (a retransmitted request from memory, 6.4), the session table published
//! before the responses that speak of it leave, the periodic work (usage
//! reports, retransmissions, heartbeats), and the control task that runs
//! it all.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nfv_core::ControlTask;

use super::{PfcpEndpoint, URR_SCAN};

/// Datagrams answered per poll before the table is published.
const REQUESTS_PER_POLL: usize = 1024;

/// A request as its sender identifies it: (sender, sequence number,
/// message type).
pub(super) type RequestKey = (SocketAddr, u32, u8);

/// How long an answer is kept for a retransmitted request (beyond T1 x
/// N1 of a usual SMF), and how many are kept at most.
const ANSWER_KEPT: Duration = Duration::from_secs(20);
const ANSWERS_KEPT: usize = 16384;

/// The request types (node-level odd, session-level even from 50).
pub(super) fn is_request(kind: u8) -> bool {
    matches!(kind, 1 | 3 | 5 | 7 | 9 | 12 | 14 | 16 | 50 | 52 | 54 | 56)
}

/// The key of a request datagram, if it is one.
fn request_key(data: &[u8], from: SocketAddr) -> Option<RequestKey> {
    let (&flags, &kind) = (data.first()?, data.get(1)?);
    let at = if flags & 0x01 != 0 { 12 } else { 4 };
    let seq = data.get(at..at + 3).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))?;
    is_request(kind).then_some((from, seq, kind))
}

impl PfcpEndpoint {
    /// Answers one datagram `data` from `from` as a poll would (the table
    /// published if it changed); `None` when there is nothing to send. For
    /// tests and tools that hold no socket to the endpoint.
    pub fn answer(&mut self, data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let reply = self.respond(data, from);
        if !self.changes.is_empty() {
            self.publish();
        }
        reply
    }

    /// Answers `data` from `from`, a retransmitted request with the
    /// answer it had; `None` when there is nothing to send.
    fn respond(&mut self, data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        if !self.smf.is_empty() && !self.smf.contains(&from.ip()) {
            self.counters.refused_peers += 1;
            self.refusals_told.2 = Some(from);
            return None;
        }
        let key = request_key(data, from);
        // The same request (its bytes too): not a new one that happens to
        // reuse a sequence number (an SMF restarted, say).
        let digest = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(data)
        };
        if let Some((_, r)) = key.and_then(|k| self.answered.get(&k)).filter(|(d, _)| *d == digest) {
            self.counters.retransmitted_requests += 1;
            return Some(r.clone());
        }
        let reply = self.handle(data, from);
        if let (Some(k), Some(r)) = (key, &reply) {
            let now = Instant::now();
            while self.answered_order.len() >= ANSWERS_KEPT
                || self.answered_order.front().is_some_and(|(t, _)| now.duration_since(*t) > ANSWER_KEPT)
            {
                let (_, old) = self.answered_order.pop_front().expect("non-empty");
                self.answered.remove(&old);
            }
            self.answered.insert(k, (digest, r.clone()));
            self.answered_order.push_back((now, k));
        }
        reply
    }

    /// Answers up to `max` waiting datagrams, publishes the table once if
    /// they changed it, then sends the responses; `Ok(n)` datagrams read.
    fn serve(&mut self, max: usize) -> Result<usize, String> {
        let mut n = 0;
        let mut error = None;
        while n < max {
            let (len, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    error = Some(format!("N4 receive: {e}"));
                    break;
                }
            };
            n += 1;
            let data = self.buf[..len].to_vec();
            if let Some(reply) = self.respond(&data, from) {
                self.outbox.push((reply, from));
            }
        }
        if !self.changes.is_empty() {
            self.publish();
        }
        for (reply, to) in std::mem::take(&mut self.outbox) {
            if let Err(e) = self.socket.send_to(&reply, to) {
                error.get_or_insert(format!("N4 send to {to}: {e}"));
            }
        }
        self.report_buffering();
        if self.last_scan.elapsed() >= URR_SCAN {
            self.last_scan = Instant::now();
            self.report_usage();
            self.retransmit();
            self.heartbeats();
            if let Some((table, _)) = &self.table {
                table.reclaim();
            }
        }
        // Sessions a failed or restarted SMF took with it (no response
        // waits on these).
        if !self.changes.is_empty() {
            self.publish();
        }
        error.map_or(Ok(n), Err)
    }

    /// Answers the next waiting datagram, if any (and sends the usage
    /// reports due); `Err` tells of a socket problem.
    pub fn poll_once(&mut self) -> Result<bool, String> {
        self.serve(1).map(|n| n > 0)
    }
}

impl ControlTask for PfcpEndpoint {
    fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        // A few rounds at most: a flood must not hold the control thread
        // (its other tasks run between polls).
        for _ in 0..8 {
            match self.serve(REQUESTS_PER_POLL) {
                Ok(n) if n == REQUESTS_PER_POLL => {}
                Ok(_) => break,
                Err(e) => {
                    lines.push(e);
                    break;
                }
            }
        }
        lines.append(&mut self.lines);
        // Refused peers, said at most once a second (a flood of them must
        // not become a flood of lines).
        let (told, when, last) = self.refusals_told;
        if self.counters.refused_peers > told && when.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            let n = self.counters.refused_peers - told;
            let from = last.map(|a| a.to_string()).unwrap_or_default();
            lines.push(format!("N4: refused {n} datagram(s) from peers not in `smf` (the last from {from})"));
            self.refusals_told = (self.counters.refused_peers, Some(Instant::now()), last);
        }
        lines
    }

    fn period(&self) -> Duration {
        Duration::from_millis(1)
    }
}
