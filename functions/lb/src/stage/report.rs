//! The stage's end-of-run report (`nfv run`'s text after the tables).

use super::*;

impl LbStage {
    /// The report: counters, tables, and the first entries.
    pub(super) fn render_report(&self) -> Option<String> {
        use std::fmt::Write;
        let t = &self.conns;
        let c = self.counters;
        let mut out = format!(
            "  connection table {} entries in {} ways ({:.1} MiB), created {} expired {} evicted {}\n  forwarded {} connections {} rescheduled {} icmp-too-big {} returned {} rejected {}\n",
            t.len(),
            t.capacity(),
            t.bytes() as f64 / (1 << 20) as f64,
            t.stats.created,
            t.stats.expired,
            t.stats.evicted,
            c.forwarded,
            c.new_connections,
            c.rescheduled,
            c.icmp_too_big,
            c.returned,
            c.rejected
        );
        if let Some(o) = t.offload() {
            out += &o.report_line();
        }
        for (vi, v) in self.services.vips.iter().enumerate() {
            let s = self.vip_stats.get(vi).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "  vip {} {}:{} ({:?}): packets {} bytes {} connections {}",
                if v.proto == proto::TCP { "tcp" } else { "udp" },
                Ipv4Addr::from(v.addr),
                v.port,
                v.mode,
                s.packets,
                s.bytes,
                s.connections
            );
            for (bi, b) in v.backends.iter().enumerate() {
                let s = self.backend_stats.get(vi).and_then(|s| s.get(bi)).copied().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    backend {} weight {} {:?}: packets {} connections {}",
                    Ipv4Addr::from(b.addr),
                    b.weight,
                    b.state,
                    s.packets,
                    s.connections
                );
            }
        }
        Some(out)
    }
}
