//! Rules kept in a file of their own (`rules-file`), read at start and
//! again whenever it changes: a ClassBench filter set (every rule gets
//! `rules-file-action`), or, for a name ending in `.toml`, a list of rules
//! in the same form as the stage's inline `rules`, each with its action.
//!
//! ```toml
//! # fw-rules.toml
//! rules = [
//!     { action = "deny", proto = "tcp", dst-port = 23 },
//!     { action = "permit", src = "10.0.0.0/8" },
//! ]
//! ```

use nfv_core::filewatch::{entries, entry, line_column};

use crate::classbench;
use crate::config::{RuleParams, rule};
use crate::rule::{Action, Rule};

/// Where the rules come from and, for ClassBench files, their action.
#[derive(Clone, Debug)]
pub struct RulesFile {
    /// Path as configured (relative to where nfv runs).
    pub path: String,
    /// Action of every rule of a ClassBench file.
    pub action: Action,
}

pub use nfv_core::filewatch::FileError;

impl RulesFile {
    /// True for the TOML form.
    pub fn is_toml(&self) -> bool {
        self.path.ends_with(".toml")
    }

    /// Reads and checks the file: its rules in order with their origins
    /// (`path:line`), or every problem found (nothing half-loaded).
    /// `ports` resolves `ingress` names.
    pub fn load(&self, ports: &[String]) -> Result<(Vec<Rule>, Vec<String>), Vec<FileError>> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            vec![FileError {
                line: 0,
                column: 0,
                message: format!("cannot read `{}`: {e}", self.path),
                help: "the path is relative to where nfv runs".into(),
            }]
        })?;
        self.parse(&text, ports)
    }

    /// Checks `text` as this file's contents (its form by the path's
    /// name): the rules and their origins, or every problem found.
    pub fn parse(&self, text: &str, ports: &[String]) -> Result<(Vec<Rule>, Vec<String>), Vec<FileError>> {
        if self.is_toml() { self.load_toml(text, ports) } else { self.load_classbench(text) }
    }

    fn load_classbench(&self, text: &str) -> Result<(Vec<Rule>, Vec<String>), Vec<FileError>> {
        let rules = classbench::parse_rules(text, self.action).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| FileError {
                    line: e.line,
                    column: e.column,
                    message: e.message,
                    help: "ClassBench format: @SRC/LEN DST/LEN SPORT_LO : SPORT_HI DPORT_LO : DPORT_HI PROTO/MASK"
                        .into(),
                })
                .collect::<Vec<_>>()
        })?;
        // One rule per line (blank lines are not rules): origin by line.
        let lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, _)| i + 1);
        let origins = lines.map(|n| format!("{}:{n}", self.path)).collect();
        Ok((rules, origins))
    }

    fn load_toml(&self, text: &str, ports: &[String]) -> Result<(Vec<Rule>, Vec<String>), Vec<FileError>> {
        const HELP: &str =
            "rules = [{ action = \"permit\", src = \"10.0.0.0/8\", proto = \"tcp\", dst-port = 80 }, ...]";
        let env = nfv_core::BuildEnv { ports, chains: &[], base: None, defined: &[] };
        let (mut rules, mut origins, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        // Each rule read on its own: every bad one is reported.
        for item in entries(text, "rules", HELP)? {
            let (line, column) = line_column(text, item.span().start);
            let r: RuleParams = match entry(text, &item, HELP) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match rule(&r, &env) {
                Ok(ok) => {
                    rules.push(ok);
                    origins.push(format!("{}:{line}", self.path));
                }
                Err((message, help)) => errors.push(FileError { line, column, message, help }),
            }
        }
        if errors.is_empty() { Ok((rules, origins)) } else { Err(errors) }
    }
}
