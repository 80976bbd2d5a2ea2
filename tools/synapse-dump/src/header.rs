//! Parsing pg_dump's `COPY [schema.]table (col, ...) FROM stdin;` lines.

/// A parsed `COPY ... FROM stdin;` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyHeader {
    /// The schema, when the name is qualified.
    pub(crate) schema: Option<String>,
    /// The table name, unquoted.
    pub(crate) table: String,
    /// The column list, unquoted; `None` when absent or unparsable.
    pub(crate) columns: Option<Vec<String>>,
}

impl CopyHeader {
    /// Parses `line` if it starts a COPY data block (`COPY ... FROM stdin;`).
    pub(crate) fn parse(line: &[u8]) -> Option<CopyHeader> {
        let rest = line.strip_prefix(b"COPY ")?;
        let rest = rest.strip_suffix(b" FROM stdin;")?;
        let text = String::from_utf8_lossy(rest);
        let (first, after) = identifier(&text)?;
        let (schema, table, after) = match after.strip_prefix('.') {
            Some(after_dot) => {
                let (second, after) = identifier(after_dot)?;
                (Some(first), second, after)
            }
            None => (None, first, after),
        };
        let columns = after
            .trim_start()
            .strip_prefix('(')
            .and_then(|list| list.strip_suffix(')'))
            .and_then(column_list);
        Some(CopyHeader { schema, table, columns })
    }

    /// Whether the table is in the `public` schema or unqualified.
    pub(crate) fn in_public_schema(&self) -> bool {
        self.schema.as_deref().is_none_or(|s| s == "public")
    }
}

/// `a, "b c", d` -> `["a", "b c", "d"]`.
fn column_list(mut list: &str) -> Option<Vec<String>> {
    let mut columns = Vec::new();
    loop {
        let (name, after) = identifier(list.trim_start())?;
        columns.push(name);
        let after = after.trim_start();
        if after.is_empty() {
            return Some(columns);
        }
        list = after.strip_prefix(',')?;
    }
}

/// Splits off one SQL identifier, bare or double-quoted (with `""` escapes).
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
            } else {
                return Some((name, &quoted[i + 1..]));
            }
        }
        None
    } else {
        let end = s.find([' ', '.', '(', ')', ',', '"']).unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].to_owned(), &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses_pg_dump_headers() {
        let header = CopyHeader::parse(
            b"COPY public.state_groups_state (state_group, room_id, type, state_key, event_id) FROM stdin;",
        )
        .expect("header");
        assert_eq!(header.schema.as_deref(), Some("public"));
        assert_eq!(header.table, "state_groups_state");
        assert_eq!(
            header.columns,
            cols(&["state_group", "room_id", "type", "state_key", "event_id"])
        );
        assert!(header.in_public_schema());
    }

    #[test]
    fn parses_unqualified_and_quoted_names() {
        let header =
            CopyHeader::parse(b"COPY state_groups (id, \"room_id\", \"we\"\"ird\") FROM stdin;").expect("header");
        assert_eq!(header.schema, None);
        assert_eq!(header.table, "state_groups");
        assert_eq!(header.columns, cols(&["id", "room_id", "we\"ird"]));
        let header = CopyHeader::parse(b"COPY \"other\".\"state_groups\" (id) FROM stdin;").expect("header");
        assert_eq!(header.schema.as_deref(), Some("other"));
        assert!(!header.in_public_schema());
    }

    #[test]
    fn rejects_other_lines() {
        assert_eq!(CopyHeader::parse(b"COPY x TO stdout;"), None);
        assert_eq!(CopyHeader::parse(b"-- COPY x (a) FROM stdin;"), None);
        let header = CopyHeader::parse(b"COPY public.t FROM stdin;").expect("header");
        assert_eq!(header.columns, None);
    }
}
