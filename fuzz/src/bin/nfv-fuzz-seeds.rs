//! Writes every target's seed corpus under the directory given (one
//! directory per target), for `cargo xtask fuzz`.

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: nfv-fuzz-seeds DIR");
        std::process::exit(2);
    };
    for t in nfv_fuzz::TARGETS {
        let d = std::path::Path::new(&dir).join(t.name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        let seeds = nfv_fuzz::seeds::of(t.name);
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:05}")), s).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        println!("{}: {} seeds", t.name, seeds.len());
    }
}
