//! Seed corpora: the capture corpus (`../shared/data/pcaps/`, real
//! traffic and hundreds of malformed packets), the ClassBench sets, the
//! configurations shipped in `configs/`, scapy's PFCP messages, and for
//! each function frames built with etherparse that reach its tables.

use std::path::{Path, PathBuf};

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;

use crate::frames::{MAX_FRAME, Record, encode};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> PathBuf {
    repo().join("../shared/data")
}

/// Every Ethernet capture of the corpus: its frames, by file.
fn captures() -> Vec<Vec<Vec<u8>>> {
    let dir = shared().join("pcaps/tcpdump-tests");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(file) = std::fs::File::open(&f) else { continue };
        let Ok(mut r) = PcapReader::new(file) else { continue };
        if r.header().datalink != DataLink::ETHERNET {
            continue;
        }
        let mut frames = Vec::new();
        while let Some(Ok(p)) = r.next_packet() {
            frames.push(p.data[..p.data.len().min(MAX_FRAME)].to_vec());
        }
        out.push(frames);
    }
    out
}

/// The UDP payloads of the corpus sent to `port`.
fn udp_payloads(port: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for frames in captures() {
        for f in frames {
            let Ok(p) = etherparse::SlicedPacket::from_ethernet(&f) else { continue };
            if let Some(etherparse::TransportSlice::Udp(u)) = &p.transport
                && (u.destination_port() == port || u.source_port() == port)
            {
                out.push(u.payload().to_vec());
            }
        }
    }
    out
}

fn rec(port: u16, data: Vec<u8>) -> Record {
    Record { port, fix: false, advance: 0, data }
}

/// Groups of the corpus's frames as record streams (8 a stream, every
/// other frame on port 1), for the stage and slow path targets.
fn capture_streams(filter: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for frames in captures() {
        let frames: Vec<Vec<u8>> = frames.into_iter().filter(|f| filter(f)).collect();
        for chunk in frames.chunks(8) {
            let recs: Vec<Record> = chunk.iter().enumerate().map(|(i, f)| rec((i % 2) as u16, f.clone())).collect();
            out.push(encode(&recs));
        }
    }
    out
}

const A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const US0: [u8; 6] = [2, 0, 0, 0, 0xf, 0];
const US1: [u8; 6] = [2, 0, 0, 0, 0xf, 1];

fn udp4(mac: [u8; 6], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, mac).ipv4(src, dst, 64).udp(sport, dport).write(&mut v, payload).unwrap();
    v
}

fn tcp4(mac: [u8; 6], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(A, mac).ipv4(src, dst, 64).tcp(sport, dport, 1000, 65535);
    let b = if syn { b.syn() } else { b.ack(1).psh() };
    b.write(&mut v, b"data").unwrap();
    v
}

fn icmp4(mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, mac).ipv4(src, dst, 64).icmpv4_echo_request(7, 1).write(&mut v, b"ping").unwrap();
    v
}

fn icmp6(mac: [u8; 6], src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A, mac).ipv6(src, dst, 64).icmpv6_echo_request(7, 1).write(&mut v, b"ping").unwrap();
    v
}

/// A VXLAN frame (RFC 7348) from 192.0.2.2 to us carrying `inner`.
fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![0x08, 0, 0, 0];
    p.extend_from_slice(&(vni << 8).to_be_bytes());
    p.extend_from_slice(inner);
    udp4(US0, [192, 0, 2, 2], [192, 0, 2, 1], 49152, 4789, &p)
}

/// A G-PDU (TS 29.281) from the gNB with a PDU Session Container.
fn gpdu(teid: u32, inner_ip: &[u8]) -> Vec<u8> {
    let mut g = vec![0x34, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x85, 1, 0x10, 5, 0];
    let len = (g.len() - 8 + inner_ip.len()) as u16;
    g[2..4].copy_from_slice(&len.to_be_bytes());
    g[4..8].copy_from_slice(&teid.to_be_bytes());
    g.extend_from_slice(inner_ip);
    udp4(US0, [10, 10, 0, 2], [10, 10, 0, 1], 2152, 2152, &g)
}

fn ip_of(frame: &[u8]) -> Vec<u8> {
    frame[14..].to_vec()
}

fn frames_of(kind: &str) -> Vec<Vec<u8>> {
    let inside = |i: u8| [10, 0, 0, i];
    match kind {
        "nat" => vec![
            encode(&[
                rec(0, udp4(US0, inside(1), [8, 8, 8, 8], 5000, 53, b"q")),
                rec(0, tcp4(US0, inside(2), [1, 1, 1, 1], 40000, 443, true)),
                rec(0, icmp4(US0, inside(3), [9, 9, 9, 9])),
                rec(1, udp4(US1, [8, 8, 8, 8], [198, 51, 100, 10], 53, 1024, b"a")),
                rec(1, tcp4(US1, [1, 1, 1, 1], [198, 51, 100, 10], 443, 1024, false)),
            ]),
            encode(
                &(1..=40)
                    .map(|i| rec(0, udp4(US0, inside(i), [8, 8, 4, 4], 1000 + i as u16, 53, b"")))
                    .collect::<Vec<_>>(),
            ),
        ],
        "lb" => vec![encode(&[
            rec(0, tcp4(US0, [203, 0, 113, 7], [192, 0, 2, 10], 40000, 80, true)),
            rec(0, udp4(US0, [203, 0, 113, 7], [192, 0, 2, 10], 40001, 53, b"q")),
            rec(0, tcp4(US0, [203, 0, 113, 7], [192, 0, 2, 10], 40002, 8080, true)),
            rec(1, tcp4(US1, [10, 1, 0, 6], [10, 1, 0, 1], 8080, 1024, false)),
            rec(0, icmp4(US0, [203, 0, 113, 7], [192, 0, 2, 10])),
        ])],
        "vtep" => {
            let inner = |dst: [u8; 6]| {
                let mut v = Vec::new();
                PacketBuilder::ethernet2([2, 0, 0, 0, 0xc, 1], dst)
                    .ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64)
                    .udp(1, 2)
                    .write(&mut v, b"in")
                    .unwrap();
                v
            };
            vec![encode(&[
                rec(0, vxlan(100, &inner([0xff; 6]))),
                rec(0, vxlan(100, &inner([2, 0, 0, 0, 0xc, 2]))),
                rec(1, inner([2, 0, 0, 0, 0xc, 1])),
                rec(1, inner([0xff; 6])),
                rec(0, vxlan(200, &inner([2, 0, 0, 0, 0xc, 2]))),
            ])]
        }
        "geneve" => {
            let inner = |src: u8, dst: [u8; 6]| {
                let mut v = Vec::new();
                PacketBuilder::ethernet2([2, 0, 0, 0, 0xc, src], dst)
                    .ipv4([172, 16, 0, src], [172, 16, 0, 2], 64)
                    .udp(1, 2)
                    .write(&mut v, b"in")
                    .unwrap();
                v
            };
            // RFC 8926 3: version 0, options 8 octets (2 words), protocol
            // 0x6558, VNI 100; then one option (class 0x0102, type 0x80
            // critical, 4 octets of data).
            let geneve = |inner: &[u8]| {
                let mut p = vec![0x02, 0, 0x65, 0x58, 0, 0, 100, 0, 0x01, 0x02, 0x80, 0x01, 0xa, 0xb, 0xc, 0xd];
                p.extend_from_slice(inner);
                udp4(US0, [192, 0, 2, 2], [192, 0, 2, 1], 49152, 6081, &p)
            };
            let mut floods: Vec<Record> = (1..=80).map(|i| rec(1, inner(i, [0xff; 6]))).collect();
            floods.push(rec(0, geneve(&inner(200, [2, 0, 0, 0, 0xc, 1]))));
            vec![
                encode(&[
                    rec(0, geneve(&inner(9, [0xff; 6]))),
                    rec(0, geneve(&inner(9, [2, 0, 0, 0, 0xc, 2]))),
                    rec(1, inner(2, [2, 0, 0, 0, 0xc, 9])),
                    rec(1, inner(3, [0xff; 6])),
                ]),
                encode(&floods),
            ]
        }
        "upf" => {
            let ue = [10, 45, 0, 7];
            vec![encode(&[
                rec(0, gpdu(4660, &ip_of(&udp4(US0, ue, [198, 51, 100, 2], 1000, 9, b"up")))),
                rec(0, gpdu(4660, &ip_of(&tcp4(US0, ue, [198, 51, 100, 2], 1000, 80, true)))),
                rec(1, udp4(US1, [198, 51, 100, 2], ue, 9, 1000, b"down")),
                rec(0, udp4(US0, [10, 10, 0, 2], [10, 10, 0, 1], 2152, 2152, &[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 9, 0, 0])),
                rec(0, gpdu(9999, &ip_of(&udp4(US0, ue, [198, 51, 100, 2], 1, 2, b"")))),
            ])]
        }
        "acl" => vec![encode(&[
            rec(0, tcp4(US0, [10, 0, 0, 1], [192, 0, 2, 1], 40000, 23, true)),
            rec(0, tcp4(US0, [10, 0, 0, 1], [192, 0, 2, 1], 40000, 443, true)),
            rec(1, tcp4(US1, [192, 0, 2, 1], [10, 0, 0, 1], 443, 40000, false)),
            rec(1, tcp4(US1, [192, 0, 2, 1], [10, 0, 0, 1], 443, 40001, true)),
            rec(0, udp4(US0, [172, 16, 0, 1], [192, 0, 2, 53], 1000, 53, b"q")),
            rec(
                0,
                icmp6(
                    US0,
                    [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                ),
            ),
        ])],
        "slowpath" => {
            let mut arp = vec![0xff; 6];
            arp.extend_from_slice(&A);
            arp.extend_from_slice(&[8, 6, 0, 1, 8, 0, 6, 4, 0, 1]);
            arp.extend_from_slice(&A);
            arp.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 254]);
            let mut ttl1 = udp4(US0, [10, 0, 0, 1], [8, 8, 8, 8], 1, 33434, b"trace");
            ttl1[22] = 1;
            crate::frames::fix_checksums(&mut ttl1);
            vec![encode(&[
                rec(0, arp),
                rec(0, icmp4(US0, [10, 0, 0, 1], [10, 0, 0, 254])),
                rec(
                    1,
                    icmp6(
                        US1,
                        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                        [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    ),
                ),
                rec(0, ttl1),
            ])]
        }
        _ => Vec::new(),
    }
}

/// Files under `dir` (recursively) whose names end in `ext`.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// scapy's PFCP messages (tests/scapy/pfcp_template.py): an Association
/// Setup Request then a Session Establishment Request, as one stream and
/// each alone. Empty without scapy.
fn pfcp_templates() -> Vec<Vec<u8>> {
    let script = repo().join("tests/scapy/pfcp_template.py");
    let Ok(out) = std::process::Command::new("/usr/bin/python3").arg(script).output() else { return Vec::new() };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let msgs: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(_, h)| (0..h.len() / 2).filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()).collect())
        .collect();
    let mut seeds: Vec<Vec<u8>> = msgs.iter().map(|m| encode(&[rec(0, m.clone())])).collect();
    seeds.push(encode(&msgs.iter().map(|m| rec(0, m.clone())).collect::<Vec<_>>()));
    seeds
}

/// The seed corpus of target `name`.
pub fn of(name: &str) -> Vec<Vec<u8>> {
    let is_ip = |f: &[u8]| f.len() > 14 && matches!(f[12..14], [8, 0] | [0x86, 0xdd] | [0x81, 0] | [8, 6]);
    match name {
        "input" => captures().into_iter().flatten().collect(),
        "wire" => captures().into_iter().flatten().filter(|f| f.len() > 14).map(|f| f[14..].to_vec()).collect(),
        "tunnel" => [4789, 6081, 4790, 8472].into_iter().flat_map(udp_payloads).collect(),
        "gtpu" => {
            let mut v = udp_payloads(2152);
            v.push(gpdu(4660, b"\x45")[42..].to_vec());
            v
        }
        "config" => files(&repo().join("configs"), ".toml").iter().filter_map(|p| std::fs::read(p).ok()).collect(),
        "acl-rules" => {
            let mut v: Vec<Vec<u8>> = files(&shared().join("classbench"), "")
                .iter()
                .filter(|p| !p.to_string_lossy().contains("trace") && !p.to_string_lossy().ends_with(".md"))
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|t| {
                    let head: Vec<&str> = t.lines().take(100).collect();
                    [&[0u8][..], head.join("\n").as_bytes()].concat()
                })
                .collect();
            for p in files(&repo().join("configs"), ".toml") {
                if let Ok(t) = std::fs::read(&p)
                    && (t.starts_with(b"rules") || String::from_utf8_lossy(&t).contains("\nrules = ["))
                {
                    v.push([&[1u8][..], &t].concat());
                }
            }
            v
        }
        "pfcp" => {
            let mut v = pfcp_templates();
            v.extend(udp_payloads(8805).into_iter().map(|p| encode(&[rec(0, p)])));
            v
        }
        "slowpath" => {
            let mut v = frames_of("slowpath");
            v.extend(capture_streams(|f| f.len() > 14 && matches!(f[12..14], [8, 6] | [8, 0] | [0x86, 0xdd])));
            v
        }
        "geneve" => {
            let mut v = frames_of("geneve");
            v.extend(capture_streams(is_ip));
            v
        }
        "nat" | "lb" | "vtep" | "upf" | "acl" => {
            let mut v = frames_of(name);
            v.extend(capture_streams(is_ip));
            v
        }
        _ => Vec::new(),
    }
}
