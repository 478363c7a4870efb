//! Reloading the configuration while traffic flows: `nfv ctl reload
//! [FILE]`, SIGHUP, and a change to a file a stage reads its tables from
//! (a rules file, a backends file) all come here, and this is the only
//! way a running configuration changes.
//!
//! A reload reads the file and checks it exactly as `nfv check` does. What
//! cannot change while workers run (ports, workers, chains and the stages
//! in them, `[run]`, `[management]`, the parameters of a stage kind
//! without [`Live`]) is compared with the running configuration, and any
//! difference refuses the whole reload, each difference named. Otherwise
//! every live stage prepares its new tables off the hot path
//! ([`Live::prepare`]); only when all of them accepted are they published,
//! with the static neighbours. A bad file changes nothing.
//!
//! The stages keep running their own state: established flows, NAT
//! sessions, reflect flows and counters live in the workers and are not
//! touched; a rule set or a backend table is replaced between two batches.
//!
//! [`Live`]: crate::live::Live
//! [`Live::prepare`]: crate::live::Live::prepare

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::{Config, NeighbourSpec, PortSpec};
use crate::filewatch::FileWatch;
use crate::graph::End;
use crate::live::{Apply, Written};
use crate::neighbour::Neighbours;

/// Reads a configuration: (file name, text) to a checked [`Config`], or
/// the rendered report of every problem (what `nfv check` prints).
pub type Loader = Box<dyn Fn(&str, &str) -> Result<Config, String> + Send + Sync>;

/// Where a run's log lines go.
type Log = Box<dyn Fn(&str) + Send + Sync>;

/// How reloads went, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadCounters {
    /// Reloads applied (whether or not anything changed).
    pub applied: AtomicU64,
    /// Reloads refused (a bad file, a change that needs a restart).
    pub refused: AtomicU64,
    /// Unix time in seconds of the last applied reload, 0 before one.
    pub last_applied: AtomicU64,
}

/// The configuration running, and everything that changes it.
pub struct Reloader {
    loader: Loader,
    /// Where what each reload did is told (the run's log), whoever asked.
    log: std::sync::OnceLock<Log>,
    neighbours: Arc<Neighbours>,
    running: Mutex<Running>,
    /// How reloads went.
    pub counters: ReloadCounters,
}

struct Running {
    /// The configuration as last applied; its stages' builders are the
    /// ones the workers were built from (a reload keeps them and publishes
    /// into their tables).
    config: Config,
    /// The files the live stages read, as last seen.
    watches: Vec<FileWatch>,
    /// The configuration file itself when it is a key of a mounted
    /// Kubernetes ConfigMap (a `..data` symlink beside it, which an update
    /// swaps to a new directory, changing the file's inode): a change
    /// reloads it as `nfv ctl reload` does. Elsewhere an edit waits for
    /// a reload (SIGHUP, `nfv ctl reload`), as nginx's and Prometheus's do.
    source: Option<FileWatch>,
}

fn source_watch(cfg: &Config) -> Option<FileWatch> {
    let name = Path::new(&cfg.source.0);
    let data = name.parent()?.join("..data");
    std::fs::symlink_metadata(data).is_ok_and(|m| m.file_type().is_symlink()).then(|| FileWatch::new(name))
}

/// The file a stage's tables come from, by configuration.
fn watched(cfg: &Config) -> BTreeSet<PathBuf> {
    cfg.nodes().into_iter().filter_map(|(_, s)| s.builder.live()).flat_map(|l| l.files()).collect()
}

impl Reloader {
    /// Takes over `config`, the one the runtime was built from.
    pub fn new(config: Config, neighbours: Arc<Neighbours>, loader: Loader) -> Arc<Self> {
        let watches = watched(&config).into_iter().map(FileWatch::new).collect();
        let source = source_watch(&config);
        Arc::new(Self {
            loader,
            log: std::sync::OnceLock::new(),
            neighbours,
            running: Mutex::new(Running { config, watches, source }),
            counters: ReloadCounters::default(),
        })
    }

    /// Tells `log` what every reload from now on did (applied or
    /// refused, each line), whoever asked for it.
    pub fn set_log(&self, log: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.log.set(Box::new(log));
    }

    /// Tells the run's log `lines` (a table changed over `nfv ctl`, too).
    pub fn tell(&self, lines: &[String]) {
        if let Some(log) = self.log.get() {
            lines.iter().for_each(|l| log(l));
        }
    }

    /// The configuration running (its file name and text are what `nfv ctl
    /// show config` prints).
    pub fn running(&self) -> Config {
        self.running.lock().expect("reload lock").config.clone()
    }

    /// What each live stage runs now, `chain/stage: summary`.
    pub fn summaries(&self) -> Vec<String> {
        let run = self.running.lock().expect("reload lock");
        let cfg = &run.config;
        cfg.nodes()
            .into_iter()
            .filter_map(|(c, s)| Some(format!("{}/{}: {}", cfg.chains[c].name, s.name, s.builder.live()?.summary())))
            .collect()
    }

    /// Reads `file` (none: the running configuration's file again) and
    /// applies it: `Ok` with a line per change, or `Err` with every
    /// problem and difference; then nothing changed.
    pub fn reload(&self, file: Option<&Path>) -> Result<Vec<String>, Vec<String>> {
        let (name, text) = {
            let run = self.running.lock().expect("reload lock");
            let (name, text) = &run.config.source;
            match file {
                Some(f) => (f.display().to_string(), None),
                // The embedded quickstart has no file: its text again.
                None if name.starts_with('<') => (name.clone(), Some(text.to_string())),
                None => (name.clone(), None),
            }
        };
        let text = match text {
            Some(t) => t,
            None => {
                std::fs::read_to_string(&name).map_err(|e| self.refused(vec![format!("cannot read `{name}`: {e}")]))?
            }
        };
        self.apply_text(&name, &text)
    }

    /// Reloads when a watched file changed (the configuration file read
    /// again; for a stage's file the running configuration's text, its
    /// files read again), and frees replaced table versions no worker
    /// holds. Lines worth telling the operator.
    pub fn poll(&self) -> Vec<String> {
        let own = {
            let mut run = self.running.lock().expect("reload lock");
            run.source.as_mut().is_some_and(|w| w.changed()).then(|| run.config.source.0.clone())
        };
        if let Some(name) = own {
            let mut lines = vec![format!("{name} changed: reloading it")];
            self.tell(&lines);
            match self.reload(None) {
                Ok(l) | Err(l) => lines.extend(l),
            }
            return lines;
        }
        let (changed, name, text) = {
            let mut run = self.running.lock().expect("reload lock");
            for (_, s) in run.config.nodes() {
                if let Some(l) = s.builder.live() {
                    l.reclaim();
                }
            }
            // Every watch looked at: each notes the version it saw.
            let changed: Vec<String> =
                run.watches.iter_mut().filter_map(|w| w.changed().then(|| w.path().display().to_string())).collect();
            let (name, text) = run.config.source.clone();
            (changed, name, text)
        };
        if changed.is_empty() {
            return Vec::new();
        }
        let mut lines = vec![format!("{} changed: reloading {name}", changed.join(", "))];
        self.tell(&lines);
        match self.apply_text(&name, &text) {
            Ok(l) | Err(l) => lines.extend(l),
        }
        lines
    }

    fn refused(&self, mut lines: Vec<String>) -> Vec<String> {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        lines.push("reload refused: nothing changed, the running configuration stays".into());
        lines
    }

    /// Checks and applies configuration `text` read from `name`, and
    /// tells the log what came of it.
    fn apply_text(&self, name: &str, text: &str) -> Result<Vec<String>, Vec<String>> {
        let outcome = self.check_and_apply(name, text);
        match &outcome {
            Ok(lines) | Err(lines) => self.tell(lines),
        }
        outcome
    }

    fn check_and_apply(&self, name: &str, text: &str) -> Result<Vec<String>, Vec<String>> {
        // Read and checked before the lock: a big rule set compiles while
        // `show config` and metrics still answer.
        let next = (self.loader)(name, text).map_err(|report| self.refused(vec![report]))?;
        let mut guard = self.running.lock().expect("reload lock");
        let Running { config: old, watches, source } = &mut *guard;
        let mut refusals = differences(old, &next);
        let mut applies: Vec<(String, Apply)> = Vec::new();
        if refusals.is_empty() {
            // Same chains and stages: the nodes pair one to one.
            for ((c, o), (_, n)) in old.nodes().into_iter().zip(next.nodes()) {
                let at = format!("stage `{}/{}`", old.chains[c].name, o.name);
                match o.builder.live() {
                    Some(l) => match l.prepare(n.builder.as_ref(), Written { was: &o.params, now: &n.params }) {
                        Ok(Some(apply)) => applies.push((at, apply)),
                        Ok(None) => {}
                        Err(es) => refusals.extend(es.into_iter().map(|e| format!("{at}: {e}"))),
                    },
                    None if o.params != n.params => refusals.push(format!(
                        "{at}: its parameters changed, and a `{}` stage cannot change them while it runs \
                         (restart to apply)",
                        o.kind
                    )),
                    None => {}
                }
            }
        }
        if !refusals.is_empty() {
            drop(guard);
            return Err(self.refused(refusals));
        }
        let mut lines: Vec<String> = applies.into_iter().map(|(at, apply)| format!("{at}: {}", apply())).collect();
        lines.extend(self.neighbours(&old.neighbours, &next.neighbours, &old.ports));
        // Watches: the files the new configuration reads; one already
        // watched keeps the version it saw.
        let files = watched(&next);
        watches.retain(|w| files.contains(w.path()));
        for f in files {
            if !watches.iter().any(|w| w.path() == f) {
                watches.push(FileWatch::new(f));
            }
        }
        // Another file named by `nfv ctl reload FILE` is watched from now.
        if source.as_ref().is_none_or(|w| w.path() != Path::new(&next.source.0)) {
            *source = source_watch(&next);
        }
        // The new configuration, its stages still the running builders.
        let builders: Vec<_> = old.nodes().into_iter().map(|(_, s)| s.builder.clone()).collect();
        let mut next = next;
        for s in next.chains.iter_mut().flat_map(|c| c.stages.iter_mut()) {
            s.builder = builders[s.node].clone();
        }
        *old = next;
        self.counters.applied.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.counters.last_applied.store(now, Ordering::Relaxed);
        if lines.is_empty() {
            lines.push(format!("{name}: applied, nothing changed"));
        } else {
            lines.insert(0, format!("{name}: applied"));
        }
        Ok(lines)
    }

    /// Publishes the new static neighbours and asks for the new ones to
    /// resolve.
    fn neighbours(&self, old: &[NeighbourSpec], new: &[NeighbourSpec], ports: &[PortSpec]) -> Vec<String> {
        let key = |n: &NeighbourSpec| (n.ip, n.mac, n.port);
        let was: BTreeSet<_> = old.iter().map(key).collect();
        let now: BTreeSet<_> = new.iter().map(key).collect();
        if was == now {
            return Vec::new();
        }
        let statics: Vec<(IpAddr, [u8; 6], crate::PortId)> =
            new.iter().filter_map(|n| Some((n.ip, n.mac?, n.port))).collect();
        self.neighbours.set_statics(&statics);
        let table = self.neighbours.snapshot();
        for n in new.iter().filter(|n| n.mac.is_none() && !was.contains(&key(n))) {
            table.request(n.ip);
        }
        let show = |s: &BTreeSet<(IpAddr, Option<[u8; 6]>, crate::PortId)>, o: &BTreeSet<_>| -> Vec<String> {
            s.difference(o).map(|(ip, _, p)| format!("{ip} on {}", ports[*p as usize].name)).collect()
        };
        let (added, removed) = (show(&now, &was), show(&was, &now));
        vec![format!("neighbours: set {}; removed {}", or_none(&added), or_none(&removed))]
    }

    /// Runs the reloads that are not asked for over `nfv ctl`: SIGHUP
    /// (`hup` set by the signal handler) and watched files, about once a
    /// second; what each did goes to the log ([`Reloader::set_log`]),
    /// after what runs at the start.
    pub fn spawn(self: Arc<Self>, hup: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("nfv-reload".into())
            .spawn(move || {
                self.tell(&self.summaries());
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if hup.swap(false, Ordering::Relaxed) {
                        self.tell(&["SIGHUP: reloading".to_string()]);
                        let _ = self.reload(None);
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        self.poll();
                    }
                }
            })
            .expect("spawn the reload thread")
    }
}

fn or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// What differs between `old` and `new` that cannot change while the
/// workers run, one line each.
pub fn differences(old: &Config, new: &Config) -> Vec<String> {
    let mut d = Vec::new();
    let mut fixed = |what: String, a: String, b: String| {
        if a != b {
            d.push(format!("{what}: {a} -> {b} (restart to apply)"));
        }
    };
    let (ro, rn) = (&old.run, &new.run);
    fixed("[run] batch-size".into(), ro.batch_size.to_string(), rn.batch_size.to_string());
    fixed("[run] frames-per-worker".into(), ro.frames_per_worker.to_string(), rn.frames_per_worker.to_string());
    fixed("[run] duration".into(), ro.duration.to_string(), rn.duration.to_string());
    fixed("[run] stats-interval".into(), ro.stats_interval.to_string(), rn.stats_interval.to_string());
    fixed("[management]".into(), format!("{:?}", old.management), format!("{:?}", new.management));
    let names = |ports: &[PortSpec]| ports.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", ");
    fixed("ports".into(), names(&old.ports), names(&new.ports));
    for (o, n) in old.ports.iter().zip(&new.ports).filter(|(o, n)| o.name == n.name) {
        let port = |p: &PortSpec| {
            // An AF_XDP port's MAC comes from its interface unless written.
            let mac =
                if p.mac_configured { format!(" mac {}", crate::config::mac_text(&p.mac)) } else { String::new() };
            let addrs: Vec<String> = p.addresses.iter().map(|a| format!("{}/{}", a.addr, a.prefix)).collect();
            let profile = p.profile.as_ref().map(|h| format!(" profile {}", h.identity.name)).unwrap_or_default();
            format!("{:?} queues {}{mac} addresses [{}]{profile}", p.kind, p.queues, addrs.join(", "))
        };
        fixed(format!("port `{}`", o.name), port(o), port(n));
    }
    fixed("workers".into(), old.workers.len().to_string(), new.workers.len().to_string());
    for (i, (o, n)) in old.workers.iter().zip(&new.workers).enumerate() {
        let worker = |c: &Config, w: &crate::config::WorkerSpec| {
            let rx: Vec<String> = w.rx.iter().map(|(p, q)| format!("{}:{q}", c.ports[*p as usize].name)).collect();
            let core = w.core.map_or("any".to_string(), |c| c.to_string());
            format!("core {core} rx [{}] chain `{}`", rx.join(", "), c.chains[w.chain].name)
        };
        fixed(format!("worker {i}"), worker(old, o), worker(new, n));
    }
    let chains = |c: &Config| c.chains.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(", ");
    fixed("chains".into(), chains(old), chains(new));
    for (o, n) in old.chains.iter().zip(&new.chains).filter(|(o, n)| o.name == n.name) {
        let chain = |c: &Config, ch: &crate::config::ChainSpec| {
            let stages: Vec<String> = ch
                .stages
                .iter()
                .map(|s| {
                    let to: Vec<&str> =
                        s.builder.branches().iter().map(|(b, _)| c.chains[*b as usize].name.as_str()).collect();
                    let used = if s.defines { "" } else { "use " };
                    let branches = if to.is_empty() { String::new() } else { format!(" -> {}", to.join("|")) };
                    format!("{used}{} ({}){branches}", s.name, s.kind)
                })
                .collect();
            let then = match ch.then {
                End::Chain(t) => format!("chain `{}`", c.chains[t as usize].name),
                End::Port(p) => format!("port `{}`", c.ports[p as usize].name),
                End::Ingress => "ingress".into(),
                End::Drop => "drop".into(),
            };
            format!("[{}] then {then}", stages.join(", "))
        };
        fixed(format!("chain `{}`", o.name), chain(old, o), chain(new, n));
    }
    d
}

#[cfg(test)]
mod tests;
