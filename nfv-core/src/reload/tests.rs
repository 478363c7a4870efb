//! Reloads over a stage kind with a live table (`table`, its entries
//! inline or from a file) and one without (`fixed`).

use super::*;
use crate::config::{self, Diagnostic, Params};
use crate::live::{Live, same};
use crate::published::{Published, Snapshot};
use crate::stage::{BuildCtx, BuildEnv, Stage, StageBuilder, StageCtx, StageFactory, StageRegistry};

struct Nothing;
impl Stage for Nothing {
    fn process(&mut self, _: &mut crate::Batch, _: &mut StageCtx<'_>) {}
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableParams {
    #[serde(default)]
    entries: Vec<u32>,
    file: Option<String>,
    #[serde(default)]
    size: u32,
}

struct TableBuilder {
    live: Arc<Published<Vec<u32>>>,
    file: Option<PathBuf>,
    size: u32,
}

impl StageBuilder for TableBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn build(&self, _: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Nothing)
    }
    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Live for TableBuilder {
    fn files(&self) -> Vec<PathBuf> {
        self.file.iter().cloned().collect()
    }
    fn prepare(&self, next: &dyn StageBuilder, _: crate::live::Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let next: &TableBuilder = same(next)?;
        if next.size != self.size {
            return Err(vec![format!("size {} -> {}", self.size, next.size)]);
        }
        let entries = next.live.load().to_vec();
        if entries == *self.live.load() {
            return Ok(None);
        }
        let live = self.live.clone();
        Ok(Some(Box::new(move || {
            let line = format!("{} entries", entries.len());
            live.publish(entries);
            line
        })))
    }
    fn version(&self) -> (&'static str, u64) {
        ("entries", 0)
    }

    fn summary(&self) -> String {
        format!("{} entries", self.live.load().len())
    }
}

struct Table;
impl StageFactory for Table {
    fn kind(&self) -> &'static str {
        "table"
    }
    fn summary(&self) -> &'static str {
        "test"
    }
    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: TableParams = params.parse().map_err(|e| vec![e])?;
        let mut entries = p.entries;
        let file = p.file.map(|f| PathBuf::from(env.path(&f)));
        if let Some(f) = &file {
            let text = std::fs::read_to_string(f).map_err(|e| vec![params.error("file", e.to_string(), "here")])?;
            for w in text.split_whitespace() {
                entries.push(w.parse().map_err(|_| vec![params.error("file", format!("`{w}`"), "in this file")])?);
            }
        }
        Ok(Arc::new(TableBuilder { live: Published::new(entries), file, size: p.size }))
    }
}

struct Fixed;
struct FixedBuilder;
impl StageBuilder for FixedBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn build(&self, _: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Nothing)
    }
}
impl StageFactory for Fixed {
    fn kind(&self) -> &'static str {
        "fixed"
    }
    fn summary(&self) -> &'static str {
        "test"
    }
    fn configure(&self, _: &Params<'_>, _: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        Ok(Arc::new(FixedBuilder))
    }
}

fn registry() -> StageRegistry {
    let mut r = StageRegistry::new();
    r.register(Box::new(Table));
    r.register(Box::new(Fixed));
    r
}

fn text(table: &str, fixed: &str, workers: usize, neighbours: &str) -> String {
    let mut s = format!(
        "[[ports]]\nname = \"g\"\nkind = \"generator\"\nqueues = 2\naddresses = [\"10.0.0.1/24\"]\n\n\
         [[ports]]\nname = \"out\"\nkind = \"sink\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"table\", {table} }}, {{ kind = \"fixed\" {fixed} }}]\nthen = \"out\"\n"
    );
    for q in 0..workers {
        s += &format!("\n[[workers]]\nrx = [\"g:{q}\"]\nchain = \"c\"\n");
    }
    s + neighbours
}

/// A reloader over `text` written to a file of its own; its table.
fn reloader(name: &str, text: &str) -> (Arc<Reloader>, Arc<Published<Vec<u32>>>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("nfv-reload-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nfv.toml");
    std::fs::write(&file, text).unwrap();
    let reg = registry();
    let load = move |f: &str, t: &str| config::load(f, t, &reg).map_err(|r| r.render());
    let cfg = load(&file.display().to_string(), text).unwrap();
    let table = cfg.chains[0].stages[0].builder.as_any().downcast_ref::<TableBuilder>().unwrap().live.clone();
    (Reloader::new(cfg, Neighbours::new([]), Box::new(load)), table, file)
}

#[test]
fn a_reload_publishes_the_new_table_and_the_running_text() {
    let (r, table, file) = reloader("apply", &text("entries = [1, 2]", "", 1, ""));
    let mut worker = Snapshot::new(table.clone());
    std::fs::write(&file, text("entries = [1, 2, 3]", "", 1, "")).unwrap();
    let lines = r.reload(None).unwrap();
    assert_eq!(lines[1], "stage `c/table`: 3 entries", "{lines:?}");
    assert!(worker.refresh() && *worker == [1, 2, 3]);
    assert!(r.running().source.1.contains("[1, 2, 3]"), "show config shows what runs");
    let again = r.reload(None).unwrap();
    assert!(again[0].ends_with("applied, nothing changed"), "{again:?}");
    assert!(!worker.refresh(), "nothing published");
    assert_eq!(r.counters.applied.load(Ordering::Relaxed), 2);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// A ConfigMap mounted as a directory: the key is a symlink through
/// `..data` to a timestamped directory, and an update writes a new
/// directory and swaps `..data` (atomically, by rename). The poll sees the
/// configuration file change and reloads it.
#[test]
fn a_configmap_update_reloads_the_configuration_file() {
    let dir = std::env::temp_dir().join(format!("nfv-reload-configmap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let version = |n: u32, text: &str| {
        let d = dir.join(format!("..2026_12_04_{n}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("nfv.toml"), text).unwrap();
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..2026_12_04_{n}"), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    };
    version(1, &text("entries = [1]", "", 1, ""));
    std::os::unix::fs::symlink("..data/nfv.toml", dir.join("nfv.toml")).unwrap();
    let reg = registry();
    let load = move |f: &str, t: &str| config::load(f, t, &reg).map_err(|r| r.render());
    let file = dir.join("nfv.toml").display().to_string();
    let cfg = load(&file, &std::fs::read_to_string(&file).unwrap()).unwrap();
    let table = cfg.chains[0].stages[0].builder.as_any().downcast_ref::<TableBuilder>().unwrap().live.clone();
    let r = Reloader::new(cfg, Neighbours::new([]), Box::new(load));
    assert!(r.poll().is_empty(), "nothing changed yet");
    version(2, &text("entries = [4, 5]", "", 1, ""));
    let lines = r.poll();
    assert!(lines[0].ends_with("nfv.toml changed: reloading it"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "stage `c/table`: 2 entries"), "{lines:?}");
    assert_eq!(*table.load(), [4, 5]);
    assert!(r.poll().is_empty(), "seen once");
    // A version the configuration refuses changes nothing, and says so.
    version(3, &text("entries = [6]", "", 2, ""));
    let lines = r.poll();
    assert!(lines.iter().any(|l| l.contains("reload refused")), "{lines:?}");
    assert_eq!(*table.load(), [4, 5]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_shape_change_is_refused_with_each_difference_and_nothing_is_applied() {
    let (r, table, file) = reloader("shape", &text("entries = [1]", "", 1, ""));
    std::fs::write(&file, text("entries = [7]", "", 2, "")).unwrap();
    let lines = r.reload(None).unwrap_err();
    assert!(lines.iter().any(|l| l == "workers: 1 -> 2 (restart to apply)"), "{lines:?}");
    assert!(lines.last().unwrap().contains("refused: nothing changed"));
    assert_eq!(*table.load(), [1], "the live change in the same file is not applied");
    // A kind without live changes: its parameters are fixed; and a live
    // stage's refusal is named.
    let other = dir_file(&file, "other.toml", &text("entries = [7], size = 3", "", 1, ""));
    assert_eq!(r.reload(Some(&other)).unwrap_err()[0], "stage `c/table`: size 0 -> 3");
    let renamed = dir_file(&file, "renamed.toml", &text("entries = [7]", ", name = \"f\"", 1, ""));
    assert_eq!(
        r.reload(Some(&renamed)).unwrap_err()[0],
        "chain `c`: [table (table), fixed (fixed)] then port `out` -> [table (table), f (fixed)] then port `out` \
         (restart to apply)"
    );
    assert_eq!(*table.load(), [1]);
    let fixed = dir_file(&file, "fixed.toml", &text("entries = [1]", ", x = 1", 1, ""));
    assert_eq!(
        r.reload(Some(&fixed)).unwrap_err()[0],
        "stage `c/fixed`: its parameters changed, and a `fixed` stage cannot change them while it runs \
         (restart to apply)"
    );
    assert_eq!(r.counters.refused.load(Ordering::Relaxed), 4);
    assert!(r.running().source.1.contains("entries = [1]"), "the running text stays");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

fn dir_file(next_to: &Path, name: &str, text: &str) -> PathBuf {
    let f = next_to.with_file_name(name);
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn a_bad_file_is_refused_with_its_report() {
    let (r, table, file) = reloader("bad", &text("entries = [1]", "", 1, ""));
    std::fs::write(&file, text("entries = [1], colour = 2", "", 1, "")).unwrap();
    let lines = r.reload(None).unwrap_err();
    assert!(lines[0].contains("nfv.toml:") && lines[0].contains("unknown field `colour`"), "{lines:?}");
    let gone = r.reload(Some(Path::new("/nonexistent/nfv.toml"))).unwrap_err();
    assert!(gone[0].starts_with("cannot read `/nonexistent/nfv.toml`"), "{gone:?}");
    assert_eq!((*table.load()).clone(), [1]);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn a_changed_table_file_reloads_the_running_configuration() {
    let dir = std::env::temp_dir().join(format!("nfv-reload-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("entries"), "5 6").unwrap();
    let (r, table, file) =
        reloader("watch", &text(&format!("file = \"{}\"", dir.join("entries").display()), "", 1, ""));
    assert_eq!(*table.load(), [5, 6]);
    assert!(r.poll().is_empty(), "nothing changed");
    // The configuration file changes too, but only a reload takes it (it
    // is not a ConfigMap's key).
    std::fs::write(&file, text("entries = [9]", "", 1, "")).unwrap();
    std::fs::write(dir.join("entries"), "5 6 7").unwrap();
    let lines = r.poll();
    assert!(lines[0].ends_with(&format!("entries changed: reloading {}", file.display())), "{lines:?}");
    assert_eq!(*table.load(), [5, 6, 7], "the running configuration, its file read again");
    std::fs::write(dir.join("entries"), "5 x").unwrap();
    let lines = r.poll();
    assert!(lines.iter().any(|l| l.contains("`x`")) && lines.last().unwrap().contains("refused"), "{lines:?}");
    assert_eq!(*table.load(), [5, 6, 7]);
    assert_eq!(r.summaries(), ["c/table: 3 entries"]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

#[test]
fn static_neighbours_change_live() {
    let n = "\n[[neighbours]]\nip = \"10.0.0.7\"\nmac = \"02:00:00:00:00:07\"\nport = \"g\"\n";
    let (r, _, file) = reloader("neigh", &text("entries = [1]", "", 1, ""));
    std::fs::write(&file, text("entries = [1]", "", 1, n)).unwrap();
    let lines = r.reload(None).unwrap();
    assert_eq!(lines[1], "neighbours: set 10.0.0.7 on g; removed none", "{lines:?}");
    let ip: IpAddr = "10.0.0.7".parse().unwrap();
    assert_eq!(r.neighbours.snapshot().lookup(&ip).unwrap().mac, [2, 0, 0, 0, 0, 7]);
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}
