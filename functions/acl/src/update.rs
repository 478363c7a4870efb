//! Rule updates while traffic flows. The rule set lives in a
//! [`nfv_core::published::Published`] value: a reload (`nfv ctl reload`,
//! SIGHUP, or a change to the watched `rules-file`; see
//! [`nfv_core::reload`]) reads and checks the new rules, builds the
//! classifiers off the hot path, and publishes them; each worker takes the
//! new set at the start of its next batch (one atomic load per batch
//! otherwise). No packet waits or is dropped for an update, a batch is
//! decided wholly by one rule set, and a file with errors is refused and
//! the running rules kept.
//!
//! Counters follow rules: a rule that is in both sets keeps its hits and
//! bytes ([`carry`]); reflect flows survive updates (like conntrack
//! entries) and expire by their timeouts.

use rustc_hash::FxHashMap;

use crate::config::{Acl, Reflect};
use crate::rule::{Action, Rule};
use crate::rules_file::{FileError, RulesFile};

/// No rule of the previous set.
pub const NEW_RULE: u32 = u32::MAX;

/// Everything a rule set is compiled from: the TOML's inline rules, which
/// come first, and the rules file, read again on each update.
pub struct RuleSource {
    /// Inline rules, in order.
    pub inline: Vec<Rule>,
    /// Their origins (`rules[3]`).
    pub inline_origins: Vec<String>,
    /// The rules file, if any.
    pub file: Option<RulesFile>,
    /// Port names, for `ingress` in a TOML rules file.
    pub ports: Vec<String>,
    /// Action when no rule matches.
    pub default: Action,
    /// Action for non-IP frames.
    pub non_ip: Action,
    /// Reflect flow parameters.
    pub reflect: Reflect,
}

impl RuleSource {
    /// Reads the file and builds version `version` of the rule set.
    pub fn compile(&self, version: u64) -> Result<Acl, Vec<FileError>> {
        let (mut rules, mut origins) = (self.inline.clone(), self.inline_origins.clone());
        if let Some(f) = &self.file {
            let (r, o) = f.load(&self.ports)?;
            rules.extend(r);
            origins.extend(o);
        }
        let mut acl = Acl::new(rules, origins, self.default, self.non_ip, self.reflect);
        acl.version = version;
        Ok(acl)
    }
}

/// For each rule of `new`, the index of the same rule in `old` (equal
/// fields and action; the n-th duplicate maps to the n-th), or
/// [`NEW_RULE`].
pub fn carry(old: &[Rule], new: &[Rule]) -> Vec<u32> {
    let mut by_rule: FxHashMap<&Rule, Vec<u32>> = FxHashMap::default();
    for (i, r) in old.iter().enumerate().rev() {
        by_rule.entry(r).or_default().push(i as u32);
    }
    new.iter().map(|r| by_rule.get_mut(r).and_then(|v| v.pop()).unwrap_or(NEW_RULE)).collect()
}

/// Version `old.version + 1` of the rule set: `fresh`'s rules (a
/// reloaded configuration's, compiled off the hot path), with the carry
/// from `old`; `None` when nothing would change.
pub fn next_version(old: &Acl, fresh: &Acl) -> Option<Acl> {
    if old.rules == fresh.rules
        && old.origins == fresh.origins
        && (old.default, old.non_ip) == (fresh.default, fresh.non_ip)
    {
        return None;
    }
    let mut acl = fresh.clone();
    acl.version = old.version + 1;
    acl.carry = carry(&old.rules, &acl.rules);
    Some(acl)
}

/// True when `fresh` would decide every packet as `old` does, by the
/// same rules from the same places.
pub fn same_rules(old: &Acl, fresh: &Acl) -> bool {
    old.rules == fresh.rules
        && old.origins == fresh.origins
        && (old.default, old.non_ip) == (fresh.default, fresh.non_ip)
}

/// One line on version `acl` replacing `old`: rules kept, new and
/// removed, and what building it cost.
pub fn describe(acl: &Acl, old: &Acl) -> String {
    let kept = acl.carry.iter().filter(|&&c| c != NEW_RULE).count();
    let (s4, s6) = (acl.v4.0.stats(), acl.v6.0.stats());
    format!(
        "rules version {}: {} rules ({} kept, {} new, {} removed), built in {:.1} ms, {:.2} MiB",
        acl.version,
        acl.rules.len(),
        kept,
        acl.rules.len() - kept,
        old.rules.len() - kept,
        (s4.build_time + s6.build_time).as_secs_f64() * 1e3,
        (s4.bytes + s6.bytes) as f64 / (1 << 20) as f64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dport: u16, action: Action) -> Rule {
        Rule {
            src: None,
            dst: None,
            sport: (0, u16::MAX),
            dport: (dport, dport),
            proto: (6, 0xff),
            tcp_flags: (0, 0),
            ingress: None,
            action,
        }
    }

    #[test]
    fn counters_follow_equal_rules_whatever_their_position() {
        let old = [r(22, Action::Permit), r(80, Action::Permit), r(80, Action::Permit), r(23, Action::Deny)];
        let new = [r(80, Action::Permit), r(443, Action::Permit), r(22, Action::Permit), r(80, Action::Permit)];
        assert_eq!(carry(&old, &new), vec![1, NEW_RULE, 0, 2]);
        assert_eq!(carry(&old, &[r(22, Action::Deny)]), vec![NEW_RULE], "another action is another rule");
    }
}
