//! Rust side of the live test bed (`tests/testbed.sh`): namespaces that
//! are deleted when the value drops (a failing assertion unwinds through
//! the drop too), kernel sockets opened inside a namespace, the `nfv` DUT
//! run in its namespace, and the privilege check every live test starts
//! with.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/testbed.sh")
}

/// True when live tests can run. Otherwise prints why and returns false,
/// or panics when `NFV_REQUIRE_PRIV=1` (CI runs as root: a skip there is
/// a failure).
pub fn privileged(test: &str) -> bool {
    let why = if unsafe { libc::geteuid() } != 0 {
        Some("not root (needs network namespaces, veth and XDP)".to_string())
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("`ip` (iproute2) is not installed; run `cargo xtask setup`".to_string())
    } else {
        None
    };
    match why {
        None => true,
        Some(why) if std::env::var("NFV_REQUIRE_PRIV").as_deref() == Ok("1") => {
            panic!("{test}: cannot run: {why} (NFV_REQUIRE_PRIV=1 makes this a failure)")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// A topology built by `testbed.sh`, torn down on drop.
pub struct TestBed {
    /// Namespace prefix: namespaces are `PREFIX-gen`, `PREFIX-dut`,
    /// `PREFIX-sink`.
    pub prefix: String,
    // One bed at a time: DUT workers spin on pinned cores, and two of them
    // on a 2-core machine would starve each other's traffic.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl TestBed {
    /// Builds `topology` (`line` or `loop`) with `queues` queues per veth.
    pub fn up(topology: &str, queues: u32) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("nfvt{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let bed = Self { prefix, _serial: serial };
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &bed.prefix, topology, &queues.to_string()])
            .output()
            .expect("run testbed.sh");
        assert!(out.status.success(), "testbed up failed: {}", String::from_utf8_lossy(&out.stderr));
        bed
    }

    /// Adds a second host beside gen, namespace role `gen2`, with address
    /// `addr` (`10.0.0.3/24`) and default gateway `gw`.
    pub fn add_host(&self, addr: &str, gw: &str) {
        self.script(&["add-host", &self.prefix, addr, gw]);
    }

    /// A host `name` on sink's link (its own namespace, `ns(name)`), at
    /// `addr` (`a.b.c.d/len`), default route via `gw`.
    pub fn add_backend(&self, name: &str, addr: &str, gw: &str) {
        self.script(&["add-backend", &self.prefix, name, addr, gw]);
    }

    /// Runs `tests/testbed.sh ARGS`, failing the test if it fails.
    fn script(&self, args: &[&str]) {
        let out = Command::new("bash").arg(script()).args(args).output().expect("run testbed.sh");
        assert!(out.status.success(), "testbed.sh {}: {}", args[0], String::from_utf8_lossy(&out.stderr));
    }

    /// Full namespace name of `role` (`gen`, `dut`, `sink`).
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// MAC address of `ifname` in namespace `role`.
    pub fn mac(&self, role: &str, ifname: &str) -> [u8; 6] {
        let out = self.exec(role, &["cat", &format!("/sys/class/net/{ifname}/address")]);
        nfv_core::config::parse_mac(out.trim()).expect("MAC in sysfs")
    }

    /// Runs a command in namespace `role`; panics with its output on failure.
    pub fn exec(&self, role: &str, cmd: &[&str]) -> String {
        let out = Command::new("ip").args(["netns", "exec", &self.ns(role)]).args(cmd).output().expect("ip netns exec");
        assert!(
            out.status.success(),
            "{cmd:?} in {role} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command in namespace `role` and returns what it did,
    /// whatever its exit status.
    pub fn exec_output(&self, role: &str, cmd: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.ns(role)]).args(cmd).output().expect("ip netns exec")
    }

    /// Runs `f` on a thread that has joined namespace `role` (setns moves
    /// only the calling thread), so sockets it opens live there.
    pub fn in_ns<T: Send + 'static>(&self, role: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn_in_ns(role, f).join().expect("namespace thread panicked")
    }

    /// Like [`TestBed::in_ns`], without waiting for the thread.
    pub fn spawn_in_ns<T: Send + 'static>(
        &self,
        role: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns(role));
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on a namespace fd we opened; affects this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
    }

    /// The data network's server of scapy's gNB (tests/scapy/gnb.py): in
    /// `role`, at `addr` (`198.51.100.2:7000`), answers each "ping N" with
    /// "pong N" until `count` came (or 8 quiet seconds); returns (peer,
    /// message) of each.
    pub fn pong_server(
        &self,
        role: &str,
        addr: &'static str,
        count: usize,
    ) -> std::thread::JoinHandle<Vec<(String, String)>> {
        self.spawn_in_ns(role, move || {
            let s = std::net::UdpSocket::bind(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
            let mut buf = [0u8; 256];
            let mut seen = Vec::new();
            while let Ok((n, peer)) = s.recv_from(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                s.send_to(format!("pong {}", msg.get(5..).unwrap_or("")).as_bytes(), peer).unwrap();
                seen.push((peer.to_string(), msg));
                if seen.len() == count {
                    break;
                }
            }
            seen
        })
    }

    /// Sends `data` with nc from `client` to a listener in `server` at
    /// `addr`:`port`; returns what the listener received and whether the
    /// client succeeded (it gives up connecting after 3 s).
    pub fn nc_transfer(&self, server: &str, client: &str, addr: &str, port: &str, data: &[u8]) -> (Vec<u8>, bool) {
        // Into a file, not a pipe: a pipe nobody reads until the end fills
        // up and stalls the listener, and TCP with it.
        let path = std::env::temp_dir().join(format!("{}-{port}.bin", self.prefix));
        let mut listener = Command::new("ip")
            .args(["netns", "exec", &self.ns(server), "timeout", "20", "nc", "-l", addr, port])
            .stdout(std::fs::File::create(&path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("nc -l");
        std::thread::sleep(Duration::from_millis(300));
        let mut sender = Command::new("ip")
            .args(["netns", "exec", &self.ns(client), "timeout", "20", "nc", "-N", "-w", "3", addr, port])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("nc");
        use std::io::Write;
        let _ = sender.stdin.take().unwrap().write_all(data);
        let sent = sender.wait().unwrap().success();
        if !sent {
            // SIGTERM, not kill(): `timeout` forwards it to nc, while a
            // SIGKILL would end `timeout` alone and orphan a listener that
            // waits forever (and holds the test's output pipe open).
            unsafe { libc::kill(listener.id() as i32, libc::SIGTERM) };
        }
        let _ = listener.wait();
        let got = std::fs::read(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        (got, sent)
    }

    /// Starts `nfv run CONFIG` in the DUT namespace and waits until it has
    /// opened `sockets` AF_XDP sockets (one startup note each).
    pub fn start_nfv(&self, config: &str, sockets: usize) -> Dut {
        let path = std::env::temp_dir().join(format!("{}.toml", self.prefix));
        std::fs::write(&path, config).unwrap();
        self.start_nfv_file("dut", &path, sockets)
    }

    /// Starts `nfv run PATH` in namespace `role` (file names in it are
    /// relative to its directory) and waits for `sockets` AF_XDP sockets.
    pub fn start_nfv_file(&self, role: &str, path: &std::path::Path, sockets: usize) -> Dut {
        self.start_nfv_as(role, path, sockets, &[], &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::start_nfv_file`] with `nfv` started through `wrapper` (a
    /// command and its arguments, as `setpriv ...`) with `env` added; an
    /// `Err` with what it said when it exited before opening its sockets.
    pub fn start_nfv_as(
        &self,
        role: &str,
        path: &std::path::Path,
        sockets: usize,
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Dut, String> {
        let path = path.to_path_buf();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(wrapper)
            .args([env!("CARGO_BIN_EXE_nfv"), "run"])
            .arg(&path)
            .args(["--duration", "0", "--quiet"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nfv");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut notes = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while notes.iter().filter(|l: &&String| l.starts_with("nfv: af-xdp")).count() < sockets {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) => notes.push(l),
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    return Err(format!(
                        "nfv did not open {sockets} socket(s): {}\n{}",
                        notes.join("\n"),
                        String::from_utf8_lossy(&out.stdout)
                    ));
                }
            }
        }
        Ok(Dut { child: Some(child), notes, config: path, log: rx })
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).args(["down", &self.prefix]).status();
    }
}

/// A running `nfv`. Stopping it returns its final report; dropping it
/// unstopped kills it.
pub struct Dut {
    child: Option<Child>,
    /// Startup notes (bind modes).
    pub notes: Vec<String>,
    config: PathBuf,
    /// What it says on stderr after the notes.
    log: std::sync::mpsc::Receiver<String>,
}

/// One row of the final port table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortRow {
    pub rx: u64,
    pub tx: u64,
    pub drops: u64,
}

/// The final report of a run.
pub struct Report {
    pub text: String,
    /// Its stderr after the start-up notes.
    pub log: String,
}

impl Report {
    /// The port table row of `name`.
    pub fn port(&self, name: &str) -> PortRow {
        let line = self
            .text
            .lines()
            .skip_while(|l| !l.starts_with("port "))
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no port {name} in:\n{}", self.text));
        let f: Vec<&str> = line.split_whitespace().collect();
        let drops = f[5..].iter().filter_map(|kv| kv.split_once('=')).map(|(_, n)| n.parse::<u64>().unwrap_or(0)).sum();
        PortRow { rx: f[1].parse().unwrap(), tx: f[3].parse().unwrap(), drops }
    }

    /// What nfv's XDP program did: (packets it forwarded, flows the
    /// stages installed in it, summed over workers).
    pub fn xdp(&self) -> (u64, u64) {
        let first_number = |rest: &str| rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
        let forwarded = self
            .text
            .lines()
            .find_map(|l| first_number(l.strip_prefix("xdp: forwarded ")?))
            .unwrap_or_else(|| panic!("no xdp line in:\n{}", self.text));
        let installed =
            self.text.lines().filter_map(|l| first_number(l.strip_prefix("  xdp: flows installed ")?)).sum();
        (forwarded, installed)
    }
}

impl Dut {
    /// SIGINT, then the report it prints.
    pub fn stop(mut self) -> Report {
        let child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let log: Vec<String> = self.log.try_iter().collect();
        assert!(out.status.success(), "nfv failed: {text}\n{}", log.join("\n"));
        Report { text, log: log.join("\n") }
    }
}

impl Dut {
    /// The process id (the `ip netns exec` wrapper execs nfv in place).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM, as the kubelet stops a pod: the exit status and what nfv
    /// printed.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().unwrap();
        (out.status, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGKILL: no clean-up runs, as in a crash.
    pub fn kill_9(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Sends `count` UDP datagrams of `payload` bytes from `flows` source
/// sockets to `dst`, paced so veth queues do not overflow. Runs in the
/// calling thread's namespace.
pub fn send_udp(dst: std::net::SocketAddr, count: usize, flows: usize, payload: usize) {
    let socks: Vec<std::net::UdpSocket> =
        (0..flows).map(|_| std::net::UdpSocket::bind("0.0.0.0:0").expect("bind sender")).collect();
    let buf = vec![0x5au8; payload];
    for i in 0..count {
        socks[i % flows].send_to(&buf, dst).expect("send");
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

/// Counts UDP datagrams arriving on `sock` until `want` arrived or
/// nothing came for `quiet`.
pub fn count_udp(sock: &std::net::UdpSocket, want: usize, quiet: Duration) -> usize {
    big_receive_buffer(sock);
    sock.set_read_timeout(Some(quiet)).unwrap();
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while n < want && sock.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// Gives `sock` an 8 MiB receive buffer: the DUT's workers spin on both
/// cores of a small machine and a receiving thread may not run for a
/// while; what the tests measure is delivery, not how fast a starved
/// reader drains its socket.
pub fn big_receive_buffer(sock: &std::net::UdpSocket) {
    nfv_core::sockopt::receive_buffer(sock, 8 << 20);
}

/// `config` (AF_XDP ports d0 and d1, one worker running `chain`) on two
/// queues per port, one worker per queue.
pub fn two_workers(config: &str, chain: &str) -> String {
    let cfg = config
        .replace("interface = \"d0\"\n", "interface = \"d0\"\nqueues = 2\n")
        .replace("interface = \"d1\"\n", "interface = \"d1\"\nqueues = 2\n");
    let (head, _) = cfg.split_once("[[workers]]").expect("a workers table");
    format!(
        "{head}[[workers]]\nrx = [\"d0:0\", \"d1:0\"]\nchain = \"{chain}\"\n\n\
         [[workers]]\nrx = [\"d0:1\", \"d1:1\"]\nchain = \"{chain}\"\n"
    )
}
