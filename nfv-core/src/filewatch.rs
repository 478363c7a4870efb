//! Noticing that a file changed, for stages that take updates from a file
//! while they run (ACL rules, load-balancer backends): its modification
//! time, length and inode, polled by a control task. A Kubernetes
//! ConfigMap update swaps a symlink and an editor may rewrite in place;
//! either changes one of these.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: m.modified().ok(), len: m.len(), inode: m.ino() })
}

/// A file and the version of it last seen.
pub struct FileWatch {
    path: PathBuf,
    seen: Option<Stamp>,
}

impl FileWatch {
    /// Watches `path`, as it is now (its current version counts as seen).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let seen = stamp(&path);
        Self { path, seen }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once per change of the file since the last call (a file that
    /// disappears counts as a change, and so does its return).
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        let changed = now != self.seen;
        self.seen = now;
        changed
    }
}

/// A problem in a file read while running, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

impl FileError {
    /// `path:line:column: message`, or the message alone when the file
    /// could not be read at all (line 0).
    pub fn located(&self, path: &str) -> String {
        if self.line == 0 {
            self.message.clone()
        } else {
            format!("{path}:{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

/// The entries of the array `key` (`key = [...]` or `[[key]]` tables) of
/// the TOML file `text`, each kept with its place so it can be read on
/// its own ([`entry`]): one bad entry does not hide the next. Syntax
/// errors, a missing `key` and unknown keys come back, every one, located.
pub fn entries<'a>(text: &'a str, key: &str, help: &str) -> Result<Vec<Spanned<DeValue<'a>>>, Vec<FileError>> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        FileError { line, column, message, help: help.into() }
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .iter()
            .map(|e| at(e.span().map_or(0, |s| s.start), e.message().trim().to_string()))
            .collect());
    }
    let (mut found, mut errors) = (None, Vec::new());
    for (k, v) in doc.into_inner() {
        match (k.get_ref().as_ref() == key, v.into_inner()) {
            (true, DeValue::Array(a)) => found = Some(a),
            (true, _) => errors.push(at(k.span().start, format!("`{key}` must be an array"))),
            (false, _) => errors.push(at(k.span().start, format!("unknown key `{}`", k.get_ref()))),
        }
    }
    match found {
        Some(a) if errors.is_empty() => Ok(a.into_iter().collect()),
        None if errors.is_empty() => Err(vec![at(0, format!("no `{key}`"))]),
        _ => Err(errors),
    }
}

/// Reads one entry of [`entries`] as `T` (use `deny_unknown_fields`),
/// the error located at the offending key or value.
pub fn entry<T: DeserializeOwned>(text: &str, item: &Spanned<DeValue<'_>>, help: &str) -> Result<T, FileError> {
    T::deserialize(ValueDeserializer::from(item.clone())).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(item.span().start, |s| s.start));
        FileError { line, column, message: e.message().trim().to_string(), help: help.into() }
    })
}

/// The 1-based (line, column) of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    (line, before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_a_replacement_and_a_removal_are_changes() {
        let dir = std::env::temp_dir().join(format!("nfv-filewatch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("backends.toml");
        std::fs::write(&f, "a").unwrap();
        let mut w = FileWatch::new(&f);
        assert!(!w.changed(), "as it was");
        std::fs::write(&f, "ab").unwrap();
        assert!(w.changed() && !w.changed(), "rewritten, once");
        let tmp = dir.join("new");
        std::fs::write(&tmp, "xy").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert!(w.changed(), "replaced (another inode)");
        std::fs::remove_file(&f).unwrap();
        assert!(w.changed(), "gone");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
