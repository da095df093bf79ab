//! The arena: one block of memory per session, sized by the file's memory
//! plan, allocated once.
//!
//! A step reads its inputs from and writes its outputs to the same arena.
//! The reader proved at open that a step's outputs never overlap anything
//! live at that step, so the arena can be split into disjoint borrows: the
//! outputs mutably, the gaps between them shared. This is done with
//! `split_at_mut` (no `unsafe`) and without allocating.

use crate::error::{Error, Result};
use jetrt_format::MAX_STEP_OUTPUTS;

/// 64 bytes, 64-aligned: the unit the arena is allocated in, so that every
/// tensor offset (a multiple of 64) is 64-aligned in memory too.
#[repr(C, align(64))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Block([u8; 64]);

pub(crate) struct Arena {
    blocks: Vec<Block>,
    len: usize,
}

impl Arena {
    /// Allocates `bytes`, zeroed by the allocator (fresh pages from the OS
    /// are not touched until used); a failed allocation is an error, not an
    /// abort.
    pub fn new(bytes: usize) -> Result<Self> {
        let n = bytes.div_ceil(64);
        let blocks = bytemuck::allocation::try_zeroed_vec::<Block>(n)
            .map_err(|_| Error::Options(format!("cannot allocate an arena of {bytes} bytes: out of memory")))?;
        Ok(Arena { blocks, len: bytes })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.blocks)[..self.len]
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.blocks)[..self.len]
    }
}

/// An arena and the session whose tensors it holds. Every session has one:
/// its own, or one shared with other sessions ([`SharedArena`]).
pub(crate) struct Slot {
    /// The device side (declared first: dropped before the host arena it
    /// pins).
    #[cfg(feature = "cuda")]
    pub gpu: Option<crate::cuda::GpuArena>,
    pub arena: Arena,
    /// The session that last wrote the arena (0: none yet).
    pub holder: u64,
}

impl Slot {
    pub fn new(bytes: usize) -> Result<Slot> {
        Ok(Slot {
            #[cfg(feature = "cuda")]
            gpu: None,
            arena: Arena::new(bytes)?,
            holder: 0,
        })
    }
}

/// Locks a slot; a panic in another session's run leaves the arena's bytes
/// undefined but not unsafe, and the next run overwrites them.
pub(crate) fn lock(slot: &std::sync::Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// One arena for several sessions that run one after another, as the
/// models of a pipeline do (a detector, then a recognizer on its crops):
/// the pipeline holds the largest model's arena instead of the sum of all.
/// On the GPU the device arena is shared the same way.
///
/// A session's tensors live in the arena until another session writes it:
/// [`Session::run`](crate::Session::run) sets the inputs, runs and copies
/// the outputs out in one go; reading an output or running after another
/// session has used the arena is an error ([`Error::ArenaReused`]), never
/// stale data. Sessions sharing an arena take turns (a lock): use one
/// arena per thread for models that run in parallel.
///
/// ```no_run
/// use jetrt::{Model, SharedArena, Session, SessionOptions};
/// let det = Model::open("det.jrt")?;
/// let rec = Model::open("rec.jrt")?;
/// let arena = SharedArena::for_models(&[&det, &rec])?;
/// let mut det_s = Session::with_arena(&det, &arena, SessionOptions::default())?;
/// let mut rec_s = Session::with_arena(&rec, &arena, SessionOptions::default())?;
/// # Ok::<(), jetrt::Error>(())
/// ```
pub struct SharedArena {
    pub(crate) slot: std::sync::Arc<std::sync::Mutex<Slot>>,
    bytes: usize,
}

impl SharedArena {
    /// An arena of `bytes` bytes, allocated now, once.
    pub fn new(bytes: usize) -> Result<SharedArena> {
        Ok(SharedArena { slot: std::sync::Arc::new(std::sync::Mutex::new(Slot::new(bytes)?)), bytes })
    }

    /// An arena large enough for each of `models` (the largest memory plan).
    pub fn for_models(models: &[&crate::Model]) -> Result<SharedArena> {
        Self::new(models.iter().map(|m| m.info().memory.arena_bytes).max().unwrap_or(0))
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sessions using it now.
    pub fn sessions(&self) -> usize {
        std::sync::Arc::strong_count(&self.slot) - 1
    }
}

impl std::fmt::Debug for SharedArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedArena").field("bytes", &self.bytes).field("sessions", &self.sessions()).finish()
    }
}

/// Where a tensor's bytes are: arena or weights, byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub in_arena: bool,
    pub start: usize,
    pub len: usize,
}

/// The read-only side of a split arena, plus the weights.
pub(crate) struct Reads<'a> {
    weights: &'a [u8],
    /// (start offset in the arena, bytes) of each gap between outputs.
    gaps: heapless::Vec<(usize, &'a [u8]), { MAX_STEP_OUTPUTS + 1 }>,
}

impl<'a> Reads<'a> {
    /// The bytes at `loc`, or `None` if they overlap an output of the step
    /// (which validation rules out).
    pub fn get(&self, loc: Loc) -> Option<&'a [u8]> {
        if !loc.in_arena {
            return self.weights.get(loc.start..loc.start.checked_add(loc.len)?);
        }
        let end = loc.start.checked_add(loc.len)?;
        self.gaps.iter().find_map(
            |&(g, bytes)| {
                if loc.start >= g && end <= g + bytes.len() {
                    bytes.get(loc.start - g..end - g)
                } else {
                    None
                }
            },
        )
    }
}

/// Splits the arena for one step: the outputs (arena ranges, in step order)
/// come back as mutable slices in the same order; everything else is
/// readable through [`Reads`]. `None` if outputs overlap each other or lie
/// outside the arena.
pub(crate) fn split<'a>(
    arena: &'a mut [u8],
    weights: &'a [u8],
    outputs: &[Loc],
) -> Option<(Reads<'a>, heapless::Vec<&'a mut [u8], MAX_STEP_OUTPUTS>)> {
    // Sort output indices by offset (insertion sort: at most 16 entries).
    let mut order: heapless::Vec<usize, MAX_STEP_OUTPUTS> = (0..outputs.len()).collect();
    for i in 1..order.len() {
        let mut j = i;
        while j > 0 && outputs[order[j - 1]].start > outputs[order[j]].start {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut gaps = heapless::Vec::new();
    let mut slots: [Option<&'a mut [u8]>; MAX_STEP_OUTPUTS] = Default::default();
    let mut rest = arena;
    let mut pos = 0usize;
    for &i in &order {
        let loc = outputs[i];
        if !loc.in_arena || loc.start < pos {
            return None;
        }
        let (gap, tail) = rest.split_at_mut_checked(loc.start - pos)?;
        let (out, tail) = tail.split_at_mut_checked(loc.len)?;
        gaps.push((pos, &*gap)).ok()?;
        slots[i] = Some(out);
        pos = loc.start + loc.len;
        rest = tail;
    }
    gaps.push((pos, &*rest)).ok()?;
    let mut outs = heapless::Vec::new();
    for slot in slots.iter_mut().take(outputs.len()) {
        outs.push(slot.take()?).ok()?;
    }
    Some((Reads { weights, gaps }, outs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_disjoint_outputs_and_readable_gaps() {
        let mut arena: Vec<u8> = (0..=255).collect();
        let weights = [7u8; 16];
        let outs = [Loc { in_arena: true, start: 128, len: 64 }, Loc { in_arena: true, start: 0, len: 64 }];
        let (reads, mut o) = split(&mut arena, &weights, &outs).unwrap();
        assert_eq!(o[0][0], 128);
        assert_eq!(o[1][0], 0);
        o[0][0] = 1;
        assert_eq!(reads.get(Loc { in_arena: true, start: 64, len: 64 }).unwrap()[0], 64);
        assert_eq!(reads.get(Loc { in_arena: true, start: 192, len: 64 }).unwrap()[63], 255);
        // Overlapping an output is refused.
        assert!(reads.get(Loc { in_arena: true, start: 100, len: 64 }).is_none());
        assert_eq!(reads.get(Loc { in_arena: false, start: 8, len: 8 }).unwrap(), &[7u8; 8]);
        drop((reads, o));
        // Overlapping outputs are refused.
        let bad = [Loc { in_arena: true, start: 0, len: 64 }, Loc { in_arena: true, start: 32, len: 64 }];
        assert!(split(&mut arena, &weights, &bad).is_none());
    }
}
