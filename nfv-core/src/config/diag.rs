//! Located configuration errors and their rendering (rustc-style, via
//! codespan-reporting): file:line:column, the line, a caret, and a hint.

use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Chars, Config as TermConfig};

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the source the problem is about.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// Short text under the caret: what was expected.
    pub label: String,
    /// Extra lines: what to change.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>, label: impl Into<String>) -> Self {
        Self { span, message: message.into(), label: label.into(), help: None }
    }

    /// Adds a hint on what to change.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds to the hint (after a suggestion already made).
    pub fn also(mut self, more: impl Into<String>) -> Self {
        let more = more.into();
        self.help = Some(match self.help.take() {
            Some(h) => format!("{h}\n{more}"),
            None => more,
        });
        self
    }
}

/// Every problem found in one file, ready to print.
#[derive(Clone, Debug)]
pub struct Report {
    /// File name as given by the user.
    pub file: String,
    /// The file's text.
    pub source: String,
    /// The problems, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Plain-text rendering: one block per problem, then a count.
    pub fn render(&self) -> String {
        let file = SimpleFile::new(&self.file, &self.source);
        let config = TermConfig { chars: Chars::ascii(), ..TermConfig::default() };
        let mut out = String::new();
        for d in &self.diagnostics {
            let end = d.span.end.max(d.span.start + 1).min(self.source.len().max(1));
            let start = d.span.start.min(end.saturating_sub(1));
            let mut cs = CsDiagnostic::error()
                .with_message(&d.message)
                .with_labels(vec![Label::primary((), start..end).with_message(&d.label)]);
            if let Some(h) = &d.help {
                cs = cs.with_notes(vec![format!("help: {h}")]);
            }
            match term::emit_into_string(&config, &file, &cs) {
                Ok(s) => out.push_str(&s),
                Err(_) => {
                    out.push_str(&format!("error: {} ({}:{}..{})\n", d.message, self.file, d.span.start, d.span.end))
                }
            }
        }
        let n = self.diagnostics.len();
        out.push_str(&format!("{}: {n} error{} found, nothing started\n", self.file, if n == 1 { "" } else { "s" }));
        out
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Report {}
