//! The long crash loop: kills `crash-child` with SIGKILL at random moments
//! while it writes one database, and after each kill requires `check()`
//! clean and every answer equal to the model at the last acknowledged
//! operation, or at the one in flight (`mxstate_tests::crash`). Prints a
//! line per kill and the figures.
//!
//! Usage: crash-loop [--kills N] [--seed S] [--dir DIR] [--max-delay-ms MS]
//! (`cargo run --release -p mxstate-tests --bin crash-loop -- --kills 200`).

use std::path::PathBuf;

use mxstate_tests::crash::{clock_seed, run_loop, LoopConfig};

fn usage(e: &str) -> ! {
    eprintln!("crash-loop: {e}\nusage: crash-loop [--kills N] [--seed S] [--dir DIR] [--max-delay-ms MS]");
    std::process::exit(2);
}

fn main() {
    let mut kills = 200;
    let mut seed = None;
    let mut dir = None;
    let mut max_delay_ms = 400;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(v) = it.next() else {
            usage(&format!("{a} needs a value"))
        };
        let num = || {
            v.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("{a}: not a number: {v}")))
        };
        match a.as_str() {
            "--kills" => kills = num(),
            "--seed" => seed = Some(num()),
            "--dir" => dir = Some(PathBuf::from(v)),
            "--max-delay-ms" => max_delay_ms = num(),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let seed = seed.unwrap_or_else(clock_seed);
    let child = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("crash-child")))
        .filter(|c| c.is_file())
        .unwrap_or_else(|| {
            usage("crash-child is not next to crash-loop (build both: cargo build --release -p mxstate-tests --bins)")
        });
    let tmp;
    let dir = match dir {
        Some(d) => {
            if d.exists() {
                usage(&format!("{} exists: give a new directory", d.display()));
            }
            std::fs::create_dir_all(&d).unwrap_or_else(|e| usage(&format!("{}: {e}", d.display())));
            d
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("mxstate-crash-")
                .tempdir()
                .unwrap_or_else(|e| usage(&format!("tempdir: {e}")));
            tmp.path().to_owned()
        }
    };
    println!(
        "crash loop: seed {seed}, {kills} kills, delays 0..={max_delay_ms} ms, in {}",
        dir.display()
    );
    let cfg = LoopConfig {
        child,
        dir: dir.clone(),
        seed,
        kills,
        min_delay_ms: 0,
        max_delay_ms,
        last_kill_after_acks: 0,
    };
    match run_loop(&cfg, &mut |line| println!("{line}")) {
        Ok(sum) => println!("{}", sum.render(seed)),
        Err((sum, e)) => {
            println!("{}", sum.render(seed));
            eprintln!("crash-loop: FAILED: {e}");
            // exit() runs no destructor: a temporary directory stays.
            eprintln!("(the database and journal are kept in {})", dir.display());
            std::process::exit(1);
        }
    }
}
