//! The load-balancing bed shared by the live LB and reload tests: gen
//! routes through nfv (10.0.0.254) to the VIP 192.0.2.10; three backends
//! on sink's link, b1-b3 at 10.1.0.11-13, each holding the VIP on its
//! loopback (direct server return) and serving TCP ports 80 and 8080.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::testbed::TestBed;

/// The backends: namespace role and address.
pub const BACKENDS: [(&str, &str); 3] = [("b1", "10.1.0.11"), ("b2", "10.1.0.12"), ("b3", "10.1.0.13")];

/// A server in backend `name`'s namespace on `port`: every line a client
/// sends is answered with the backend's name (and, with `peer`, the
/// client's address as the backend sees it).
pub fn serve(bed: &TestBed, name: &'static str, port: u16, peer: bool, stop: Arc<AtomicBool>) {
    let (tx, rx) = std::sync::mpsc::channel();
    bed.spawn_in_ns(name, move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, from)) => {
                    let answer = if peer { format!("{name} {}\n", from.ip()) } else { format!("{name}\n") };
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        let mut w = s.try_clone().unwrap();
                        for line in BufReader::new(s).lines() {
                            let Ok(_) = line else { break };
                            if w.write_all(answer.as_bytes()).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("server listening");
}

/// A client connection to the VIP, asking which backend serves it.
pub struct Conn(pub BufReader<TcpStream>);

impl Conn {
    pub fn ask(&mut self) -> Option<String> {
        self.0.get_mut().write_all(b"who\n").ok()?;
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim().to_string()),
            _ => None,
        }
    }
}

pub fn connect(bed: &TestBed) -> Conn {
    connect_to(bed, 80)
}

pub fn connect_to(bed: &TestBed, port: u16) -> Conn {
    bed.in_ns("gen", move || {
        let s = TcpStream::connect_timeout(&(([192, 0, 2, 10], port).into()), Duration::from_secs(3))
            .expect("connect to the VIP");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Conn(BufReader::new(s))
    })
}

/// The bed: gen routes through nfv, three backends on sink's link, each
/// serving port 80 (with the VIP on its loopback, for DSR) and 8080 (NAT
/// mode, answering with the client address it sees).
pub fn lb_bed(stop: &Arc<AtomicBool>, queues: u32) -> TestBed {
    let bed = TestBed::up("line", queues);
    bed.exec("gen", &["ip", "route", "add", "default", "via", "10.0.0.254"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    for (name, addr) in BACKENDS {
        bed.add_backend(name, &format!("{addr}/24"), "10.1.0.1");
        bed.exec(name, &["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
        // The VIP is for this host only: no ARP answers for it.
        bed.exec(name, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]);
        serve(&bed, name, 80, false, stop.clone());
        serve(&bed, name, 8080, true, stop.clone());
    }
    bed
}
