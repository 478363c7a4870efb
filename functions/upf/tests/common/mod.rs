//! Shared by the UPF's tests: a `upf` stage built from TOML and run one
//! frame at a time, frame helpers, and tshark's PFCP dissector on what our
//! N4 endpoint sent.

#![allow(dead_code)]

use std::process::Command;

use nfv_core::BuildCtx;
use nfv_core::packet::VerdictKind;
use nfv_testkit::{FrameRunner, two_port_config};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

/// The N3 and N6 ports of [`Upf`], their MACs, the gNB's and the N6
/// gateway's.
pub const N3: u16 = 0;
pub const N6: u16 = 1;
pub const OUR_N3: [u8; 6] = [2, 0, 0, 0, 3, 3];
pub const OUR_N6: [u8; 6] = [2, 0, 0, 0, 6, 6];
pub const GNB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x9b];
pub const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x66];

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// scapy's PFCP Association Setup Request and Session Establishment
/// Request (tests/scapy/pfcp_template.py: node 127.0.0.2, UE 10.45.0.9;
/// the caller has checked that scapy is there).
pub fn pfcp_templates() -> (Vec<u8>, Vec<u8>) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scapy/pfcp_template.py");
    let out = Command::new("/usr/bin/python3").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let template = |name: &str| {
        unhex(text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap_or_else(|| panic!("{text}")))
    };
    (template("associate"), template("establish"))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    [&dst[..], &src[..], &[0x08, 0x00], ip].concat()
}

/// scapy's reading of frame `f`, one line (None after saying why, when
/// scapy is missing outside CI).
pub fn scapy_reads(f: &[u8], expr: &str) -> Option<String> {
    let script = format!(
        "import sys\nfrom scapy.all import Ether, IP, IPv6, UDP\nfrom scapy.contrib.gtp import *\np = Ether(bytes.fromhex(sys.argv[1]))\nprint({expr})"
    );
    match Command::new("/usr/bin/python3").args(["-c", &script, &hex(f)]).output() {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'scapy'") => {
            if std::env::var("NFV_REQUIRE_PRIV").as_deref() == Ok("1") {
                panic!("scapy is needed: run cargo xtask setup");
            }
            eprintln!("SKIPPED: scapy not installed (cargo xtask setup)");
            None
        }
        Ok(o) => panic!("scapy: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("python3: {e}"),
    }
}

/// A downlink frame from the data network (198.51.100.9:53, through the
/// N6 gateway) to UE address `ue`, UDP port `port`, carrying `payload`.
pub fn to_ue(ue: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW_MAC, OUR_N6)
        .ipv4([198, 51, 100, 9], ue, 63)
        .udp(53, port)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// The gNB's address over IPv6 (fd00::2).
pub const GNB6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// One `upf` stage (its parameters as an inline TOML table) between N3
/// and N6, the gNB 10.10.0.2 (and fd00::2) and gateway 198.51.100.1 its
/// neighbours.
pub struct Upf {
    pub stage: Box<dyn nfv_core::Stage>,
    pub reasons: &'static [&'static str],
    pub runner: FrameRunner,
}

impl Upf {
    /// The stage of `params` (an inline TOML table).
    pub fn new(params: &str) -> Self {
        Self::of(&Self::config(params))
    }

    /// The configuration of a chain of the stage `params`.
    pub fn config(params: &str) -> nfv_core::config::Config {
        two_port_config("upf.toml", ["n3", "n6"], params, nfv_upf::register).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The stage of `cfg` (from [`Upf::config`]).
    pub fn of(cfg: &nfv_core::config::Config) -> Self {
        let macs = [OUR_N3, OUR_N6];
        let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let b = &cfg.chains[0].stages[0].builder;
        let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
        Self {
            stage: b.build(&ctx),
            reasons: b.drop_reasons(),
            runner: FrameRunner::new([
                (ip([10, 10, 0, 2]), GNB_MAC, N3),
                (std::net::IpAddr::from(GNB6), GNB_MAC, N3),
                (ip([198, 51, 100, 1]), GW_MAC, N6),
            ]),
        }
    }

    /// Frame `f` arriving on `port`: the verdict (`out:PORT` or the drop
    /// reason) and the frame as it left.
    pub fn run(&mut self, port: u16, f: &[u8]) -> (String, Vec<u8>) {
        let (v, _, out) = self.runner.run(&mut *self.stage, port, f);
        let v = match v {
            VerdictKind::Drop(r) => self.reasons[r.0 as usize].to_string(),
            VerdictKind::Out(p) => format!("out:{p}"),
            other => format!("{other:?}"),
        };
        (v, out)
    }
}

/// tshark's verbose decoding of PFCP messages (given as hex), each in
/// IPv4/UDP from and to port 8805; fails the test on a dissector warning,
/// an error or a malformed message, and unless every message decodes as
/// PFCP.
pub fn pfcp_in_tshark(messages: &[&str], name: &str) -> String {
    let pcap = std::env::temp_dir().join(format!("nfv-{name}-{}.pcap", std::process::id()));
    let header = PcapHeader { datalink: DataLink::RAW, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(std::fs::File::create(&pcap).unwrap(), header).unwrap();
    for raw in messages {
        let pfcp: Vec<u8> =
            (0..raw.len()).step_by(2).map(|i| u8::from_str_radix(&raw[i..i + 2], 16).unwrap()).collect();
        let udp_len = (8 + pfcp.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 10, 0, 1, 10, 10, 0, 2];
        ip[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
        let c = nfv_net::checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        for field in [8805u16, 8805, udp_len, 0] {
            ip.extend_from_slice(&field.to_be_bytes());
        }
        ip.extend_from_slice(&pfcp);
        w.write_packet(&PcapPacket::new(std::time::Duration::ZERO, ip.len() as u32, &ip)).unwrap();
    }
    drop(w);
    let t = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-V", "-d", "udp.port==8805,pfcp"])
        .output()
        .unwrap();
    let decoded = String::from_utf8_lossy(&t.stdout).to_string();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(decoded.matches("Packet Forwarding Control Protocol").count(), messages.len(), "{decoded}");
    for bad in ["Expert Info (Warning", "Expert Info (Error", "Malformed"] {
        assert!(!decoded.contains(bad), "tshark: {bad}\n{decoded}");
    }
    let _ = std::fs::remove_file(pcap);
    decoded
}

/// A `upf` stage whose configuration (`extra`: more inline TOML keys)
/// runs an N4 endpoint on a free local port, polled every millisecond on
/// its own thread as the runtime would, and an SMF script
/// (`tests/scapy/SCRIPT HOST PORT`) talking to it line by line.
pub struct N4Bed {
    /// The stage, run by hand.
    pub upf: Upf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    control: Option<std::thread::JoinHandle<()>>,
    smf: std::process::Child,
    to_smf: std::process::ChildStdin,
    from_smf: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    said: Vec<String>,
}

impl N4Bed {
    /// Starts the endpoint and the script for `test`; `None` (after saying
    /// why) when scapy or tshark is missing outside CI.
    pub fn start(test: &str, extra: &str, script: &str) -> Option<Self> {
        use std::io::BufRead;
        let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"], &["tshark", "--version"]];
        if !nfv_testkit::tools_or_skip(test, tools) {
            return None;
        }
        use std::sync::atomic::{AtomicBool, Ordering};
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let params = format!(
            "{{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
             n4 = \"127.0.0.1:{port}\", {extra} }}"
        );
        let cfg = Upf::config(&params);
        let mut n4 = cfg.chains[0].stages[0].builder.control_task().expect("an N4 endpoint");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let control = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for line in n4.poll() {
                        eprintln!("n4: {line}");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scapy").join(script);
        let mut smf = Command::new("/usr/bin/python3")
            .arg(&path)
            .args(["127.0.0.1", &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (to_smf, from_smf) =
            (smf.stdin.take().unwrap(), std::io::BufReader::new(smf.stdout.take().unwrap()).lines());
        Some(Self { upf: Upf::of(&cfg), stop, control: Some(control), smf, to_smf, from_smf, said: Vec::new() })
    }

    /// The script's next line starting with `want` (earlier ones kept
    /// for the failure message).
    pub fn next(&mut self, want: &str) -> String {
        loop {
            let Some(l) = self.from_smf.next() else { panic!("the SMF ended before `{want}`: {:?}", self.said) };
            let l = l.unwrap();
            self.said.push(l.clone());
            if l.split(' ').next() == Some(want) {
                return l;
            }
        }
    }

    /// Lets the script go on past its `wait`.
    pub fn go(&mut self) {
        use std::io::Write;
        writeln!(self.to_smf, "go").unwrap();
    }

    /// Waits for the script to end; the `raw` messages it printed.
    pub fn finish(mut self) -> Vec<String> {
        let mut raws = Vec::new();
        for l in self.from_smf.by_ref() {
            raws.push(l.unwrap().strip_prefix("raw ").expect("raw lines at the end").to_string());
        }
        assert!(self.smf.wait().unwrap().success(), "the SMF script failed: {:?}", self.said);
        raws
    }
}

impl Drop for N4Bed {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        let _ = self.smf.kill();
    }
}
