//! `nfv ctl vtep ...`: the static FDB entries and the flood lists of the
//! bridge domains, listed, added and deleted. A change is published as a
//! reload's is ([`crate::config::Vtep::change`]): each worker takes it
//! between two batches (its learned entries stay); a later reload puts
//! back what the configuration says.

use std::net::IpAddr;

use nfv_core::config::mac_text;
use nfv_core::live::Answer;

use crate::config::{StaticDest, Vtep};

/// The `nfv ctl vtep` commands.
pub const USAGE: &[&str] = &[
    "vtep fdb list",
    "vtep fdb add VNI MAC PORT|REMOTE-VTEP",
    "vtep fdb delete VNI MAC",
    "vtep flood list",
    "vtep flood add VNI REMOTE-VTEP",
    "vtep flood delete VNI REMOTE-VTEP",
];

/// Runs one command (the words after `vtep`).
pub(crate) fn command(v: &Vtep, words: &[&str]) -> Result<Answer, String> {
    let usage = || format!("usage: {}", USAGE.join(" | "));
    let vni = |w: &str| w.parse::<u32>().map_err(|_| format!("`{w}` is not a VNI; {}", usage()));
    let ip = |w: &str| w.parse::<IpAddr>().map_err(|_| format!("`{w}` is not a VTEP address; {}", usage()));
    let refuse = |(m, h): (String, String)| format!("{m} ({h})");
    let changed = match words {
        ["fdb", "list"] => {
            let st = v.statics.load();
            let rows = st
                .macs
                .iter()
                .map(|(vni, mac, d)| {
                    let at = match d {
                        StaticDest::Local(p) => format!("port {}", v.port_names[*p as usize]),
                        StaticDest::Remote(ip) => format!("vtep {ip}"),
                    };
                    vec![vni.to_string(), mac_text(mac), at]
                })
                .collect();
            return Ok(Answer { text: st.summary() + "\n", ..Answer::rows(&["vni", "mac", "behind"], rows) });
        }
        ["flood", "list"] => {
            let st = v.statics.load();
            let rows = v
                .domains
                .iter()
                .zip(&st.flood)
                .map(|(d, f)| vec![d.vni.to_string(), f.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(" ")])
                .collect();
            return Ok(Answer { text: st.summary() + "\n", ..Answer::rows(&["vni", "flood"], rows) });
        }
        ["fdb", "add", n, mac, at] => {
            let (port, remote) = match at.parse::<IpAddr>() {
                Ok(ip) => (None, Some(ip)),
                Err(_) => (Some(*at), None),
            };
            let entry = v.static_mac(vni(n)?, mac, port, remote).map_err(refuse)?;
            v.change(|s| {
                s.macs.retain(|(vni, mac, _)| (*vni, *mac) != (entry.0, entry.1));
                s.macs.push(entry);
                Ok(())
            })?
        }
        ["fdb", "delete", n, mac] => {
            let (n, mac) = (vni(n)?, nfv_core::config::parse_mac(mac)?);
            v.change(|s| {
                let before = s.macs.len();
                s.macs.retain(|(vni, m, _)| (*vni, *m) != (n, mac));
                if s.macs.len() == before {
                    return Err(format!("no static MAC {} in VNI {n}", mac_text(&mac)));
                }
                Ok(())
            })?
        }
        ["flood", verb @ ("add" | "delete"), n, addr] => {
            let (n, addr) = (vni(n)?, ip(addr)?);
            let d = v.flood_target(n, addr).map_err(refuse)?;
            v.change(|s| {
                let list = &mut s.flood[d];
                match (*verb, list.iter().position(|a| *a == addr)) {
                    ("add", Some(_)) => return Err(format!("VNI {n} already floods to {addr}")),
                    ("add", None) => list.push(addr),
                    (_, Some(i)) => {
                        list.remove(i);
                    }
                    (_, None) => return Err(format!("VNI {n} does not flood to {addr}")),
                }
                Ok(())
            })?
        }
        _ => return Err(usage()),
    };
    Ok(Answer::line(changed.unwrap_or_else(|| "statics unchanged".into()) + "\n"))
}
