//! The stage's end-of-run report (`nfv run`'s text after the tables).

use super::*;

impl VtepStage {
    /// The report: counters, tables, and the first entries.
    pub(super) fn render_report(&self) -> Option<String> {
        use std::fmt::Write;
        let s = &self.stats;
        let f = &self.fdb.stats;
        let mut out = format!(
            "  encapsulated {} decapsulated {} flooded {} replicas {} (refused {}) too-big-replies {} arp-suppressed {}; fdb {} entries, learned {} moved {} aged {} refused-full {}\n",
            s.encapsulated,
            s.decapsulated,
            s.flooded,
            s.replicas,
            s.replicas_refused,
            s.too_big_replies,
            s.arp_suppressed,
            self.fdb.len(),
            f.learned,
            f.moved,
            f.aged,
            f.full
        );
        if let Some(o) = self.fdb.offload() {
            out += &o.report_line();
        }
        for (vni, mac, dest, is_static, age) in self.fdb.dump(self.last_now) {
            let mac = mac.map(|b| format!("{b:02x}")).join(":");
            let dest = match dest {
                Dest::Local(p) => format!("port {}", self.v.port_names.get(p as usize).map_or("?", |n| n.as_str())),
                Dest::Remote(id) => format!("vtep {}", self.remotes[id as usize]),
            };
            let kind = if is_static {
                "static".to_string()
            } else {
                format!("{:.1}s", age as f64 / nfv_core::cycles::ticks_per_sec())
            };
            let _ = writeln!(out, "  fdb vni {vni} {mac} -> {dest} ({kind})");
        }
        Some(out)
    }
}
