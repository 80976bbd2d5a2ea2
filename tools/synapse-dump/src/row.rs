//! Turning decoded COPY fields into [`SourceRow`]s, given where each
//! needed column sits in the COPY column list.

use crate::copy::FieldDecoder;
use crate::error::{DumpError, Location};
use crate::record::{AuthEdge, Record, SourceRow};
use crate::table::Table;

/// The position of each needed column of a table within a COPY column list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowLayout {
    /// The table.
    pub(crate) table: Table,
    /// Number of columns in the COPY column list.
    pub(crate) width: usize,
    /// `index[k]` is the position of `table.columns()[k]`.
    index: [usize; 5],
}

impl RowLayout {
    /// The layout of `COPY table (columns...)`; extra columns are ignored.
    /// Errors with the name of the first needed column that is missing.
    pub(crate) fn from_columns(table: Table, columns: &[&str]) -> Result<Self, &'static str> {
        let mut index = [0; 5];
        for (slot, needed) in index.iter_mut().zip(table.columns()) {
            *slot = columns.iter().position(|c| c == needed).ok_or(*needed)?;
        }
        Ok(Self {
            table,
            width: columns.len(),
            index,
        })
    }

    /// The layout when the columns are exactly `table.columns()` in order.
    pub(crate) fn canonical(table: Table) -> Self {
        Self {
            table,
            width: table.columns().len(),
            index: [0, 1, 2, 3, 4],
        }
    }

    /// Builds the row of one decoded line. `at` gives the row's location
    /// and is only called on error.
    pub(crate) fn row(&self, fields: &FieldDecoder, at: impl Fn() -> Location) -> Result<SourceRow, DumpError> {
        let mut row = SourceRow::placeholder();
        self.row_into(fields, at, &mut row)?;
        Ok(row)
    }

    /// [`RowLayout::row`] into `out`, reusing its strings' buffers when it
    /// holds a row of the same table. On error `out` holds anything.
    pub(crate) fn row_into(
        &self,
        fields: &FieldDecoder,
        at: impl Fn() -> Location,
        out: &mut SourceRow,
    ) -> Result<(), DumpError> {
        if fields.len() != self.width {
            return Err(DumpError::ColumnCount {
                at: at(),
                table: self.table,
                expected: self.width,
                found: fields.len(),
            });
        }
        let text = |k: usize| -> Result<&str, DumpError> {
            let column = self.table.columns().get(k).copied().unwrap_or("?");
            match self.index.get(k).and_then(|&i| fields.get(i)) {
                Some(Some(value)) => Ok(value),
                _ => Err(DumpError::Null {
                    at: at(),
                    table: self.table,
                    column,
                }),
            }
        };
        let number = |k: usize| -> Result<i64, DumpError> {
            let value = text(k)?;
            value.parse::<i64>().map_err(|_| DumpError::BadNumber {
                at: at(),
                table: self.table,
                column: self.table.columns().get(k).copied().unwrap_or("?"),
                value: value.to_owned(),
            })
        };
        // Copies field `k` into `s`, keeping `s`'s buffer.
        let set = |s: &mut String, k: usize| -> Result<(), DumpError> {
            let value = text(k)?;
            s.clear();
            s.push_str(value);
            Ok(())
        };
        if out.table() != self.table {
            *out = SourceRow::empty(self.table);
        }
        // The fields are read in the same order as the columns are listed,
        // so the first bad one is the one reported.
        match out {
            SourceRow::Auth(AuthEdge {
                event_id,
                auth_id,
                room_id,
            }) => {
                set(event_id, 0)?;
                set(auth_id, 1)?;
                set(room_id, 2)?;
            }
            SourceRow::State(Record::EventToStateGroup { event_id, state_group }) => {
                set(event_id, 0)?;
                *state_group = number(1)?;
            }
            SourceRow::State(Record::Edge {
                state_group,
                prev_state_group,
            }) => {
                *state_group = number(0)?;
                *prev_state_group = number(1)?;
            }
            SourceRow::State(Record::StateGroup { id, room_id, event_id }) => {
                *id = number(0)?;
                set(room_id, 1)?;
                set(event_id, 2)?;
            }
            SourceRow::State(Record::StateRow {
                state_group,
                room_id,
                event_type,
                state_key,
                event_id,
            }) => {
                *state_group = number(0)?;
                set(room_id, 1)?;
                set(event_type, 2)?;
                set(state_key, 3)?;
                set(event_id, 4)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_columns_by_name() {
        let layout =
            RowLayout::from_columns(Table::StateGroups, &["event_id", "extra", "room_id", "id"]).expect("all present");
        let mut fields = FieldDecoder::new();
        fields.decode(b"$e\tzzz\t!r\t42").expect("decodes");
        let record = layout.row(&fields, Location::default).expect("parses");
        assert_eq!(
            record,
            SourceRow::State(Record::StateGroup {
                id: 42,
                room_id: "!r".into(),
                event_id: "$e".into()
            })
        );
        let layout =
            RowLayout::from_columns(Table::EventAuth, &["room_id", "event_id", "auth_id"]).expect("all present");
        fields.decode(b"!r\t$e\t$a").expect("decodes");
        assert_eq!(
            layout.row(&fields, Location::default).expect("parses"),
            SourceRow::Auth(AuthEdge {
                event_id: "$e".into(),
                auth_id: "$a".into(),
                room_id: "!r".into()
            })
        );
        assert_eq!(
            RowLayout::from_columns(Table::StateGroups, &["id", "room_id"]).err(),
            Some("event_id")
        );
    }
}
