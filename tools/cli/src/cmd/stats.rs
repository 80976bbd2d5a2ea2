//! `mxstate stats`.

use mxstate_engine::Stats;
use serde_json::json;

use crate::cli::StatsArgs;
use crate::error::{CliError, CliResult};

/// Runs `mxstate stats`.
pub fn run(a: StatsArgs) -> CliResult {
    let target = super::target::Target::open(&a.target)?;
    if let Some(json) = target.service_stats()? {
        return print_service(&json, a.json);
    }
    let engine = target
        .engine()
        .ok_or_else(|| CliError::Usage("no database open".into()))?;
    let s = engine.stats()?;
    if a.json {
        println!("{}", to_json(&s));
    } else {
        print!("{}", render(&s));
    }
    Ok(())
}

/// The database's size on disk, which the RocksDB backend always knows.
pub fn disk_bytes(s: &Stats) -> CliResult<u64> {
    s.bytes_on_disk
        .ok_or_else(|| CliError::Usage("this database's backend cannot tell its size on disk".into()))
}

/// Stats as a JSON value.
pub fn to_json(s: &Stats) -> serde_json::Value {
    let cfs: serde_json::Map<String, serde_json::Value> = s
        .column_families
        .iter()
        .map(|c| (c.name.to_owned(), json!({"bytes": c.bytes, "keys": c.keys})))
        .collect();
    json!({
        "rooms": s.rooms,
        "groups": s.groups,
        "ghost_groups": s.ghost_groups,
        "snapshot_groups": s.snapshot_groups,
        "delta_groups": s.delta_groups,
        "snapshots": s.snapshots,
        "events": s.events,
        "event_mappings": s.event_mappings,
        "event_types": s.event_types,
        "state_keys": s.state_keys,
        "longest_chain": s.longest_chain,
        "delta_entries": s.delta_entries,
        "snapshot_entries": s.snapshot_entries,
        "bytes_on_disk": s.bytes_on_disk,
        "column_families": cfs,
    })
}

/// Stats as text.
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<22} {v}\n"));
    line("rooms", s.rooms.to_string());
    line("groups", s.groups.to_string());
    line("  stored as snapshot", s.snapshot_groups.to_string());
    line("  stored as delta", s.delta_groups.to_string());
    line("  ghosts (purged bases)", s.ghost_groups.to_string());
    line("distinct snapshots", s.snapshots.to_string());
    line("events interned", s.events.to_string());
    line("event -> group maps", s.event_mappings.to_string());
    line("event types", s.event_types.to_string());
    line("state keys", s.state_keys.to_string());
    line("longest chain", format!("{} deltas", s.longest_chain));
    line("delta entries", s.delta_entries.to_string());
    line("snapshot entries", s.snapshot_entries.to_string());
    line(
        "bytes on disk",
        s.bytes_on_disk
            .map(human)
            .unwrap_or_else(|| "unknown (the backend cannot tell)".into()),
    );
    for c in &s.column_families {
        line(
            &format!("  cf {}", c.name),
            format!("{} ({} keys)", human(c.bytes), c.keys),
        );
    }
    out
}

/// Bytes in a readable unit.
pub fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A service's figures: its JSON as is, or a few lines.
fn print_service(json: &str, raw: bool) -> CliResult {
    if raw {
        println!("{json}");
        return Ok(());
    }
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| CliError::Usage(format!("the service sent bad figures: {e}")))?;
    let (svc, db) = (&v["service"], &v["database"]);
    println!("service");
    for k in ["connections_open", "connections_total", "refused", "requests", "errors"] {
        println!("  {k:<18} {}", svc[k]);
    }
    println!("database {}", db["location"]);
    for k in ["rooms", "groups", "snapshots", "event_mappings", "bytes_on_disk"] {
        println!("  {k:<18} {}", db[k]);
    }
    Ok(())
}
