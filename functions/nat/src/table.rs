//! `nfv ctl nat ...`: the port forwards (static mappings) listed, added
//! and deleted. A change is published as a reload's is
//! ([`crate::config::Nat::change`]): each worker takes it between two
//! batches, a removed forward's sessions end, an added one ends the
//! dynamic mapping holding its endpoints; a later reload puts back what
//! the configuration says.

use std::net::Ipv4Addr;

use nfv_core::live::Answer;

use crate::config::{Nat, forward, proto_name};

/// The `nfv ctl nat` commands.
pub const USAGE: &[&str] = &[
    "nat forward list",
    "nat forward add tcp|udp OUTSIDE-ADDR:PORT INSIDE-ADDR:PORT",
    "nat forward delete tcp|udp OUTSIDE-ADDR:PORT",
];

/// Runs one command (the words after `nat`).
pub(crate) fn command(nat: &Nat, words: &[&str]) -> Result<Answer, String> {
    let refuse = |(m, h): (String, String)| format!("{m} ({h})");
    let changed = match words {
        ["forward", "list"] => {
            let f = nat.forwards.load();
            let rows = f
                .list
                .iter()
                .map(|&(p, ia, ip, oa, op)| {
                    vec![
                        proto_name(p).into(),
                        format!("{}:{op}", Ipv4Addr::from(oa)),
                        format!("{}:{ip}", Ipv4Addr::from(ia)),
                    ]
                })
                .collect();
            let text = format!("forwards version {}: {} port forwards\n", f.version, f.list.len());
            return Ok(Answer { text, ..Answer::rows(&["proto", "outside", "inside"], rows) });
        }
        ["forward", "add", p, outside, inside] => {
            let f = forward(p, outside, inside).map_err(refuse)?;
            nat.change(|list| {
                list.push(f);
                Ok(())
            })?
        }
        ["forward", "delete", p, outside] => {
            let (pr, _, _, oa, op) = forward(p, outside, "0.0.0.0:0").map_err(refuse)?;
            nat.change(|list| {
                let before = list.len();
                list.retain(|f| (f.0, f.3, f.4) != (pr, oa, op));
                if list.len() == before {
                    return Err(format!("no {p} forward from {outside}"));
                }
                Ok(())
            })?
        }
        _ => return Err(format!("usage: {}", USAGE.join(" | "))),
    };
    Ok(Answer::line(changed.unwrap_or_else(|| "forwards unchanged".into()) + "\n"))
}
