//! Usage reporting rules on the N4 side (TS 29.244 5.2.2): what a URR
//! measures, when it reports (volume threshold, measurement period), and
//! its Usage Report (7.5.8.3: URR ID, UR-SEQN, trigger, start and end
//! time, volume and packets since the previous report, duration).
//!
//! The data path only counts (`crate::usage`); the reports are made
//! here, from the counters' sums, on the control side.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rs_pfcp::ie::create_urr::CreateUrr;
use rs_pfcp::ie::reporting_triggers::ReportingTriggers;
use rs_pfcp::ie::update_urr::UpdateUrr;
use rs_pfcp::ie::usage_report::{UsageReport, UsageReportBuilder};
use rs_pfcp::ie::usage_report_trigger::{UsageReportTrigger, UsageReportTriggerFlag};
use rs_pfcp::ie::volume_measurement::VolumeMeasurement;

use crate::usage::{Counts, Usage};

/// Seconds between 1900 (NTP's epoch, which PFCP time stamps count
/// from, TS 29.244 8.2.38 et seq.) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A time as PFCP writes it: NTP seconds.
fn ntp_seconds(t: SystemTime) -> u32 {
    (t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) + NTP_UNIX_OFFSET) as u32
}

/// Volume Threshold (8.2.13): octets since the last report, each present
/// one a trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Threshold {
    /// Both ways.
    pub total: Option<u64>,
    /// Uplink.
    pub uplink: Option<u64>,
    /// Downlink.
    pub downlink: Option<u64>,
}

impl Threshold {
    fn reached(&self, c: &Counts) -> bool {
        self.total.is_some_and(|t| c.total_bytes() >= t)
            || self.uplink.is_some_and(|t| c.ul_bytes >= t)
            || self.downlink.is_some_and(|t| c.dl_bytes >= t)
    }
}

/// One URR: what it measures and reports, and where its current
/// measurement started.
#[derive(Clone, Debug)]
pub struct Urr {
    /// URR ID.
    pub id: u32,
    /// Its counter slot.
    pub slot: u32,
    /// Measurement Method (8.2.40): duration measured.
    duration: bool,
    /// Reporting Triggers (8.2.19) acted on: volume threshold, periodic.
    volth: bool,
    perio: bool,
    /// Volume Threshold.
    pub threshold: Threshold,
    /// Measurement Period (8.2.14).
    pub period: Option<Duration>,
    /// The counters at the last report (or at creation).
    base: Counts,
    /// When the current measurement started.
    since: SystemTime,
    /// When the next periodic report is due.
    next_period: Option<Instant>,
    /// UR-SEQN of the next report (8.2.42: from 0, one per report).
    seqn: u32,
}

impl Urr {
    /// A Create URR (7.5.2.4) counting into `slot`, whose counters stand
    /// at `base` now.
    pub fn new(c: &CreateUrr, slot: u32, base: Counts) -> Self {
        let mut u = Self {
            id: c.urr_id.id,
            slot,
            duration: c.measurement_method.duration,
            volth: false,
            perio: false,
            threshold: Threshold::default(),
            period: None,
            base,
            since: SystemTime::now(),
            next_period: None,
            seqn: 0,
        };
        u.set_triggers(&c.reporting_triggers);
        u.set_threshold(c.volume_threshold.as_ref());
        u.set_period(c.measurement_period.as_ref());
        u
    }

    /// An Update URR (7.5.4.4): what it gives replaces what was.
    pub fn update(&mut self, u: &UpdateUrr) {
        if let Some(m) = &u.measurement_method {
            self.duration = m.duration;
        }
        if let Some(t) = &u.reporting_triggers {
            self.set_triggers(t);
        }
        self.set_threshold(u.volume_threshold.as_ref());
        self.set_period(u.measurement_period.as_ref());
    }

    fn set_triggers(&mut self, t: &ReportingTriggers) {
        self.volth = t.contains(ReportingTriggers::VOLTH);
        self.perio = t.contains(ReportingTriggers::PERIO);
    }

    fn set_threshold(&mut self, t: Option<&rs_pfcp::ie::volume_threshold::VolumeThreshold>) {
        if let Some(t) = t {
            self.threshold = Threshold {
                // A flag without its value, or a zero: no threshold.
                total: t.total_volume.filter(|&v| t.tovol && v > 0),
                uplink: t.uplink_volume.filter(|&v| t.ulvol && v > 0),
                downlink: t.downlink_volume.filter(|&v| t.dlvol && v > 0),
            };
        }
    }

    fn set_period(&mut self, p: Option<&rs_pfcp::ie::measurement_period::MeasurementPeriod>) {
        if let Some(p) = p {
            self.period = (p.value > 0).then(|| Duration::from_secs(p.value as u64));
            self.next_period = self.period.map(|d| Instant::now() + d);
        }
    }

    /// Whether it reports by itself (a threshold or a period to watch).
    pub fn watched(&self) -> bool {
        (self.volth && self.threshold != Threshold::default()) || (self.perio && self.period.is_some())
    }

    /// Whether it watches a volume threshold (its PDRs then stay in the
    /// workers: see `crate::usage::Usage::watch_volume`).
    pub fn watches_volume(&self) -> bool {
        self.volth && self.threshold != Threshold::default()
    }

    /// The trigger of a report due now, if one is: the volume threshold
    /// reached since the last report (the counters read by `now` only
    /// then), or the measurement period over.
    pub fn due(&self, now: impl FnOnce() -> Counts, at: Instant) -> Option<UsageReportTriggerFlag> {
        if self.watches_volume() && self.threshold.reached(&now().since(self.base)) {
            return Some(UsageReportTrigger::VOLTH);
        }
        if self.perio && self.next_period.is_some_and(|t| at >= t) {
            return Some(UsageReportTrigger::PERIO);
        }
        None
    }

    /// Its report for `trigger` from the counters `now`; a new
    /// measurement starts (TS 29.244 5.2.2.2.1: counts restart after
    /// each report).
    pub fn report(&mut self, now: Counts, trigger: UsageReportTriggerFlag) -> UsageReport {
        let d = now.since(self.base);
        let end = SystemTime::now();
        let mut b = UsageReportBuilder::new(rs_pfcp::ie::urr_id::UrrId::new(self.id))
            .sequence_number(rs_pfcp::ie::ur_seqn::UrSeqn::new(self.seqn))
            .trigger(trigger_of(trigger))
            .start_time(rs_pfcp::ie::start_time::StartTime::new(ntp_seconds(self.since)))
            .end_time(rs_pfcp::ie::end_time::EndTime::new(ntp_seconds(end)))
            .volume_measurement(VolumeMeasurement::new(
                0x3f,
                Some(d.total_bytes()),
                Some(d.ul_bytes),
                Some(d.dl_bytes),
                Some(d.ul_packets + d.dl_packets),
                Some(d.ul_packets),
                Some(d.dl_packets),
            ));
        if self.duration {
            let secs = end.duration_since(self.since).map_or(0, |d| d.as_secs()) as u32;
            b = b.duration_measurement(rs_pfcp::ie::duration_measurement::DurationMeasurement::new(secs));
        }
        self.seqn = self.seqn.wrapping_add(1);
        self.base = now;
        self.since = end;
        if trigger == UsageReportTrigger::PERIO {
            self.next_period = self.period.map(|p| Instant::now() + p);
        }
        b.build().expect("a usage report with its mandatory IEs")
    }

    /// Its report from the counters in `usage`.
    pub fn report_from(&mut self, usage: &Usage, trigger: UsageReportTriggerFlag) -> UsageReport {
        self.report(usage.read(self.slot), trigger)
    }
}

/// A Usage Report Trigger (8.2.41) of one flag, in its three octets.
fn trigger_of(flag: UsageReportTriggerFlag) -> UsageReportTrigger {
    let mut t = UsageReportTrigger::from_octets(vec![0, 0, 0]);
    t.insert(flag);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use rs_pfcp::ie::create_urr::CreateUrrBuilder;
    use rs_pfcp::ie::measurement_method::MeasurementMethod;
    use rs_pfcp::ie::urr_id::UrrId;

    fn urr(threshold: u64, period: u32) -> Urr {
        let c = CreateUrrBuilder::new(UrrId::new(7))
            .measurement_method(MeasurementMethod::new(true, true, false))
            .reporting_triggers(ReportingTriggers::new().with_volume_threshold(true).with_periodic(period > 0))
            .volume_threshold_bytes(threshold)
            .measurement_period_seconds(period)
            .build()
            .unwrap();
        Urr::new(&c, 3, Counts { ul_bytes: 10, ..Counts::default() })
    }

    #[test]
    fn a_threshold_counts_from_the_last_report_and_the_report_says_what_was_counted() {
        let mut u = urr(1000, 0);
        let at = Instant::now();
        let c =
            |ul: u64, dl: u64| Counts { ul_bytes: 10 + ul, ul_packets: ul / 100, dl_bytes: dl, dl_packets: dl / 100 };
        assert_eq!(u.due(|| c(500, 400), at), None, "900 of 1000");
        assert_eq!(u.due(|| c(500, 500), at), Some(UsageReportTrigger::VOLTH));
        let r = u.report(c(600, 500), UsageReportTrigger::VOLTH);
        assert_eq!((r.urr_id.id, r.ur_seqn.sequence_number()), (7, 0));
        assert!(r.usage_report_trigger.contains(UsageReportTrigger::VOLTH));
        let v = r.volume_measurement.unwrap();
        assert_eq!((v.total_volume, v.uplink_volume, v.downlink_volume), (Some(1100), Some(600), Some(500)));
        assert_eq!((v.total_packets, v.uplink_packets, v.downlink_packets), (Some(11), Some(6), Some(5)));
        assert!(r.duration_measurement.is_some() && r.start_time.is_some() && r.end_time.is_some());
        assert_eq!(u.due(|| c(1000, 1000), at), None, "900 since the report");
        assert_eq!(u.report(c(1100, 1100), UsageReportTrigger::TERMR).ur_seqn.sequence_number(), 1);
    }

    #[test]
    fn a_period_reports_when_over_and_a_urr_without_triggers_is_not_watched() {
        let u = urr(0, 1);
        assert!(u.watched());
        assert_eq!(u.due(Counts::default, Instant::now()), None);
        assert_eq!(u.due(Counts::default, Instant::now() + Duration::from_secs(2)), Some(UsageReportTrigger::PERIO));
        let mut quiet = urr(0, 0);
        quiet.volth = false;
        assert!(!quiet.watched());
        assert_eq!(trigger_of(UsageReportTrigger::VOLTH).octets(), [0x02, 0, 0]);
        assert_eq!(trigger_of(UsageReportTrigger::TERMR).octets(), [0, 0x08, 0]);
    }
}
