//! The HTTP side: `/metrics` and the probes, one request at a time on
//! the management thread (a scrape every few seconds, probes every few).

use tiny_http::{Header, Method, Response, Server};

use crate::probes::{self, Probe};
use crate::{State, metrics};

/// OpenMetrics text, what `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves until the server is unblocked.
pub(crate) fn serve(server: &Server, s: &State) {
    let registry = metrics::registry(s.clone());
    for req in server.incoming_requests() {
        let (code, ctype, body) = match (req.method(), req.url().split('?').next().unwrap_or("")) {
            (Method::Get, "/metrics") => (200, OPENMETRICS, metrics::render(&registry)),
            (Method::Get, "/livez") => probe(probes::livez(s)),
            (Method::Get, "/readyz") => probe(probes::readyz(s)),
            (Method::Get, "/startupz") => probe(probes::startupz(s)),
            (Method::Get, _) => (404, "text/plain", "not found: /metrics, /livez, /readyz, /startupz\n".into()),
            _ => (405, "text/plain", "GET only\n".into()),
        };
        let header = Header::from_bytes("Content-Type", ctype).expect("a valid header");
        let _ = req.respond(Response::from_string(body).with_status_code(code).with_header(header));
    }
}

fn probe(p: Probe) -> (u16, &'static str, String) {
    match p {
        Ok(notes) => {
            (200, "text/plain", ["ok".to_string()].into_iter().chain(notes).collect::<Vec<_>>().join("\n") + "\n")
        }
        Err(why) => (503, "text/plain", why.join("\n") + "\n"),
    }
}
