//! The bounded buffer of rounds not yet delivered: in memory, and with a
//! directory also on disk, one segment file per round, so it survives a
//! restart (or a SIGKILL).
//!
//! A segment file is
//! `VRW1 | seq u64 | timestamp_ms i64 | samples u32 | len u32 | crc32 u32 | payload`
//! (little endian), the payload being the round's snappy-compressed
//! `WriteRequest`. It is written to a `.tmp` name, fsynced, renamed to
//! `<seq>.rwb` and the directory fsynced; it is deleted once the round is
//! delivered or dropped. The queue itself never touches the file system:
//! it lists the writes and deletes to do, and the sender does them outside
//! its lock.

use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"VRW1";
const HEADER: usize = 4 + 8 + 8 + 4 + 4 + 4;
const EXTENSION: &str = "rwb";

/// One round, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub timestamp_ms: i64,
    pub samples: usize,
    /// The snappy-compressed `WriteRequest`.
    pub payload: Bytes,
}

/// Why samples were dropped: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// The buffer was full; the oldest round made room.
    QueueFull,
    /// Older than `queue.max_age`.
    TooOld,
    /// The receiver refused them with a 4xx other than 429.
    Rejected,
    /// A segment file in `queue.dir` could not be read back.
    Corrupt,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::TooOld,
        DropReason::Rejected,
        DropReason::Corrupt,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::TooOld => "too_old",
            DropReason::Rejected => "rejected",
            DropReason::Corrupt => "corrupt",
        }
    }
}

/// A file-system change the sender makes outside the lock.
#[derive(Clone, Debug, PartialEq)]
pub enum FsOp {
    Write(Batch),
    Delete(u64),
}

#[derive(Debug)]
pub struct Queue {
    batches: VecDeque<Batch>,
    samples: usize,
    max_samples: usize,
    next_seq: u64,
    dir: Option<PathBuf>,
    fs_ops: Vec<FsOp>,
    /// The last file work in `dir` failed (full, read-only, deleted): the
    /// rounds stay in memory, and the log says so once, not every round.
    persist_failing: bool,
}

impl Queue {
    pub fn new(max_samples: usize, dir: Option<PathBuf>) -> Self {
        Queue {
            batches: VecDeque::new(),
            samples: 0,
            max_samples: max_samples.max(1),
            next_seq: 1,
            dir,
            fs_ops: Vec::new(),
            persist_failing: false,
        }
    }

    /// Records how the last file work went; `Some(true)` when it starts
    /// failing, `Some(false)` when it works again, `None` when nothing
    /// changed.
    pub fn persist_outcome(&mut self, ok: bool) -> Option<bool> {
        let failing = !ok;
        (self.persist_failing != failing).then(|| {
            self.persist_failing = failing;
            failing
        })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn set_max_samples(&mut self, max_samples: usize) -> usize {
        self.max_samples = max_samples.max(1);
        self.make_room(0)
    }

    /// Adds a round (already compressed); returns the samples of the oldest
    /// rounds dropped to stay within `max_samples`. A round larger than the
    /// whole buffer is dropped itself.
    pub fn push(&mut self, timestamp_ms: i64, samples: usize, payload: Bytes) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(Batch {
            seq,
            timestamp_ms,
            samples,
            payload,
        })
    }

    fn insert(&mut self, batch: Batch) -> usize {
        if batch.samples > self.max_samples {
            return batch.samples;
        }
        let dropped = self.make_room(batch.samples);
        self.next_seq = self.next_seq.max(batch.seq + 1);
        if self.dir.is_some() {
            self.fs_ops.push(FsOp::Write(batch.clone()));
        }
        self.samples += batch.samples;
        self.batches.push_back(batch);
        dropped
    }

    /// Drops the oldest rounds until `incoming` more samples fit.
    fn make_room(&mut self, incoming: usize) -> usize {
        let mut dropped = 0;
        while self.samples + incoming > self.max_samples {
            match self.pop_front() {
                Some(b) => dropped += b.samples,
                None => break,
            }
        }
        dropped
    }

    fn pop_front(&mut self) -> Option<Batch> {
        let batch = self.batches.pop_front()?;
        self.samples -= batch.samples;
        if self.dir.is_some() {
            self.fs_ops.push(FsOp::Delete(batch.seq));
        }
        Some(batch)
    }

    /// Drops the rounds older than `min_timestamp_ms`; returns their samples.
    pub fn expire(&mut self, min_timestamp_ms: i64) -> usize {
        let mut dropped = 0;
        while self
            .batches
            .front()
            .is_some_and(|b| b.timestamp_ms < min_timestamp_ms)
        {
            dropped += self.pop_front().map_or(0, |b| b.samples);
        }
        dropped
    }

    /// The oldest rounds, as many as fit in `max_samples` (at least one).
    pub fn front(&self, max_samples: usize) -> Vec<Batch> {
        let mut taken = Vec::new();
        let mut samples = 0;
        for b in &self.batches {
            if !taken.is_empty() && samples + b.samples > max_samples {
                break;
            }
            samples += b.samples;
            taken.push(b.clone());
        }
        taken
    }

    /// Removes delivered (or refused) rounds `..=last_seq` from the front;
    /// returns their samples.
    pub fn remove_through(&mut self, last_seq: u64) -> usize {
        let mut removed = 0;
        while self.batches.front().is_some_and(|b| b.seq <= last_seq) {
            removed += self.pop_front().map_or(0, |b| b.samples);
        }
        removed
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    pub fn rounds(&self) -> usize {
        self.batches.len()
    }

    pub fn oldest_timestamp_ms(&self) -> Option<i64> {
        self.batches.front().map(|b| b.timestamp_ms)
    }

    /// The writes and deletes the sender should do now, in order.
    pub fn take_fs_ops(&mut self) -> Vec<FsOp> {
        std::mem::take(&mut self.fs_ops)
    }

    /// Loads the segment files of `dir` into the queue, oldest first.
    /// Returns the samples dropped because they did not fit and the ones in
    /// unreadable files (which are deleted), with the reasons.
    pub fn replay(&mut self) -> Vec<(DropReason, usize, String)> {
        let Some(dir) = self.dir.clone() else {
            return Vec::new();
        };
        let mut drops = Vec::new();
        let mut segments = match list_segments(&dir) {
            Ok(s) => s,
            Err(e) => {
                drops.push((DropReason::Corrupt, 0, e));
                return drops;
            }
        };
        segments.sort();
        for (seq, path) in segments {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|data| decode_segment(&data))
            {
                Ok(batch) if batch.seq == seq => {
                    let dropped = self.insert(batch);
                    if dropped > 0 {
                        drops.push((DropReason::QueueFull, dropped, String::new()));
                    }
                }
                Ok(_) => {
                    drops.push((
                        DropReason::Corrupt,
                        0,
                        format!("{}: sequence number does not match", path.display()),
                    ));
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    drops.push((DropReason::Corrupt, 0, format!("{}: {e}", path.display())));
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        // Replayed rounds are on disk already.
        self.fs_ops.retain(|op| !matches!(op, FsOp::Write(_)));
        drops
    }
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("reading queue.dir {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(&format!(".{EXTENSION}")) {
            if let Ok(seq) = stem.parse::<u64>() {
                out.push((seq, path));
            }
        } else if name.ends_with(".tmp") {
            // A write cut short by a crash: never renamed, never acknowledged.
            let _ = std::fs::remove_file(&path);
        }
    }
    Ok(out)
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{EXTENSION}"))
}

pub fn encode_segment(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + batch.payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&batch.seq.to_le_bytes());
    out.extend_from_slice(&batch.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&(batch.samples as u32).to_le_bytes());
    out.extend_from_slice(&(batch.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&batch.payload).to_le_bytes());
    out.extend_from_slice(&batch.payload);
    out
}

pub fn decode_segment(data: &[u8]) -> Result<Batch, String> {
    let field = |at: usize, len: usize| {
        data.get(at..at + len)
            .ok_or_else(|| format!("truncated: {} bytes", data.len()))
    };
    if field(0, 4)? != MAGIC {
        return Err("not a vitals remote-write segment".into());
    }
    let u64_at = |at| -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(field(at, 8)?);
        Ok(u64::from_le_bytes(b))
    };
    let u32_at = |at| -> Result<u32, String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(field(at, 4)?);
        Ok(u32::from_le_bytes(b))
    };
    let seq = u64_at(4)?;
    let timestamp_ms = u64_at(12)? as i64;
    let samples = u32_at(20)? as usize;
    let len = u32_at(24)? as usize;
    let crc = u32_at(28)?;
    let payload = field(HEADER, len)?;
    if data.len() != HEADER + len {
        return Err(format!(
            "length {} does not match the header's {}",
            data.len(),
            HEADER + len
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(Batch {
        seq,
        timestamp_ms,
        samples,
        payload: Bytes::copy_from_slice(payload),
    })
}

/// Does the queue's file-system work: write (fsynced, then renamed) or
/// delete segment files. Errors are returned for the log; the round stays
/// in memory either way.
pub fn apply_fs_ops(dir: &Path, ops: Vec<FsOp>) -> Result<(), String> {
    let mut first_error = None;
    let mut wrote = false;
    for op in ops {
        let result = match op {
            FsOp::Write(batch) => {
                wrote = true;
                write_segment(dir, &batch)
            }
            FsOp::Delete(seq) => match std::fs::remove_file(segment_path(dir, seq)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("deleting a segment in {}: {e}", dir.display()))
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    if wrote {
        // The renames are durable once the directory is.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes one segment. A failure leaves no file behind: a half-written
/// `.tmp` on a full file system would only keep it full. A `queue.dir`
/// deleted while vitals runs is made again (what it held is still in
/// memory).
fn write_segment(dir: &Path, batch: &Batch) -> Result<(), String> {
    let path = segment_path(dir, batch.seq);
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| format!("writing {}: {e}", tmp.display());
    let file = match std::fs::File::create(&tmp) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("making queue.dir {} again: {e}", dir.display()))?;
            std::fs::File::create(&tmp)
        }
        other => other,
    };
    let written = file.and_then(|mut file| {
        file.write_all(&encode_segment(batch))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: u8) -> Bytes {
        Bytes::from(vec![n; 3])
    }

    #[test]
    fn a_failed_write_leaves_no_file_and_a_deleted_dir_is_made_again() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("queue");
        let mut q = Queue::new(100, Some(dir.clone()));
        // queue.dir deleted (here: never made): made again, the round written.
        q.push(1000, 1, payload(1));
        apply_fs_ops(&dir, q.take_fs_ops()).unwrap();
        assert_eq!(count_files(&dir), ["00000000000000000001.rwb"]);
        // A directory where a segment's temporary name goes: the write
        // fails (EISDIR) and names the file; the round is still queued.
        std::fs::create_dir(dir.join("00000000000000000002.tmp")).unwrap();
        std::fs::write(dir.join("00000000000000000002.tmp/x"), b"").unwrap();
        q.push(1001, 1, payload(2));
        let e = apply_fs_ops(&dir, q.take_fs_ops()).unwrap_err();
        assert!(e.contains("00000000000000000002.tmp"), "{e}");
        assert_eq!(q.rounds(), 2);
        // Failing, still failing, working again: two changes to tell.
        assert_eq!(q.persist_outcome(false), Some(true));
        assert_eq!(q.persist_outcome(false), None);
        assert_eq!(q.persist_outcome(true), Some(false));
        assert_eq!(q.persist_outcome(true), None);
    }

    fn count_files(dir: &Path) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn full_queue_drops_exactly_the_oldest_rounds() {
        let mut q = Queue::new(10, None);
        for i in 0..5 {
            assert_eq!(q.push(1000 + i, 2, payload(i as u8)), 0);
        }
        assert_eq!((q.samples(), q.rounds()), (10, 5));
        // Three more samples: the two oldest rounds (4 samples) go.
        assert_eq!(q.push(2000, 3, payload(9)), 4);
        assert_eq!(q.oldest_timestamp_ms(), Some(1002));
        assert_eq!((q.samples(), q.rounds()), (9, 4));
        // A round larger than the whole buffer is refused, nothing else goes.
        assert_eq!(q.push(3000, 11, payload(10)), 11);
        assert_eq!(q.samples(), 9);
    }

    #[test]
    fn front_takes_whole_rounds_up_to_the_limit_and_remove_through_pops_them() {
        let mut q = Queue::new(100, None);
        for i in 0..4 {
            q.push(i, 3, payload(i as u8));
        }
        let front = q.front(7);
        assert_eq!(front.iter().map(|b| b.seq).collect::<Vec<_>>(), [1, 2]);
        // At least one round even if it alone is over the limit.
        assert_eq!(q.front(1).len(), 1);
        assert_eq!(q.remove_through(2), 6);
        assert_eq!(q.front(100)[0].seq, 3);
        // Rounds stamped before 3 ms are too old: only seq 3 (stamped 2).
        assert_eq!(q.expire(3), 3);
        assert_eq!(q.front(100)[0].seq, 4);
    }

    #[test]
    fn segments_round_trip_and_damage_is_detected() {
        let batch = Batch {
            seq: 42,
            timestamp_ms: 1_700_000_000_000,
            samples: 150,
            payload: Bytes::from_static(b"snappy bytes"),
        };
        let data = encode_segment(&batch);
        assert_eq!(decode_segment(&data), Ok(batch));
        assert!(decode_segment(&data[..data.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        let mut flipped = data.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode_segment(&flipped).unwrap_err(), "checksum mismatch");
        let mut longer = data;
        longer.push(0);
        assert!(decode_segment(&longer).unwrap_err().contains("length"));
    }

    #[test]
    fn a_directory_queue_survives_a_restart_in_order_and_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::new(100, Some(dir.path().to_owned()));
        for i in 0..4 {
            q.push(1000 + i, 10, payload(i as u8));
        }
        apply_fs_ops(dir.path(), q.take_fs_ops()).unwrap();
        assert_eq!(q.remove_through(1), 10);
        apply_fs_ops(dir.path(), q.take_fs_ops()).unwrap();
        std::fs::write(dir.path().join("00000000000000000099.rwb"), b"VRW1junk").unwrap();
        std::fs::write(dir.path().join("00000000000000000100.tmp"), b"half").unwrap();
        drop(q);

        // Restarted with room for two rounds: the oldest survivor is dropped.
        let mut q = Queue::new(20, Some(dir.path().to_owned()));
        let drops = q.replay();
        assert_eq!(
            drops.iter().map(|(r, n, _)| (*r, *n)).collect::<Vec<_>>(),
            [(DropReason::QueueFull, 10), (DropReason::Corrupt, 0)]
        );
        let front = q.front(100);
        assert_eq!(front.iter().map(|b| b.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(front[1].payload, payload(3));
        // New rounds continue the numbering; the dropped file is deleted.
        q.push(2000, 10, payload(7));
        apply_fs_ops(dir.path(), q.take_fs_ops()).unwrap();
        let mut files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            ["00000000000000000004.rwb", "00000000000000000005.rwb",]
        );
    }
}
