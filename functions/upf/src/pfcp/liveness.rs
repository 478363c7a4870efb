//! Whether each associated SMF is alive (TS 29.244 6.2.2: the Heartbeat
//! procedure, run by either side): a Heartbeat Request to each SMF every
//! interval, sent again after T1 up to N1 times (7.6). An SMF that never
//! answers has failed; its sessions are kept (the UEs' traffic goes on
//! while the SMF, or another of its set, comes back) or released, as
//! `on-smf-failure` says (TS 23.527 4.4: they "may be deleted"). A
//! Recovery Time Stamp that changes in a heartbeat either way means the
//! SMF restarted: its sessions are gone there, so they go here too (TS
//! 23.527 4.2, as for an Association Setup, 7.4.4.1.2).

use std::time::Instant;

use rs_pfcp::message::heartbeat_request::HeartbeatRequestBuilder;

use super::*;

/// What happens to a failed SMF's sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSmfFailure {
    /// Kept in the data path until the SMF re-associates or releases.
    Keep,
    /// Deleted with the association.
    Release,
}

/// How SMFs are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Between heartbeats to a live SMF.
    pub interval: Duration,
    /// T1: how long a heartbeat waits for its response.
    pub timeout: Duration,
    /// N1: heartbeats sent (the first and its retransmissions) before
    /// the SMF is declared failed.
    pub tries: u32,
    /// What its sessions become then.
    pub on_failure: OnSmfFailure,
}

/// One SMF's heartbeat state.
#[derive(Clone, Debug)]
pub(super) struct Liveness {
    /// The heartbeat in flight: its sequence number, when last sent, tries.
    in_flight: Option<(u32, Instant, u32)>,
    next: Instant,
    /// Declared failed: no heartbeats until it is heard from again.
    pub(super) failed: bool,
}

impl Liveness {
    /// The first heartbeat one interval after the association.
    pub(super) fn new(watch: Option<Watch>) -> Self {
        let first = Instant::now() + watch.map_or(Duration::ZERO, |w| w.interval);
        Self { in_flight: None, next: first, failed: false }
    }
}

/// The Recovery Time Stamp (8.2.65) a heartbeat carries, seconds.
fn recovery_of(msg: &dyn Message) -> Option<u32> {
    let ie = msg.ies(rs_pfcp::ie::IeType::RecoveryTimeStamp).next()?;
    ie.payload.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4 octets")))
}

impl PfcpEndpoint {
    /// Watches every associated SMF with heartbeats (none: answered, not
    /// sent, as before).
    pub fn watch_smfs(&mut self, watch: Option<Watch>) {
        self.watch = watch;
    }

    /// Heartbeats due, sent again, or given up on (a failed SMF).
    pub(super) fn heartbeats(&mut self) {
        let Some(w) = self.watch else { return };
        let now = Instant::now();
        let mut failed = Vec::new();
        let mut sends = Vec::new();
        for (i, a) in self.associations.iter_mut().enumerate() {
            let l = &mut a.liveness;
            if l.failed {
                continue;
            }
            match l.in_flight {
                Some((_, sent, _)) if now.duration_since(sent) < w.timeout => {}
                Some((_, _, tries)) if tries >= w.tries => failed.push(i),
                Some((seq, _, tries)) => {
                    l.in_flight = Some((seq, now, tries + 1));
                    sends.push((seq, a.addr));
                    self.counters.heartbeat_retransmissions += 1;
                }
                None if now >= l.next => {
                    let seq = self.next_seq;
                    self.next_seq = (self.next_seq + 1) & 0x00ff_ffff;
                    l.in_flight = Some((seq, now, 1));
                    sends.push((seq, a.addr));
                    self.counters.heartbeats_sent += 1;
                }
                None => {}
            }
        }
        for (seq, addr) in sends {
            let bytes = HeartbeatRequestBuilder::new(seq).recovery_time_stamp(self.recovery).marshal();
            let _ = self.socket.send_to(&bytes, SocketAddr::new(addr, PORT));
        }
        for i in failed.into_iter().rev() {
            self.smf_failed(i, w.on_failure);
        }
    }

    fn smf_failed(&mut self, i: usize, on_failure: OnSmfFailure) {
        self.counters.smf_failures += 1;
        let a = self.associations[i].clone();
        let sessions = self.sessions.values().filter(|(s, _)| s.node == a.node).count();
        let what = match on_failure {
            OnSmfFailure::Keep => {
                let l = &mut self.associations[i].liveness;
                (l.failed, l.in_flight) = (true, None);
                "kept until it comes back (on-smf-failure = \"keep\")"
            }
            OnSmfFailure::Release => {
                self.associations.remove(i);
                self.drop_sessions_of(&a.node);
                "released with its association (on-smf-failure = \"release\")"
            }
        };
        self.lines.push(format!("N4: the SMF at {} answered no heartbeat: its {sessions} session(s) {what}", a.addr));
    }

    /// A Heartbeat Request or Response from `from`: the SMF is alive (a
    /// failed one is watched again), and a new Recovery Time Stamp means
    /// it restarted.
    pub(super) fn heard_heartbeat(&mut self, msg: &dyn Message, from: SocketAddr, response: bool) {
        let Some(i) = self.associations.iter().position(|a| a.addr == from.ip()) else { return };
        let interval = self.watch.map_or(Duration::ZERO, |w| w.interval);
        let recovery = recovery_of(msg);
        let a = &mut self.associations[i];
        if response {
            match a.liveness.in_flight {
                Some((seq, _, _)) if seq == u32::from(msg.sequence()) => {
                    a.liveness.in_flight = None;
                    a.liveness.next = Instant::now() + interval;
                    self.counters.heartbeats_answered += 1;
                }
                _ => {
                    self.counters.ignored += 1;
                    return;
                }
            }
        }
        if a.liveness.failed {
            a.liveness.failed = false;
            a.liveness.next = Instant::now();
            self.lines.push(format!("N4: the SMF at {} is back", a.addr));
        }
        if recovery.is_some() && a.recovery.is_some() && recovery != a.recovery {
            let node = a.node.clone();
            a.recovery = recovery;
            self.counters.smf_restarts += 1;
            let n = self.sessions.values().filter(|(s, _)| s.node == node).count();
            self.drop_sessions_of(&node);
            self.lines.push(format!(
                "N4: the SMF at {} restarted (a new Recovery Time Stamp): its {n} session(s) deleted",
                from.ip()
            ));
        }
    }
}
