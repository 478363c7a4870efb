//! `benches/REPORT.md` from a run: the environment, per case a table of
//! the no-drop and partial-drop rates of every DUT with nfv's ratio to
//! the case's reference baseline, the latency and sequence figures at 10,
//! 50 and 90 % of the no-drop rate, nfv's per-stage costs, and SVG plots
//! (throughput against frame size, latency against load) drawn with
//! `plotters`. Text in the plots is laid out with DejaVu Sans
//! (fonts-dejavu-core, which `cargo xtask setup` installs).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::results::{Row, Run};

/// Where the plots' font comes from.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> Result<(), String> {
    static ONCE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let bytes = std::fs::read(FONT).map_err(|e| format!("{FONT}: {e} (install fonts-dejavu-core)"))?;
        plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
            .map_err(|_| format!("{FONT} is not a font plotters can read"))
    })
    .clone()
}

fn mpps(r: f64) -> String {
    format!("{:.3}", r / 1e6)
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

/// The rate cell: the figure, `*` when the generator set it, `L` at the
/// line rate, `?` when no verification trial passed.
fn cell(r: &Row) -> String {
    let mut s = mpps(r.rate_pps);
    if r.generator_limited {
        s.push('*');
    }
    if r.at_line_rate {
        s.push('L');
    }
    if !r.verified && r.rate_pps > 0.0 {
        s.push('?');
    }
    s
}

/// Writes the report to `md` and its plots into `assets` (a directory
/// beside it); `command` is what made it.
pub fn write(run: &Run, md: &Path, assets: &Path, command: &str) -> Result<(), String> {
    register_font()?;
    std::fs::create_dir_all(assets).map_err(|e| format!("{}: {e}", assets.display()))?;
    // Links relative to the report (the plots are beside it, or below).
    let rel = assets.strip_prefix(md.parent().unwrap_or(Path::new("."))).unwrap_or(assets);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let e = &run.environment;
    let mut s = String::new();
    let _ = writeln!(s, "# nfv bench report\n");
    let _ = writeln!(
        s,
        "Made by `{command}` ({}). Every figure below comes from that one run; the JSON and CSV beside this file (`{}`) hold all of it.\n",
        run.mode,
        rel.display()
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| CPU | {} ({} cores) |", e.cpu_model, e.cores);
    let _ = writeln!(s, "| Kernel | {} |", e.kernel);
    let ifs: Vec<String> = e.interfaces.iter().map(|(i, d)| format!("{i}: {d}")).collect();
    let _ = writeln!(s, "| Topology | {} |", e.topology);
    let _ = writeln!(s, "| Interfaces | {} |", ifs.join(", "));
    let _ = writeln!(s, "| AF_XDP | {} |", e.af_xdp_mode);
    let _ = writeln!(s, "| Generator | {} |", e.generator);
    let _ = writeln!(s, "| Commit | {} |\n", e.commit);
    let _ = writeln!(
        s,
        "Rates are in Mpps: the no-drop rate (RFC 2544 26.1 binary search, confirmed by a final trial) and the partial-drop rate (0.5 % loss allowed). \
         `*`: the generator could offer no more and the DUT forwarded all of it, so the figure is the generator's limit and the DUT's is higher. \
         `L`: the 10 GbE line rate for the frame size, all the search asks. \
         `?`: no verification trial passed in the search's budget: the best rate that passed a search trial below every failure, unconfirmed. \
         Frame sizes include the FCS; line rate is taken as 10 GbE's.\n"
    );
    if e.topology.starts_with("the veth bed") {
        let _ = writeln!(
            s,
            "On veth a frame's receive work runs on the CPU that sent it, so the kernel's forwarding and nfv's XDP program share CPU 0 with the generator; \
             AF_XDP workers and testpmd's forwarding core run on CPU 1 (docs/benchmarking.md).\n"
        );
    }
    for case in &run.cases {
        let rows: Vec<&Row> = run.rows.iter().filter(|r| r.case == case.name).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## {}\n\n{}.\n", case.name, case.about);
        let mut duts: Vec<&str> = Vec::new();
        let mut frames: Vec<&str> = Vec::new();
        for r in &rows {
            if !duts.contains(&r.dut.as_str()) {
                duts.push(&r.dut);
            }
            if !frames.contains(&r.frames.as_str()) {
                frames.push(&r.frames);
            }
        }
        let find =
            |d: &str, f: &str, goal: f64| rows.iter().find(|r| r.dut == d && r.frames == f && r.goal == goal).copied();
        let _ = write!(s, "| frames | goal |");
        for d in &duts {
            let _ = write!(s, " {d} |");
        }
        let with_ratio = !case.reference.is_empty();
        if with_ratio {
            let _ = writeln!(s, " nfv / {} |", case.reference);
            let _ = writeln!(s, "|---|---|{}---:|", "---:|".repeat(duts.len()));
        } else {
            let _ = writeln!(s);
            let _ = writeln!(s, "|---|---|{}", "---:|".repeat(duts.len()));
        }
        for f in &frames {
            for goal in [0.0, 0.005] {
                let _ = write!(s, "| {f} | {} |", if goal == 0.0 { "no drop" } else { "0.5 %" });
                for d in &duts {
                    let _ = write!(s, " {} |", find(d, f, goal).map_or("-".into(), cell));
                }
                if with_ratio {
                    let ratio = find("nfv", f, goal).and_then(|r| r.vs_baseline);
                    let _ = write!(s, " {} |", ratio.map_or("-".into(), |v| format!("{v:.2}")));
                }
                let _ = writeln!(s);
            }
        }
        let _ = writeln!(s);
        let inline: Vec<&&Row> = rows.iter().filter(|r| r.goal == 0.0 && r.inline_ns_per_packet.is_some()).collect();
        if !inline.is_empty() {
            let _ = writeln!(
                s,
                "The `*` DUTs' receive work runs on the generator's CPU, which slows by what they cost: their CPU time per packet beyond the generator alone's \
                 (1/rate − 1/generator-alone, no-drop rates) and the rate one core would forward at that cost:\n"
            );
            let _ = writeln!(s, "| DUT | frames | ns/packet | Mpps per core |\n|---|---|---:|---:|");
            for r in inline {
                let ns = r.inline_ns_per_packet.unwrap_or(0.0);
                let _ = writeln!(s, "| {} | {} | {ns:.0} | {:.2} |", r.dut, r.frames, 1e3 / ns);
            }
            let _ = writeln!(s);
        }
        if frames.len() > 1 {
            let file = format!("{}-throughput.svg", case.name);
            plot_throughput(&rows, &duts, &frames, &assets.join(&file), &case.name)?;
            let _ = writeln!(s, "![{} throughput against frame size]({}/{file})\n", case.name, rel.display());
        }
        let _ = writeln!(
            s,
            "Latency (µs) and sequence accounting at 10, 50 and 90 % of the no-drop rate, {} frames:\n",
            frames[0]
        );
        let _ = writeln!(
            s,
            "| DUT | load | rate Mpps | min | p50 | p90 | p99 | p99.9 | max | PDV p99 | lost | dup | reordered |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for d in &duts {
            let Some(r) = find(d, frames[0], 0.0) else { continue };
            let base =
                if r.rate_pps > 0.0 { r.rate_pps } else { find(d, frames[0], 0.005).map_or(0.0, |p| p.rate_pps) };
            for l in &r.latency {
                let x = &l.latency;
                let _ = writeln!(
                    s,
                    "| {d} | {} % | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    l.percent,
                    mpps(base * f64::from(l.percent) / 100.0),
                    us(x.min),
                    us(x.p50),
                    us(x.p90),
                    us(x.p99),
                    us(x.p999),
                    us(x.max),
                    us(x.pdv99),
                    l.lost,
                    l.duplicates,
                    l.reordered
                );
            }
        }
        let _ = writeln!(s);
        let file = format!("{}-latency.svg", case.name);
        if plot_latency(&rows, &duts, frames[0], &assets.join(&file), &case.name)? {
            let _ = writeln!(s, "![{} latency against load]({}/{file})\n", case.name, rel.display());
        }
        let costs: Vec<_> = run.stage_costs.iter().filter(|c| c.case == case.name && c.packets > 0).collect();
        if !costs.is_empty() {
            let _ = writeln!(
                s,
                "nfv's stages over the whole case (packets the workers handled; with the XDP engine most never reach them):\n"
            );
            let _ = writeln!(s, "| DUT | stage | packets | cycles/packet | ns/packet |\n|---|---|---:|---:|---:|");
            for c in costs {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.1} | {:.1} |",
                    c.dut, c.stage, c.packets, c.ticks_per_packet, c.ns_per_packet
                );
            }
            let _ = writeln!(s);
        }
        if !case.nfv_config.is_empty() {
            let _ = writeln!(
                s,
                "<details><summary>nfv's configuration</summary>\n\n```toml\n{}```\n</details>\n",
                case.nfv_config
            );
        }
    }
    if !run.notes.is_empty() {
        let _ = writeln!(s, "## Notes\n");
        for n in &run.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    std::fs::write(md, s).map_err(|e| format!("{}: {e}", md.display()))
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn plot_throughput(rows: &[&Row], duts: &[&str], frames: &[&str], path: &Path, case: &str) -> Result<(), String> {
    let err = |e: String| format!("{}: {e}", path.display());
    let top = rows.iter().map(|r| r.rate_pps / 1e6).fold(0.1, f64::max) * 1.15;
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{case}: no-drop rate by frame size"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0..frames.len(), 0.0..top)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_labels(frames.len())
        .x_label_formatter(&|i| frames.get(*i).map_or(String::new(), |f| f.to_string()))
        .x_desc("frame size (octets, with FCS)")
        .y_desc("Mpps")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, d) in duts.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        let pts: Vec<(usize, f64)> = frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                rows.iter().find(|r| r.dut == *d && r.frames == *f && r.goal == 0.0).map(|r| (i, r.rate_pps / 1e6))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(*d)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled()))).map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Latency (p50 solid, p99 dashed by a lighter line) against the load
/// level, a line per DUT; false when no DUT has latency figures.
fn plot_latency(rows: &[&Row], duts: &[&str], frames: &str, path: &Path, case: &str) -> Result<bool, String> {
    let err = |e: String| format!("{}: {e}", path.display());
    // Per DUT: (load %, p50 µs, p99 µs) points.
    type Points = Vec<(f64, f64, f64)>;
    let series: Vec<(&str, Points)> = duts
        .iter()
        .filter_map(|d| {
            let r = rows.iter().find(|r| r.dut == *d && r.frames == frames && r.goal == 0.0)?;
            let pts: Vec<(f64, f64, f64)> = r
                .latency
                .iter()
                .map(|l| (f64::from(l.percent), l.latency.p50 as f64 / 1e3, l.latency.p99 as f64 / 1e3))
                .collect();
            (!pts.is_empty()).then_some((*d, pts))
        })
        .collect();
    if series.is_empty() {
        return Ok(false);
    }
    let top = series.iter().flat_map(|s| s.1.iter().map(|p| p.2)).fold(1.0, f64::max) * 1.2;
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{case}: latency by load ({frames} frames; p50 bold, p99 thin)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..100.0, (0.5f64..top).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("load (% of the no-drop rate)")
        .y_desc("µs")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (k, (d, pts)) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), c.stroke_width(3)))
            .map_err(|e| err(e.to_string()))?
            .label(*d)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(3)));
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.2)), c.stroke_width(1)))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}
