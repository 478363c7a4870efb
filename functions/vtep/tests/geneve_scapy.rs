//! Geneve against scapy's Geneve layer, both directions, with options
//! (the kernel here has no Geneve device): scapy's packets decapsulate to
//! the inner frames scapy put in; ours decode in scapy and in tshark to
//! the VNI, options and inner frame we meant.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nfv_core::packet::VerdictKind;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};

const GENEVE: &str = ", protocol = \"geneve\", geneve-options = [\
    { class = 0x0102, type = 1, data = \"0a0b0c0d\" }, { class = 0xffff, type = 0x82, data = \"\" }]";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scapy/geneve.py")
}

fn tool(args: &[&str]) -> Option<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// False (after printing why) when scapy or tshark is missing outside CI.
fn tools_ok(test: &str) -> bool {
    nfv_testkit::tools_or_skip(
        test,
        &[&["/usr/bin/python3", "-c", "import scapy.contrib.geneve"], &["tshark", "--version"]],
    )
}

#[test]
fn scapy_geneve_decapsulates_to_scapys_inner_frames() {
    if !tools_ok("scapy_geneve_decapsulates_to_scapys_inner_frames") {
        return;
    }
    let pcap = std::env::temp_dir().join(format!("nfv-geneve-in-{}.pcap", std::process::id()));
    let listing = tool(&["/usr/bin/python3", script().to_str().unwrap(), "build", pcap.to_str().unwrap()]).unwrap();
    let (_cfg, mut s) = vtep(GENEVE, false);
    let mut r = PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    let mut n = 0;
    for line in listing.lines() {
        let inner = unhex(line.split(' ').nth(1).unwrap());
        let pkt = r.next_packet().unwrap().unwrap();
        let out = run(s.as_mut(), 0, &[pkt.data.to_vec()], false);
        let local: Vec<_> = out.iter().filter(|o| matches!(o.1, VerdictKind::Out(1) | VerdictKind::Out(2))).collect();
        assert!(!local.is_empty(), "packet {line}: {out:?}");
        for (data, _) in local {
            assert_eq!(data, &inner, "inner frame of scapy packet {n}");
        }
        n += 1;
    }
    assert_eq!(n, 3);
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn our_geneve_decodes_in_scapy_and_tshark() {
    if !tools_ok("our_geneve_decodes_in_scapy_and_tshark") {
        return;
    }
    let (_cfg, mut s) = vtep(GENEVE, false);
    let frames = [inner(REMOTE_HOST, HOST_A), inner([0xff; 6], HOST_A)];
    let pcap = std::env::temp_dir().join(format!("nfv-geneve-out-{}.pcap", std::process::id()));
    let mut w = PcapWriter::with_header(
        std::fs::File::create(&pcap).unwrap(),
        PcapHeader { datalink: DataLink::ETHERNET, ..Default::default() },
    )
    .unwrap();
    for f in &frames {
        for (data, v) in run(s.as_mut(), 1, std::slice::from_ref(f), false) {
            if v == VerdictKind::Out(0) {
                w.write_packet(&PcapPacket::new(Default::default(), data.len() as u32, &data)).unwrap();
            }
        }
    }
    drop(w);
    let decoded = tool(&["/usr/bin/python3", script().to_str().unwrap(), "decode", pcap.to_str().unwrap()]).unwrap();
    let lines: Vec<&str> = decoded.lines().collect();
    assert_eq!(lines.len(), 2, "{decoded}");
    for (line, f) in lines.iter().zip(&frames) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], "100", "VNI: {line}");
        assert_eq!(fields[2], "1", "C bit set: one option is critical: {line}");
        assert!(fields[3].starts_with("0102:01:0a0b0c0d"), "first option: {line}");
        assert_eq!(unhex(fields[4]), *f, "inner frame");
    }
    let t = tool(&[
        "tshark",
        "-r",
        pcap.to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "geneve.vni",
        "-e",
        "geneve.option.class",
        "-e",
        "geneve.option.type",
        "-e",
        "geneve.proto_type",
        "-e",
        "ip.checksum.status",
    ])
    .unwrap();
    for line in t.lines() {
        assert!(line.starts_with("0x000064\t0x0102,0xffff\t0x01,0x82\t0x6558"), "tshark: {line}");
    }
    let _ = std::fs::remove_file(pcap);
}
