//! Sorting more fixed-size records than an ingest should hold in memory, for the indexes built
//! after the Parquet file (orders, posting lists, words, the spatial grid): records gather up to
//! a budget; past it they are sorted and written to an anonymous temporary file (a run, in
//! `TMPDIR`, gone with the process), and the runs are merged back in order. A table whose
//! records fit never touches the disk; a larger one holds the budget and a read buffer a run,
//! whatever its size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// A record sorted as an unsigned integer, stored little-endian.
pub trait Record: Ord + Copy + Send + 'static {
    const BYTES: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Record for u64 {
    const BYTES: usize = 8;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        u64::from_le_bytes(bytes.try_into().unwrap_or_default())
    }
}

impl Record for u128 {
    const BYTES: usize = 16;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(bytes: &[u8]) -> Self {
        u128::from_le_bytes(bytes.try_into().unwrap_or_default())
    }
}

/// Bytes read ahead from each run while merging.
const READ_AHEAD: usize = 256 * 1024;
/// Fewest records held before spilling, whatever the budget (a run of a few records would
/// cost a file each).
const MIN_HELD: usize = 16 * 1024;

/// Records gathered for sorting, within a memory budget.
pub struct Sorter<T> {
    held: Vec<T>,
    /// Records held before a run is spilled.
    cap: usize,
    runs: Vec<File>,
    len: u64,
}

impl<T: Record> Sorter<T> {
    /// A sorter holding up to `budget` bytes of records in memory.
    pub fn new(budget: usize) -> Self {
        Sorter {
            held: Vec::new(),
            cap: (budget / size_of::<T>()).max(MIN_HELD),
            runs: Vec::new(),
            len: 0,
        }
    }

    pub fn push(&mut self, record: T) {
        if self.held.capacity() == 0 {
            // Reserved once: grown by doubling, the vector would pass the budget, and copy
            // itself on the way. Pages not yet written are not resident, so a small table costs
            // what it holds.
            self.held.reserve_exact(self.cap + MIN_HELD);
        }
        self.held.push(record);
        self.len += 1;
    }

    /// Records pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Runs written to disk so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Spills the records held once they reach the budget; called between batches, so that
    /// the sort and the writing happen off the async threads.
    pub async fn settle(&mut self) -> Result<()> {
        if self.held.len() < self.cap {
            return Ok(());
        }
        self.spill().await
    }

    async fn spill(&mut self) -> Result<()> {
        let mut held = std::mem::take(&mut self.held);
        let (run, held) = tokio::task::spawn_blocking(move || -> io::Result<(File, Vec<T>)> {
            held.sort_unstable();
            let run = tempfile::tempfile()?;
            let mut run = write_run(run, &held)?;
            run.seek(SeekFrom::Start(0))?;
            held.clear();
            Ok((run, held))
        })
        .await?
        .map_err(on_disk)?;
        self.runs.push(run);
        self.held = held;
        Ok(())
    }

    /// Every record pushed, in order.
    pub async fn finish(self) -> Result<Merged<T>> {
        self.finish_with(None).await
    }

    /// Every record pushed, each passed through `map` first (which may change their order), in
    /// order: a run already spilled is read back, mapped, sorted and written again.
    pub async fn finish_mapped(self, map: impl Fn(T) -> T + Send + 'static) -> Result<Merged<T>> {
        self.finish_with(Some(Box::new(map))).await
    }

    async fn finish_with(mut self, map: Option<Map<T>>) -> Result<Merged<T>> {
        if !self.runs.is_empty() && !self.held.is_empty() {
            // On disk too: a run then merges like the others, and mapping a run can reuse the
            // memory the last one held.
            self.spill().await?;
        }
        let (held, runs) = (self.held, self.runs);
        let merged = tokio::task::spawn_blocking(move || merged(held, runs, map)).await?;
        merged.map_err(on_disk)
    }
}

/// A failure of the local disk while sorting, with where it was and what would fix it.
fn on_disk(e: io::Error) -> Error {
    Error::internal(format!(
        "sorting the indexes on the local disk (`{}`): {e}; free space there, point TMPDIR \
         elsewhere, or raise ingest.sort_bytes",
        std::env::temp_dir().display()
    ))
}

/// A change made to every record before the merge.
type Map<T> = Box<dyn Fn(T) -> T + Send>;

/// The records, from memory or from runs (each sorted again once mapped), merged.
fn merged<T: Record>(
    mut held: Vec<T>,
    runs: Vec<File>,
    map: Option<Map<T>>,
) -> io::Result<Merged<T>> {
    if runs.is_empty() {
        if let Some(map) = &map {
            held.iter_mut().for_each(|r| *r = map(*r));
        }
        held.sort_unstable();
        return Merged::new(held, Vec::new());
    }
    let Some(map) = map else {
        // Sorted as spilled.
        let runs = runs.into_iter();
        let readers = runs.map(|run| BufReader::with_capacity(READ_AHEAD, run));
        return Merged::new(Vec::new(), readers.collect());
    };
    let mut readers = Vec::with_capacity(runs.len());
    let mut bytes = vec![0u8; READ_AHEAD / T::BYTES * T::BYTES];
    for mut run in runs {
        // Read back a chunk at a time into the memory the records were held in.
        held.clear();
        let mut at = 0;
        loop {
            let n = run.read(&mut bytes[at..])?;
            at += n;
            let whole = at / T::BYTES * T::BYTES;
            held.extend(
                bytes[..whole]
                    .chunks_exact(T::BYTES)
                    .map(|b| map(T::get(b))),
            );
            bytes.copy_within(whole..at, 0);
            at -= whole;
            if n == 0 {
                break;
            }
        }
        held.sort_unstable();
        run.set_len(0)?;
        run.seek(SeekFrom::Start(0))?;
        let mut run = write_run(run, &held)?;
        run.seek(SeekFrom::Start(0))?;
        readers.push(BufReader::with_capacity(READ_AHEAD, run));
    }
    Merged::new(Vec::new(), readers)
}

fn write_run<T: Record>(run: File, records: &[T]) -> io::Result<File> {
    let mut out = BufWriter::with_capacity(READ_AHEAD, run);
    let mut bytes = Vec::with_capacity(READ_AHEAD);
    for chunk in records.chunks(READ_AHEAD / T::BYTES) {
        bytes.clear();
        chunk.iter().for_each(|r| r.put(&mut bytes));
        out.write_all(&bytes)?;
    }
    out.into_inner().map_err(|e| e.into_error())
}

/// Sorted records, from memory or merged from runs; read on a blocking thread.
pub struct Merged<T> {
    held: std::vec::IntoIter<T>,
    runs: Vec<BufReader<File>>,
    /// The next record of each run not yet taken, smallest first.
    heads: BinaryHeap<Reverse<(T, usize)>>,
}

impl<T: Record> Merged<T> {
    /// The merge, with the first record of each run read.
    fn new(held: Vec<T>, runs: Vec<BufReader<File>>) -> io::Result<Self> {
        let mut merged = Merged {
            held: held.into_iter(),
            runs,
            heads: BinaryHeap::new(),
        };
        for run in 0..merged.runs.len() {
            merged.read(run)?;
        }
        Ok(merged)
    }

    fn read(&mut self, run: usize) -> io::Result<()> {
        let mut bytes = [0u8; 16];
        let bytes = &mut bytes[..T::BYTES];
        match self.runs[run].read_exact(bytes) {
            Ok(()) => {
                self.heads.push(Reverse((T::get(bytes), run)));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<T: Record> Iterator for Merged<T> {
    type Item = io::Result<T>;

    fn next(&mut self) -> Option<io::Result<T>> {
        if self.runs.is_empty() {
            return self.held.next().map(Ok);
        }
        let Reverse((record, run)) = self.heads.pop()?;
        Some(self.read(run).map(|()| record))
    }
}

/// Bytes a blocking thread hands to the async writer of a sidecar.
pub struct Sink(mpsc::Sender<Vec<u8>>);

impl Sink {
    pub fn send(&self, bytes: Vec<u8>) -> Result<()> {
        self.0
            .blocking_send(bytes)
            .map_err(|_| Error::internal("the sidecar's writer stopped"))
    }
}

/// Runs `work` on a blocking thread, writing the bytes it sends to `out` as they come.
pub async fn write_from<W, R>(
    out: &mut W,
    work: impl FnOnce(Sink) -> Result<R> + Send + 'static,
) -> Result<R>
where
    W: AsyncWrite + Unpin,
    R: Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let task = tokio::task::spawn_blocking(move || work(Sink(tx)));
    let mut failed = None;
    while let Some(bytes) = rx.recv().await {
        if let Err(e) = out.write_all(&bytes).await {
            failed = Some(e);
            break;
        }
    }
    drop(rx);
    let done = task.await?;
    match failed {
        Some(e) => Err(e.into()),
        None => done,
    }
}

/// Sends a local file's bytes, from its start, to `sink`.
pub fn send_file(file: File, sink: &Sink) -> Result<()> {
    let mut file = file;
    file.seek(SeekFrom::Start(0))?;
    loop {
        let mut chunk = vec![0u8; READ_AHEAD * 4];
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        sink.send(chunk)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrambled(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20)
            .collect()
    }

    #[tokio::test]
    async fn runs_spilled_merge_to_the_same_order_as_memory() {
        let records = scrambled(300_000);
        let mut want = records.clone();
        want.sort_unstable();
        // A budget of 64K records: five runs on disk; a large one: none.
        for (budget, runs) in [(8 * MIN_HELD, 15), (1 << 30, 0)] {
            let mut sorter = Sorter::<u64>::new(budget);
            for chunk in records.chunks(10_000) {
                chunk.iter().for_each(|r| sorter.push(*r));
                sorter.settle().await.unwrap();
            }
            assert_eq!((sorter.len(), sorter.runs()), (300_000, runs));
            let got: Vec<u64> = sorter.finish().await.unwrap().map(|r| r.unwrap()).collect();
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn a_mapping_that_reorders_is_sorted_again_run_by_run() {
        let records = scrambled(200_000);
        // Reversing the order: a run written in the old order would come out wrong.
        let flip = |r: u64| u64::MAX - r;
        let mut want: Vec<u64> = records.iter().map(|r| flip(*r)).collect();
        want.sort_unstable();
        for budget in [8 * MIN_HELD, 1 << 30] {
            let mut sorter = Sorter::<u64>::new(budget);
            for chunk in records.chunks(10_000) {
                chunk.iter().for_each(|r| sorter.push(*r));
                sorter.settle().await.unwrap();
            }
            let merged = sorter.finish_mapped(flip).await.unwrap();
            let got: Vec<u64> = merged.map(|r| r.unwrap()).collect();
            assert_eq!(got, want);
        }
    }
}
