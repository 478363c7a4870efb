//! The `nfv ctl` socket: a UNIX stream socket (mode 0600: whoever may
//! change the data plane owns it), one JSON request line and one JSON
//! answer per connection, served on the management plane's own thread.
//!
//! The request carries the command's words as typed (`["show",
//! "runtime"]`); the answer both the text a console shows and the JSON
//! `--json` prints, so the client needs no knowledge of the commands.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::State;
use crate::show::{self, Samples};

/// What `nfv ctl` sends.
#[derive(Serialize, Deserialize, Debug)]
pub struct Request {
    /// The command's words.
    pub args: Vec<String>,
}

/// What it gets back.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Answer {
    /// False when the command was refused; `text` says why.
    pub ok: bool,
    /// For a console.
    pub text: String,
    /// For tooling (`--json`).
    pub json: Value,
}

impl Answer {
    fn ok((text, json): (String, Value)) -> Self {
        Self { ok: true, text, json }
    }

    fn refused(text: String) -> Self {
        Self { ok: false, json: Value::String(text.clone()), text }
    }
}

/// The commands this build answers, for the refusal of anything else.
const COMMANDS: &str = "show runtime | show errors | show ports | show latency | show plan | show config | show trace | trace add N [--stage S] | trace clear | capture --stage S --count N --out F.pcap | reload [FILE]";

/// Answers one request.
pub(crate) fn answer(args: &[String], s: &State, samples: &Samples) -> Answer {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["show", "runtime"] => Answer::ok(show::runtime(s, samples)),
        ["show", "errors"] => Answer::ok(show::errors(s)),
        ["show", "ports"] => Answer::ok(show::ports(s, samples)),
        ["show", "latency"] => Answer::ok(crate::latency::show(&s.latency, &s.telemetry)),
        ["show", "plan"] => Answer::ok(show::plan(s)),
        ["show", "config"] => {
            let cfg = s.reloader.running();
            let ((file, text), summary) = (&cfg.source, cfg.summary());
            let json = serde_json::json!({ "file": file, "text": &**text, "summary": summary });
            Answer::ok((format!("# {file}: {summary}\n{text}"), json))
        }
        ["reload"] => reload(s, None),
        ["reload", file] => reload(s, Some(Path::new(file))),
        ["show", "trace"] => Answer::ok(crate::trace::show(&s.trace, &s.traces)),
        ["trace", "clear"] => Answer::ok(crate::trace::clear(&s.trace, &s.traces)),
        ["trace", "add", rest @ ..] => match crate::trace::add(&s.trace, &s.traces, rest, &graph_stages(s)) {
            Ok(a) => Answer::ok(a),
            Err(e) => Answer::refused(e),
        },
        ["capture", rest @ ..] => {
            match crate::trace::capture(&s.trace, &s.traces, rest, &graph_stages(s), Duration::from_secs(10)) {
                Ok(a) => Answer::ok(a),
                Err(e) => Answer::refused(e),
            }
        }
        _ => match crate::tables::answer(s, &words) {
            Some(Ok(a)) => Answer::ok(a),
            Some(Err(e)) => Answer::refused(e),
            None => Answer::refused(format!(
                "unknown command `{}`; known: {COMMANDS} | {}",
                words.join(" "),
                crate::tables::usage(s).join(" | ")
            )),
        },
    }
}

/// The graph's stages (not the worker's own rx, dispatch, tx).
/// `reload [FILE]`: the reloader's lines, refused when it refused.
fn reload(s: &State, file: Option<&Path>) -> Answer {
    let applied = s.reloader.reload(file);
    let ok = applied.is_ok();
    let lines = applied.unwrap_or_else(|e| e);
    let json = serde_json::json!({ "applied": ok, "lines": lines });
    let text = lines.join("\n") + "\n";
    if ok { Answer::ok((text, json)) } else { Answer { json, ..Answer::refused(text) } }
}

fn graph_stages(s: &State) -> Vec<String> {
    s.telemetry.latency.first().map(|x| x.stage_names.clone()).unwrap_or_default()
}

/// Binds `path`: its directory is created, a socket file left by a
/// process that is gone is replaced, one a live process answers on is
/// not (`Err` says so).
pub(crate) fn bind(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        // A directory we create is ours alone: no window between bind and
        // chmod in which another user could connect (an existing one keeps
        // what its owner gave it).
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by another nfv", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok(l)
}

/// Serves `listener` until `stop`; a connection is woken by the handle
/// that sets it (see [`crate::Management`]).
pub(crate) fn serve(listener: UnixListener, s: State, samples: Arc<Samples>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut conn) = conn else { continue };
        // A client that never writes must not hold the console.
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let a = match BufReader::new(&conn).read_line(&mut line) {
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(r) => answer(&r.args, &s, &samples),
                Err(e) => Answer::refused(format!("not a request: {e}")),
            },
            Err(e) => Answer::refused(format!("reading the request: {e}")),
        };
        let _ = serde_json::to_writer(&mut conn, &a).map(|_| conn.write_all(b"\n"));
    }
}

/// Sends `args` to the nfv listening on `socket` and returns its answer
/// (the client side of `nfv ctl`).
pub fn request(socket: &Path, args: &[String]) -> Result<Answer, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach nfv at {}: {e} (is it running? its [management] socket, or --socket PATH)",
            socket.display()
        )
    })?;
    // A capture waits up to 10 s for its packets.
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut line = serde_json::to_string(&Request { args: args.to_vec() }).expect("a request serialises");
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(|e| format!("sending to {}: {e}", socket.display()))?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    serde_json::from_str(&reply).map_err(|e| format!("bad answer from {}: {e}", socket.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_socket_and_a_directory_made_for_it_are_the_owners_alone() {
        let base = std::env::temp_dir().join(format!("nfv-ctl-perm-{}", std::process::id()));
        let path = base.join("run/nfv/nfv.sock");
        let _l = super::bind(&path).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "the socket");
        assert_eq!(mode(path.parent().unwrap()), 0o700, "the directory it needed");
        assert!(super::bind(&path).unwrap_err().contains("in use by another nfv"));
        let _ = std::fs::remove_dir_all(&base);
    }
}
