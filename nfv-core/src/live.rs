//! What of a running stage can change without a restart, and the one way
//! it changes: a reloaded configuration ([`crate::reload`]) is checked
//! whole, every stage [`Live::prepare`]s what it would publish (rule
//! sets compiled, Maglev tables rebuilt: all off the hot path), and only
//! when every stage accepted does each [`Apply`] publish its new version
//! ([`crate::published::Published`]); workers take it at their next
//! batch. A stage without `Live` changes only by a restart: a reload
//! that changes its parameters is refused.

use std::path::PathBuf;

use crate::stage::StageBuilder;

/// A prepared change: publishes the new version and says what it was, one
/// line for the operator. Runs on the reloading thread, after every stage
/// of the reload accepted its change.
pub type Apply = Box<dyn FnOnce() -> String + Send>;

/// A stage's side that changes while it runs.
pub trait Live: Send + Sync {
    /// The files its tables are read from (a rules file, a backends
    /// file): a change to one reloads the configuration as it runs, the
    /// files read again.
    fn files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    /// What `next` (this stage as a reloaded configuration defines it)
    /// changes, checked and built, ready to publish: `Ok(None)` when
    /// nothing did; `Err` lists each change that cannot be made while the
    /// stage runs (then nothing of the reload is applied). `next` is of
    /// the same kind (`as_any` downcasts it); `written` holds both
    /// parameter tables as written.
    fn prepare(&self, next: &dyn StageBuilder, written: Written<'_>) -> Result<Option<Apply>, Vec<String>>;

    /// The name of what changes (`rules`, `backends`) and the version
    /// running: 0 at the start, one more per change published.
    fn version(&self) -> (&'static str, u64);

    /// One line on what runs now (a rule set's version and size, each
    /// VIP's backends), told when the run starts.
    fn summary(&self) -> String;

    /// The table commands the stage answers under its kind (`nfv ctl acl
    /// add ...`), a usage line each; none by default.
    fn usage(&self) -> &'static [&'static str] {
        &[]
    }

    /// Runs a table command (the words after the kind, `--stage` taken
    /// out): its answer, or why it was refused. A change is published as
    /// a reload's is, a new version taken between two batches; a later
    /// reload puts back what the configuration and its files say.
    fn command(&self, _words: &[&str]) -> Result<Answer, String> {
        Err("this stage has no table commands".into())
    }

    /// Frees replaced versions no worker holds any more
    /// ([`crate::published::Published::reclaim`]); the reloading thread
    /// calls it about once a second, so a version is never freed on a
    /// worker.
    fn reclaim(&self) {}
}

/// What a table command answers: lines for a console and, for a
/// listing, its rows (`--json` prints them as objects keyed by column).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What to tell; may be empty for a bare listing.
    pub text: String,
    /// Column names and rows.
    pub table: Option<(Vec<&'static str>, Vec<Vec<String>>)>,
}

impl Answer {
    /// A line of text.
    pub fn line(text: impl Into<String>) -> Self {
        Self { text: text.into(), table: None }
    }

    /// A listing under `columns`.
    pub fn rows(columns: &[&'static str], rows: Vec<Vec<String>>) -> Self {
        Self { text: String::new(), table: Some((columns.to_vec(), rows)) }
    }
}

/// `next` as the builder type `B`, for [`Live::prepare`] (the reload
/// pairs stages by name and kind, so another type is a bug).
pub fn same<B: 'static>(next: &dyn StageBuilder) -> Result<&B, Vec<String>> {
    next.as_any().downcast_ref::<B>().ok_or_else(|| vec!["internal: a stage of another type".to_string()])
}

/// `what` changed from `old` to `new` and cannot while the stage runs:
/// one line of a refusal, or nothing when they are equal.
pub fn fixed<T: PartialEq + std::fmt::Debug>(what: &str, old: &T, new: &T) -> Option<String> {
    (old != new).then(|| format!("{what}: {old:?} -> {new:?}"))
}

/// A stage's parameters as written before and after a reload
/// ([`crate::config::StageSpec::params`]): what a stage compares to tell
/// a change it takes live from one that needs a restart.
#[derive(Clone, Copy, Debug)]
pub struct Written<'a> {
    /// The running configuration's.
    pub was: &'a toml::Value,
    /// The reloaded one's.
    pub now: &'a toml::Value,
}

impl Written<'_> {
    /// True when `key` changed.
    pub fn changed(&self, key: &str) -> bool {
        self.was.get(key) != self.now.get(key)
    }

    /// Every key that changed but the `live` ones, `key: old -> new`, in
    /// key order, each value as TOML; `strip` takes out what else changes
    /// live inside a kept key (a VTEP's flood lists inside its bridge
    /// domains).
    pub fn fixed_except(&self, live: &[&str], strip: impl Fn(&mut toml::Table)) -> Vec<String> {
        let table = |v: &toml::Value| {
            let mut t = v.as_table().cloned().unwrap_or_default();
            t.retain(|k, _| !live.contains(&k));
            strip(&mut t);
            t
        };
        let (a, b) = (table(self.was), table(self.now));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let show = |v: Option<&toml::Value>| v.map_or("(unset)".to_string(), |v| v.to_string());
        keys.into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| format!("{k}: {} -> {}", show(a.get(k)), show(b.get(k))))
            .collect()
    }
}
