//! What the UPF asks of an SMF itself (TS 29.244 7.5.8): Session Report
//! Requests for usage (a URR's threshold or period) and for downlink data
//! a buffering FAR holds, each kept until answered and sent again after
//! T1, N1 times at most.

use std::time::Instant;

use rs_pfcp::message::session_report_request::SessionReportRequestBuilder;

use super::*;

impl PfcpEndpoint {
    /// Session Report Requests (7.5.8) for every URR with a report due,
    /// one per session, to the SMF that established it.
    pub(super) fn report_usage(&mut self) {
        let now = Instant::now();
        let mut requests = Vec::new();
        for (s, _) in self.sessions.values_mut() {
            let mut reports = Vec::new();
            for u in s.urrs.iter_mut().filter(|u| u.watched()) {
                if let Some(trigger) = u.due(|| self.usage.read(u.slot), now) {
                    reports.push(u.report_from(&self.usage, trigger).to_ie());
                }
            }
            if !reports.is_empty() {
                requests.push((s.cp_seid, s.smf, reports));
            }
        }
        for (cp_seid, smf, reports) in requests {
            let seq = self.take_seq();
            let bytes =
                SessionReportRequestBuilder::new(cp_seid, seq).report_type_usage().usage_reports(reports).marshal();
            self.request(seq, bytes, smf);
        }
    }

    /// Our next request's sequence number.
    pub(super) fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = (self.next_seq + 1) & 0x00ff_ffff;
        seq
    }

    /// Sends a Session Report Request of ours and keeps it until answered.
    fn request(&mut self, seq: u32, bytes: Vec<u8>, to: SocketAddr) {
        let _ = self.socket.send_to(&bytes, to);
        self.counters.reports_sent += 1;
        self.pending.push(Pending { seq, bytes, to, sent: Instant::now(), tries: 1 });
    }

    /// Downlink Data Reports (5.2.3.1, 7.5.8.2: report type DLDR, the
    /// downlink PDR whose FAR buffers) for UEs whose first packet a worker
    /// held, when that FAR asks to notify (NOCP).
    pub(super) fn report_buffering(&mut self) {
        let Some(queue) = self.buffering.clone() else { return };
        while let Some(ue) = queue.pop() {
            let Some(seid) = self.ue_owner.get(&ue).copied().filter(|&s| s != STATIC) else { continue };
            let Some((s, rules)) = self.sessions.get_mut(&seid) else { continue };
            if s.buffering_reported {
                continue;
            }
            let buffering = rules
                .pdrs
                .iter()
                .filter(|p| p.pdi.source == Some(crate::rules::Interface::Core))
                .find(|p| rules.far(p.far).is_some_and(|f| f.action == crate::rules::Action::Buffer && f.notify));
            let Some(pdr) = buffering else { continue };
            s.buffering_reported = true;
            let (cp_seid, smf) = (s.cp_seid, s.smf);
            let report =
                rs_pfcp::ie::downlink_data_report::DownlinkDataReport::new(rs_pfcp::ie::pdr_id::PdrId::new(pdr.id));
            let seq = self.take_seq();
            let bytes = SessionReportRequestBuilder::new(cp_seid, seq)
                .report_type(rs_pfcp::ie::report_type::ReportType::downlink_data_report().to_ie())
                .downlink_data_report(report.to_ie())
                .marshal();
            self.request(seq, bytes, smf);
            self.counters.downlink_data_reports += 1;
        }
    }

    /// Requests of ours unanswered after T1 sent again, up to N1 times.
    pub(super) fn retransmit(&mut self) {
        let now = Instant::now();
        let mut lost = 0;
        self.pending.retain_mut(|p| {
            if now.duration_since(p.sent) < T1 {
                return true;
            }
            if p.tries >= N1 {
                lost += 1;
                return false;
            }
            let _ = self.socket.send_to(&p.bytes, p.to);
            p.tries += 1;
            p.sent = now;
            self.counters.report_retransmissions += 1;
            true
        });
        self.counters.reports_unanswered += lost;
    }
}
