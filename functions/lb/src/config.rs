//! The `lb` stage's TOML parameters, checked (every problem located, with
//! what to write instead) and resolved into the [`Lb`] every worker's
//! instance shares.
//!
//! ```toml
//! stages = [{ kind = "lb", clients = ["d0"], backends-port = "d1", source-address = "10.1.0.1",
//!             vips = [{ vip = "192.0.2.10:80", proto = "tcp", mode = "ipip",
//!                       backends = [{ addr = "10.1.0.2" }, { addr = "10.1.0.3", weight = 2 }] }] }]
//! ```

use std::net::Ipv4Addr;
use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params, ipv4_endpoint};
use nfv_core::published::Published;
use nfv_core::{BuildEnv, PortId};
use serde::Deserialize;

use crate::conntrack::Timeouts;
use crate::maglev::{DEFAULT_SIZE, is_prime};
use nfv_net::wire::proto;

use crate::services::{Mode, Services, Vip, Wanted};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct LbParams {
    clients: Vec<String>,
    backends_port: String,
    vips: Vec<VipParams>,
    source_address: Option<Ipv4Addr>,
    client_gateway: Option<Ipv4Addr>,
    #[serde(default = "max_connections")]
    max_connections: usize,
    #[serde(default)]
    timeouts: TimeoutParams,
    backends_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct VipParams {
    vip: String,
    #[serde(default = "tcp")]
    proto: String,
    #[serde(default = "dsr")]
    mode: String,
    #[serde(default = "table_size")]
    table_size: u32,
    backends: Vec<BackendParams>,
}

/// One backend as the configuration and the backends file write it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendParams {
    pub(crate) addr: Ipv4Addr,
    #[serde(default = "one")]
    pub(crate) weight: u32,
    #[serde(default)]
    pub(crate) drain: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutParams {
    tcp: Option<u32>,
    udp: Option<u32>,
}

fn max_connections() -> usize {
    1 << 18
}
fn tcp() -> String {
    "tcp".into()
}
fn dsr() -> String {
    "dsr".into()
}
fn table_size() -> u32 {
    DEFAULT_SIZE
}
fn one() -> u32 {
    1
}

/// Everything the workers' instances share.
pub struct Lb {
    /// Ports clients reach the VIPs on.
    pub clients: Vec<PortId>,
    /// The port the backends are on.
    pub backends_port: PortId,
    /// Our address on the backends' network: the outer source of IP-in-IP
    /// packets, the source of NAT-mode connections.
    pub source_address: u32,
    /// Next hop of the traffic going back to clients (DSR and IP-in-IP
    /// answers come from the backends through us); without one, clients
    /// must be neighbours on a client port.
    pub client_gateway: Option<u32>,
    /// Connections tracked per worker.
    pub max_connections: usize,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// The VIPs and backends, replaced at run time by updates.
    pub services: Arc<Published<Services>>,
    /// The backends file watched for updates.
    pub backends_file: Option<String>,
    /// Held from reading the running services to publishing the next: a
    /// reload and an `nfv ctl lb` command do not both build on one.
    pub update: std::sync::Mutex<()>,
}

impl Lb {
    /// Publishes the next version of the services, each VIP's backends
    /// as `wanted` makes them of the running ones (known backends keep
    /// their index and connections): the one way backends change (reloads
    /// and `nfv ctl lb`). A line on what runs then; `Ok(None)` when nothing
    /// changed; `wanted`'s refusal as it is.
    pub fn change(
        &self,
        wanted: impl FnOnce(&Services) -> Result<Vec<Vec<Wanted>>, String>,
    ) -> Result<Option<String>, String> {
        let _one = self.update.lock().expect("lb update lock");
        let old = self.services.load();
        let mut next = (*old).clone();
        for (v, w) in next.vips.iter_mut().zip(wanted(&old)?) {
            v.set_backends(&w);
        }
        if next.vips.iter().zip(&old.vips).all(|(n, o)| n.backends == o.backends) {
            return Ok(None);
        }
        next.version = old.version + 1;
        let line = crate::update::summary(&next);
        self.services.publish(next);
        Ok(Some(line))
    }
}

pub(crate) fn resolve(p: LbParams, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Lb, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String, help: String| errors.push(params.error(key, msg, "here").help(help));
    let known = env.ports.join(", ");
    let backends_port = env.port_id(&p.backends_port);
    if backends_port.is_none() {
        err("backends-port", format!("no port named `{}`", p.backends_port), format!("known ports: {known}"));
    }
    let mut clients = Vec::new();
    for name in &p.clients {
        match env.port_id(name) {
            Some(id) if Some(id) == backends_port => err(
                "clients",
                format!("`{name}` is the backends' port"),
                "clients and backends are on different ports".into(),
            ),
            Some(id) => clients.push(id),
            None => err("clients", format!("no port named `{name}`"), format!("known ports: {known}")),
        }
    }
    if p.clients.is_empty() {
        err("clients", "no client port".into(), "clients = [\"d0\"]".into());
    }
    if let Some(t) = [p.timeouts.tcp, p.timeouts.udp].into_iter().flatten().find(|&t| !(1..=65535).contains(&t)) {
        err("timeouts", format!("a timeout of {t} s"), "1 to 65535 seconds".into());
    }
    if !(1..=1 << 26).contains(&p.max_connections) {
        err("max-connections", format!("{} connections per worker", p.max_connections), "1 to 67108864".into());
    }
    let mut vips: Vec<Vip> = Vec::new();
    for v in &p.vips {
        let pr = match v.proto.as_str() {
            "tcp" => proto::TCP,
            "udp" => proto::UDP,
            other => {
                err("vips", format!("VIP protocol `{other}`"), "proto = \"tcp\" or \"udp\"".into());
                continue;
            }
        };
        let mode = match v.mode.as_str() {
            "dsr" => Mode::Dsr,
            "ipip" => Mode::Ipip,
            "nat" => Mode::Nat,
            other => {
                err("vips", format!("forwarding mode `{other}`"), "mode = \"dsr\", \"ipip\" or \"nat\"".into());
                continue;
            }
        };
        let Some((addr, port)) = ipv4_endpoint(&v.vip) else {
            err("vips", format!("VIP `{}` is not address:port", v.vip), "vip = \"192.0.2.10:80\"".into());
            continue;
        };
        if !is_prime(v.table_size) || (v.table_size as usize) <= v.backends.len().max(1) * 100 {
            err(
                "vips",
                format!("VIP {}: table size {}", v.vip, v.table_size),
                "a prime above 100 times the backends (65537, 655373 for thousands of backends)".into(),
            );
            continue;
        }
        if mode != Mode::Dsr && p.source_address.is_none() {
            err(
                "source-address",
                format!("VIP {} is in {} mode but no source address is set", v.vip, v.mode),
                "source-address = \"10.1.0.1\": our address on the backends' network".into(),
            );
        }
        if vips.iter().any(|o| (o.addr, o.port, o.proto) == (addr, port, pr)) {
            err("vips", format!("VIP {} {} twice", v.proto, v.vip), "one entry per address, port and protocol".into());
        }
        let wanted: Vec<Wanted> =
            v.backends.iter().map(|b| Wanted { addr: u32::from(b.addr), weight: b.weight, drain: b.drain }).collect();
        vips.push(Vip::new(addr, port, pr, mode, v.table_size, &wanted));
    }
    if p.vips.is_empty() {
        err(
            "vips",
            "no VIP".into(),
            "vips = [{ vip = \"192.0.2.10:80\", backends = [{ addr = \"10.1.0.2\" }] }]".into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut services = Services { vips, version: 0 };
    let backends_file = p.backends_file.as_deref().map(|f| env.path(f));
    if let Some(path) = &backends_file {
        // The file as it is now is part of the configuration: checked
        // before anything starts.
        let result =
            std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read `{path}`: {e}")]).and_then(|text| {
                crate::update::apply(&text, &services)
                    .map_err(|es| es.iter().map(|e| format!("{} ({})", e.located(path), e.help)).collect())
            });
        match result {
            Ok(s) => services = Services { version: 0, ..s },
            Err(lines) => {
                return Err(lines
                    .into_iter()
                    .map(|l| params.error("backends-file", l, "this file").help("fix the backends file"))
                    .collect());
            }
        }
    }
    let d = Timeouts::default();
    Ok(Lb {
        clients,
        backends_port: backends_port.expect("checked"),
        source_address: p.source_address.map_or(0, u32::from),
        client_gateway: p.client_gateway.map(u32::from),
        max_connections: p.max_connections,
        timeouts: Timeouts { tcp: p.timeouts.tcp.unwrap_or(d.tcp), udp: p.timeouts.udp.unwrap_or(d.udp) },
        services: Published::new(services),
        backends_file,
        update: Default::default(),
    })
}
