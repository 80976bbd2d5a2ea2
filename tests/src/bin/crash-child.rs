//! Test tool: the child of the crash loop (`mxstate_tests::crash`). Applies
//! the seeded operation sequence to a database, journaling each operation
//! before and after, until it is killed.
//!
//! Usage: crash-child --db DIR --journal FILE --seed S [--max-ops N]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = mxstate_tests::crash::child_main(&args) {
        eprintln!("crash-child: {e}");
        std::process::exit(1);
    }
}
