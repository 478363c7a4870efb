//! The stage's end-of-run report (`nfv run`'s text after the tables).

use super::*;

impl NatStage {
    /// The report: counters, tables, and the first entries.
    pub(super) fn render_report(&self) -> Option<String> {
        use std::fmt::Write;
        let t = &self.table;
        let st = t.stats;
        let c = self.counters;
        let mut out = format!(
            "  sessions {} of {} ({:.1} MiB){}\n  created {} expired {} evicted {} refused-full {} ports-exhausted {} mappings-created {} ended-by-forwards {}\n  outbound {} inbound {} hairpinned {} icmp-errors {} fragments {} handed-off {}\n",
            t.len(),
            t.capacity(),
            t.bytes() as f64 / (1 << 20) as f64,
            t.class_counts().iter().map(|(n, k)| format!(", {n} {k}")).collect::<String>(),
            st.created,
            st.expired,
            st.evicted,
            st.refused_full,
            st.ports_exhausted,
            st.mappings_created,
            st.forward_ended,
            c.outbound,
            c.inbound,
            c.hairpinned,
            c.icmp_errors,
            c.fragments,
            c.handed_off
        );
        if let Some(o) = self.table.offload() {
            out += &o.report_line();
        }
        const SHOWN: usize = 16;
        // Session times are seconds of the cycle counter: shown as an age.
        let now = nfv_core::cycles::secs(nfv_core::cycles::now());
        for (s, class) in t.dump().take(SHOWN) {
            let a = |x: u32| Ipv4Addr::from(x);
            let _ = writeln!(
                out,
                "  {} {}:{} -> {}:{} <-> {}:{} ({class}, last packet {} s ago)",
                match s.proto {
                    proto::TCP => "tcp",
                    proto::UDP => "udp",
                    _ => "icmp",
                },
                a(s.in_addr),
                s.in_port,
                a(s.out_addr),
                s.out_port,
                a(s.rem_addr),
                s.rem_port,
                now.wrapping_sub(s.last_seen)
            );
        }
        if t.len() > SHOWN {
            let _ = writeln!(out, "  ... {} more", t.len() - SHOWN);
        }
        Some(out)
    }
}
