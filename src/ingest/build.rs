//! The second ingest pass: records turned into Arrow batches of the decided types on every
//! core, with the per-column profile gathered on the way, and handed on in file order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::blocks::{Block, Tail, split};
use super::infer::{MAX_LISTED_REJECTS, row_problem};
use super::profile::Profiler;
use super::reader::{Dialect, Progress};
use crate::dataset::manifest::{ColumnProfile, RejectedRow};
use crate::dataset::schema::{Column, ColumnType, UTC, arrow_schema};
use crate::error::{Error, Result};
use crate::values::{NumStyle, parse_any, parse_bool, parse_date, parse_datetime};

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder, Vec<NumStyle>),
    Float(Float64Builder, Vec<NumStyle>),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, bool),
}

impl Builder {
    fn new(col: &Column, styles: &[NumStyle], n: usize) -> Self {
        match col.kind {
            ColumnType::String => Builder::Str(StringBuilder::with_capacity(n, n * 16)),
            ColumnType::Integer => Builder::Int(Int64Builder::with_capacity(n), styles.to_vec()),
            ColumnType::Float => Builder::Float(Float64Builder::with_capacity(n), styles.to_vec()),
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(n)),
            ColumnType::Date => Builder::Date(Date32Builder::with_capacity(n)),
            ColumnType::Datetime => Builder::Ts(
                TimestampMicrosecondBuilder::with_capacity(n),
                col.with_offset,
            ),
        }
    }

    /// Appends one cell; `false` when it does not parse (which the first pass rules out).
    fn append(&mut self, cell: Option<&str>, dialect: &Dialect) -> bool {
        let Some(cell) = cell else {
            self.append_null();
            return true;
        };
        if let Builder::Str(b) = self {
            if dialect.is_null_text(cell) {
                b.append_null();
            } else {
                b.append_value(cell);
            }
            return true;
        }
        if dialect.is_null_typed(cell) {
            self.append_null();
            return true;
        }
        match self {
            Builder::Str(_) => unreachable!("handled above"),
            Builder::Int(b, styles) => match parse_any(cell, styles).ok().and_then(|n| n.int) {
                Some(v) => {
                    b.append_value(v);
                }
                None => return false,
            },
            Builder::Float(b, styles) => match parse_any(cell, styles).map(|n| n.value) {
                Ok(v) => {
                    b.append_value(v);
                }
                Err(_) => return false,
            },
            Builder::Bool(b) => match parse_bool(cell) {
                Some(v) => {
                    b.append_value(v);
                }
                None => return false,
            },
            Builder::Date(b) => match parse_date(cell) {
                Some((days, _)) => {
                    b.append_value(days);
                }
                None => return false,
            },
            Builder::Ts(b, offset) => match parse_datetime(cell) {
                Some(dt) if dt.with_offset == *offset => {
                    b.append_value(dt.micros);
                }
                _ => return false,
            },
        }
        true
    }

    fn append_null(&mut self) {
        match self {
            Builder::Str(b) => b.append_null(),
            Builder::Int(b, _) => b.append_null(),
            Builder::Float(b, _) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b, _) => Arc::new(b.finish()),
            Builder::Float(b, _) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, offset) => {
                let arr = b.finish();
                if *offset {
                    Arc::new(arr.with_timezone(UTC))
                } else {
                    Arc::new(arr)
                }
            }
        }
    }
}

/// What the second pass produced besides the batches.
pub struct Built {
    pub rows_read: u64,
    pub rows_stored: u64,
    pub rows_rejected: u64,
    /// The first rejected rows, with their reasons.
    pub rejected: Vec<RejectedRow>,
    pub profile: Vec<ColumnProfile>,
}

/// A value that does not fit the type its column was given from a sample of the file: the
/// version being written is abandoned and the types are decided from the whole file.
#[derive(Debug)]
pub struct Widen {
    pub column: String,
    pub line: u64,
    pub value: String,
}

pub enum BuildOutcome {
    Built(Built),
    Widen(Widen),
}

/// Blocks cut from the file and not yet handed on, at most: bounds memory whatever the file.
const IN_FLIGHT: usize = 4;
/// Threads typing blocks, at most.
const MAX_WORKERS: usize = 8;

/// Reads the file again and hands batches of typed rows to `sink` in file order, skipping the
/// rows the first pass rejected (the same checks decide, so both passes agree). This thread
/// reads and cuts the records into blocks; one thread per core types them.
pub fn build(
    path: &Path,
    dialect: &Dialect,
    columns: &[Column],
    styles: &[Vec<NumStyle>],
    forced: &[Option<ColumnType>],
    progress: Progress,
    sink: impl FnMut(RecordBatch) -> Result<()> + Send,
) -> Result<BuildOutcome> {
    let typer = Typer {
        columns,
        styles,
        forced,
        dialect,
        lenient: dialect.lenient_styles(),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let (block_tx, block_rx) = crossbeam_channel::bounded::<Block>(workers);
    let (slot_tx, slot_rx) = crossbeam_channel::bounded::<()>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let _ = slot_tx.send(());
    }
    let order = Mutex::new(InOrder::new(arrow_schema(columns), sink));
    let stop = AtomicBool::new(false);
    let (tail, profilers) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (blocks, slots) = (block_rx.clone(), slot_tx.clone());
                let (typer, order, stop) = (&typer, &order, &stop);
                scope.spawn(move || {
                    let mut profiler = Profiler::new(typer.columns);
                    for block in blocks {
                        let piece = typer.piece(&block, &mut profiler);
                        order.lock().deposit(piece, &slots, stop);
                    }
                    profiler
                })
            })
            .collect();
        drop(block_rx);
        let tail = split(
            path,
            dialect,
            columns.len(),
            progress,
            block_tx,
            slot_rx,
            &stop,
        );
        let profilers: Vec<Profiler> = handles
            .into_iter()
            .map(|h| h.join().expect("a block typer panicked"))
            .collect();
        (tail, profilers)
    });
    let tail = tail?;
    let order = order.into_inner();
    order.finish(tail, profilers, columns)
}

/// What types a block's records.
struct Typer<'a> {
    columns: &'a [Column],
    styles: &'a [Vec<NumStyle>],
    forced: &'a [Option<ColumnType>],
    dialect: &'a Dialect,
    lenient: Vec<NumStyle>,
}

/// A block typed: its stored rows as arrays (the row numbers are added in order), or the
/// value that did not fit.
struct Piece {
    seq: u64,
    read: u64,
    rejected_count: u64,
    rejected: Vec<RejectedRow>,
    result: Result<Typed>,
}

enum Typed {
    Arrays(Vec<ArrayRef>, usize),
    Widen(Widen),
}

impl Typer<'_> {
    fn piece(&self, block: &Block, profiler: &mut Profiler) -> Piece {
        let mut piece = Piece {
            seq: block.seq,
            read: 0,
            rejected_count: 0,
            rejected: Vec::new(),
            result: Ok(Typed::Arrays(Vec::new(), 0)),
        };
        let n = block.len();
        let mut builders: Vec<Builder> = (self.columns.iter().zip(self.styles))
            .map(|(c, s)| Builder::new(c, s, n))
            .collect();
        let mut fields: Vec<&str> = Vec::with_capacity(self.columns.len() + 1);
        let mut stored = 0;
        for r in 0..n {
            let line = block.fields(r, &mut fields);
            piece.read += 1;
            let problem = row_problem(
                &fields,
                self.columns,
                self.forced,
                self.dialect,
                &self.lenient,
            );
            if let Some(reason) = problem {
                piece.rejected_count += 1;
                if piece.rejected.len() < MAX_LISTED_REJECTS {
                    piece.rejected.push(RejectedRow { line, reason });
                }
                continue;
            }
            for (i, b) in builders.iter_mut().enumerate() {
                let field = fields.get(i).copied();
                if !b.append(field, self.dialect) {
                    piece.result = Ok(Typed::Widen(Widen {
                        column: self.columns[i].name.clone(),
                        line,
                        value: field.unwrap_or_default().to_string(),
                    }));
                    return piece;
                }
            }
            stored += 1;
        }
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        profiler.see_arrays(&arrays);
        piece.result = Ok(Typed::Arrays(arrays, stored));
        piece
    }
}

/// Typed blocks put back in file order and handed to the sink, numbered as they go.
struct InOrder<S> {
    schema: SchemaRef,
    sink: S,
    next: u64,
    waiting: BTreeMap<u64, Piece>,
    read: u64,
    stored: u64,
    rejected_count: u64,
    rejected: Vec<RejectedRow>,
    /// Why the pass stopped early: an error, or a value that did not fit.
    stopped: Option<Result<Widen>>,
}

impl<S: FnMut(RecordBatch) -> Result<()>> InOrder<S> {
    fn new(schema: SchemaRef, sink: S) -> Self {
        InOrder {
            schema,
            sink,
            next: 0,
            waiting: BTreeMap::new(),
            read: 0,
            stored: 0,
            rejected_count: 0,
            rejected: Vec::new(),
            stopped: None,
        }
    }

    /// Takes a typed block and hands on every block now in order; each one handed on frees a
    /// slot for the reader. A failure or a misfit stops the pass.
    fn deposit(&mut self, piece: Piece, slots: &crossbeam_channel::Sender<()>, stop: &AtomicBool) {
        self.waiting.insert(piece.seq, piece);
        while let Some(piece) = self.waiting.remove(&self.next) {
            self.next += 1;
            let _ = slots.send(());
            if self.stopped.is_none()
                && let Err(why) = self.take(piece)
            {
                self.stopped = Some(why);
                stop.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Counts a block's rows and hands its batch on; `Err` says why the pass stops.
    fn take(&mut self, piece: Piece) -> std::result::Result<(), Result<Widen>> {
        self.read += piece.read;
        self.rejected_count += piece.rejected_count;
        let room = MAX_LISTED_REJECTS.saturating_sub(self.rejected.len());
        self.rejected.extend(piece.rejected.into_iter().take(room));
        match piece.result {
            Err(e) => Err(Err(e)),
            Ok(Typed::Widen(w)) => Err(Ok(w)),
            Ok(Typed::Arrays(_, 0)) => Ok(()),
            Ok(Typed::Arrays(arrays, n)) => self.hand_on(arrays, n).map_err(Err),
        }
    }

    fn hand_on(&mut self, mut arrays: Vec<ArrayRef>, n: usize) -> Result<()> {
        let first = self.stored as i64;
        arrays.push(Arc::new(arrow::array::Int64Array::from_iter_values(
            first..first + n as i64,
        )));
        self.stored += n as u64;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        (self.sink)(batch)
    }

    /// The outcome once every block was handed on, with the footnotes found below the table.
    fn finish(
        mut self,
        tail: Tail,
        profilers: Vec<Profiler>,
        columns: &[Column],
    ) -> Result<BuildOutcome> {
        match self.stopped.take() {
            Some(Err(e)) => return Err(e),
            Some(Ok(w)) => return Ok(BuildOutcome::Widen(w)),
            None => {}
        }
        if self.next != tail.blocks {
            return Err(Error::internal("a block of records was lost while typing"));
        }
        for (line, note) in tail.footnotes {
            self.read += 1;
            self.rejected_count += 1;
            if self.rejected.len() < MAX_LISTED_REJECTS {
                self.rejected.push(RejectedRow {
                    line,
                    reason: format!("footnote below the table: `{note}`"),
                });
            }
        }
        if self.stored == 0 {
            // An empty table is still written, with its schema.
            let empty = RecordBatch::new_empty(self.schema.clone());
            (self.sink)(empty)?;
        }
        let mut profile = Profiler::new(columns);
        for p in profilers {
            profile.merge(p);
        }
        Ok(BuildOutcome::Built(Built {
            rows_read: self.read,
            rows_stored: self.stored,
            rows_rejected: self.rejected_count,
            rejected: self.rejected,
            profile: profile.finish(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;

    fn piece(seq: u64, values: &[i64]) -> Piece {
        Piece {
            seq,
            read: values.len() as u64 + 1,
            rejected_count: 1,
            rejected: vec![RejectedRow {
                line: seq * 10,
                reason: format!("in block {seq}"),
            }],
            result: Ok(Typed::Arrays(
                vec![Arc::new(Int64Array::from(values.to_vec()))],
                values.len(),
            )),
        }
    }

    #[test]
    fn blocks_typed_out_of_order_are_handed_on_in_order() {
        let columns = vec![Column {
            name: "n".into(),
            label: "n".into(),
            kind: ColumnType::Integer,
            nullable: true,
            description: None,
            with_offset: false,
            geo: None,
        }];
        let mut seen = Vec::new();
        let mut order = InOrder::new(arrow_schema(&columns), |b: RecordBatch| {
            seen.push(b);
            Ok(())
        });
        let (slots, freed) = crossbeam_channel::unbounded();
        let stop = AtomicBool::new(false);
        order.deposit(piece(2, &[5]), &slots, &stop);
        order.deposit(piece(1, &[3, 4]), &slots, &stop);
        assert_eq!(freed.len(), 0, "nothing is handed on before block 0");
        order.deposit(piece(0, &[1, 2]), &slots, &stop);
        assert_eq!(freed.len(), 3);
        let tail = Tail {
            blocks: 3,
            footnotes: vec![(99, "note".into())],
        };
        let BuildOutcome::Built(built) = order.finish(tail, Vec::new(), &columns).unwrap() else {
            panic!("no misfit was deposited");
        };
        assert_eq!(
            (built.rows_read, built.rows_stored, built.rows_rejected),
            (9, 5, 4)
        );
        let lines: Vec<u64> = built.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [0, 10, 20, 99]);
        let column = |i: usize| -> Vec<i64> {
            (seen.iter())
                .flat_map(|b| b.column(i).as_primitive::<Int64Type>().values().to_vec())
                .collect()
        };
        assert_eq!(column(0), [1, 2, 3, 4, 5]);
        // Row numbers follow file order across blocks.
        assert_eq!(column(1), [0, 1, 2, 3, 4]);
    }
}
