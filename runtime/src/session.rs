//! [`Session`]: a model ready to run, with its arena (its own, or a
//! [`SharedArena`]), threads and scratch, all allocated when it starts;
//! and [`Output`], an output read in place.

use crate::arena::{lock, Loc, SharedArena, Slot};
use crate::cpu::exec::{self, Ctx};
use crate::cpu::pool::ThreadPool;
use crate::error::{Error, Result};
use crate::lower;
use crate::model::Model;
use crate::options::{Backend, SessionOptions};
use crate::tensor::{Element, TensorId, TensorMut, TensorRef};
use jetrt_format::DType;
use jetrt_kernels::cpu::int8::QIsa;
use jetrt_kernels::cpu::Isa;
use jetrt_kernels::Scratch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A model ready to run: one arena, allocated once (its own, or one shared
/// with other sessions: [`Session::with_arena`]); threads and their
/// scratch. Running allocates nothing.
pub struct Session {
    // Dropped first: it releases the GPU resources of this session only
    // (the arena's device side belongs to the arena).
    #[cfg(feature = "cuda")]
    gpu: Option<crate::cuda::GpuExec>,
    model: Model,
    slot: Arc<Mutex<Slot>>,
    /// This session's mark on the arena (`Slot::holder`).
    id: u64,
    shared: bool,
    /// Which inputs were set since this session last took a shared arena.
    loaded: Vec<bool>,
    pool: ThreadPool,
    /// Per step, whether it is split over the pool (the cost model's call).
    parallel: Vec<bool>,
    scratch: Scratch,
    isa: Isa,
    qisa: QIsa,
    input_locs: Vec<Loc>,
    output_locs: Vec<Loc>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("backend", &self.backend()).field("isa", &self.isa).field("shared_arena", &self.shared).finish()
    }
}

/// How a session runs and what it allocated ([`Session::info`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The backend it runs on (never [`Backend::Auto`]).
    pub backend: Backend,
    /// The GPU it runs on, if it runs on one.
    pub gpu: Option<crate::GpuInfo>,
    /// Threads in all (the calling thread included).
    pub threads: usize,
    /// The CPU kernel variant in use.
    pub cpu_kernels: Isa,
    /// The int8 kernel variant in use.
    pub int8_kernels: QIsa,
    /// Whether convolutions and matrix products multiply in fp16.
    pub fp16: bool,
    /// Steps of the plan that run on the CPU in a GPU session (0 on the
    /// CPU backend).
    pub fallback_steps: usize,
    /// Whether a GPU session replays its plan as one CUDA graph.
    pub cuda_graph: bool,
    /// Bytes of the arena it runs in (its own, or the shared one).
    pub arena_bytes: usize,
    /// Bytes it allocated on the host (arena + scratch); a shared arena
    /// counts in full for each session using it.
    pub allocated_bytes: usize,
    /// Whether it runs in a [`SharedArena`].
    pub shared_arena: bool,
    /// Its memory on the GPU, for a GPU session.
    pub gpu_memory: Option<GpuMemory>,
}

/// A GPU session's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuMemory {
    /// What this session allocated on the GPU (arena, weights, tables).
    pub session_bytes: usize,
    /// What the whole GPU has in use, if the driver says.
    pub in_use_bytes: Option<usize>,
}

/// One output after a run, read in place (from the arena, or from the
/// weights for a constant output): its name, element type and shape, and
/// its bytes ([`Output::as_slice`] to view them as elements). While it
/// lives, sessions sharing the arena wait to run.
pub struct Output<'a> {
    bytes: OutputBytes<'a>,
    name: &'a str,
    dtype: DType,
    shape: &'a [usize],
}

enum OutputBytes<'a> {
    Weights(&'a [u8]),
    Arena(MutexGuard<'a, Slot>, std::ops::Range<usize>),
}

impl Output<'_> {
    pub fn name(&self) -> &str {
        self.name
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        self.shape
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            OutputBytes::Weights(b) => b,
            OutputBytes::Arena(g, r) => &g.arena.bytes()[r.clone()],
        }
    }

    /// The elements, if the output is of type `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        if self.dtype != T::DTYPE {
            return Err(Error::OutputDType { name: self.name.to_string(), dtype: self.dtype, wanted: T::DTYPE });
        }
        // Arena and weight offsets are 64-byte aligned (checked at open).
        bytemuck::try_cast_slice(self.bytes()).map_err(|e| Error::Internal {
            step: 0,
            op: "output",
            reason: format!("output {:?} is not aligned: {e:?}", self.name),
        })
    }
}

impl std::ops::Deref for Output<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Output({:?}, {:?} {:?})", self.name, self.dtype, self.shape)
    }
}

/// Session ids (0 is "no session").
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

impl Session {
    pub(crate) fn new(model: Model, options: SessionOptions) -> Result<Session> {
        let slot = Slot::new(model.d().arena_bytes)?;
        Self::build(model, Arc::new(Mutex::new(slot)), false, options)
    }

    /// A session of `model` that uses `arena` instead of allocating its
    /// own: several models run one after another in one arena, the size of
    /// the largest (see [`SharedArena`]). Fails if `arena` is smaller than
    /// the model's memory plan.
    pub fn with_arena(model: &Model, arena: &SharedArena, options: SessionOptions) -> Result<Session> {
        let needed = model.d().arena_bytes;
        if arena.bytes() < needed {
            return Err(Error::ArenaTooSmall { needed, available: arena.bytes() });
        }
        Self::build(model.clone(), Arc::clone(&arena.slot), true, options)
    }

    fn build(model: Model, slot: Arc<Mutex<Slot>>, shared: bool, options: SessionOptions) -> Result<Session> {
        if options.fp16 && options.backend == Backend::Cpu {
            return Err(Error::Options("fp16 runs on the GPU only (device cuda or auto); the CPU backend computes in fp32".into()));
        }
        let (isa, qisa) = options.kernels()?;
        let threads = options.thread_count();
        let d = model.d();
        let scratch = Scratch::with_shared(threads, model.plan().scratch_floats, model.plan().shared_scratch_floats);
        let pool = ThreadPool::new(threads).map_err(|e| Error::Options(format!("cannot start {threads} threads: {e}")))?;
        let parallel = crate::cpu::cost::parallel_steps(model.plan(), threads);
        let input_locs = d.inputs.iter().map(|&t| lower::loc(d, t)).collect();
        let output_locs = d.outputs.iter().map(|&t| lower::loc(d, t)).collect();
        let gpu = crate::cuda::start(&model, &mut lock(&slot), &options)?;
        log::debug!(
            "session: cpu/{} with {threads} threads ({} of {} steps split over them), arena {} B{}, scratch {} B",
            isa.name(),
            parallel.iter().filter(|&&p| p).count(),
            parallel.len(),
            d.arena_bytes,
            if shared { " (shared)" } else { "" },
            scratch.bytes()
        );
        #[cfg(not(feature = "cuda"))]
        let _: Option<std::convert::Infallible> = gpu;
        Ok(Session {
            #[cfg(feature = "cuda")]
            gpu,
            loaded: vec![false; d.inputs.len()],
            model,
            slot,
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            shared,
            pool,
            parallel,
            scratch,
            isa,
            qisa,
            input_locs,
            output_locs,
        })
    }

    /// The model this session runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// How this session runs and what it allocated.
    pub fn info(&self) -> SessionInfo {
        let arena_bytes = lock(&self.slot).arena.len();
        #[allow(unused_mut)]
        let mut info = SessionInfo {
            backend: Backend::Cpu,
            gpu: None,
            threads: jetrt_kernels::Parallel::workers(&self.pool),
            cpu_kernels: self.isa,
            int8_kernels: self.qisa,
            fp16: false,
            fallback_steps: 0,
            cuda_graph: false,
            arena_bytes,
            allocated_bytes: arena_bytes + self.scratch.bytes(),
            shared_arena: self.shared,
            gpu_memory: None,
        };
        #[cfg(feature = "cuda")]
        if let Some(g) = &self.gpu {
            info.backend = Backend::Cuda;
            info.gpu = Some(g.info().clone());
            info.fp16 = g.fp16();
            info.fallback_steps = g.fallback_steps();
            info.cuda_graph = g.uses_graph();
            info.gpu_memory = Some(GpuMemory { session_bytes: g.device_bytes(), in_use_bytes: g.gpu_memory_in_use() });
        }
        info
    }

    /// The backend this session runs on (never `Auto`).
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "cuda")]
        if self.gpu.is_some() {
            return Backend::Cuda;
        }
        Backend::Cpu
    }

    /// Takes the arena for this session: on a shared arena another
    /// session's tensors are gone, and so are this session's inputs.
    fn take(&mut self, slot: &mut Slot) {
        if slot.holder != self.id {
            slot.holder = self.id;
            self.loaded.iter_mut().for_each(|l| *l = false);
        }
    }

    /// Checks that this session's inputs are in the arena (shared arenas).
    fn check_loaded(&self, slot: &Slot) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        if slot.holder != self.id {
            return Err(Error::ArenaReused { what: "set this session's inputs again before running it".into() });
        }
        if let Some(i) = self.loaded.iter().position(|l| !l) {
            let name = &self.model.d().tensors[self.model.d().inputs[i]].name;
            return Err(Error::ArenaReused { what: format!("input {name:?} was not set since this session took the arena") });
        }
        Ok(())
    }

    /// Copies input `id` (its position, or its name) into the arena after
    /// checking dtype, shape and length; [`Session::run_loaded`] then runs.
    pub fn set_input<'n>(&mut self, id: impl Into<TensorId<'n>>, input: TensorRef<'_>) -> Result<()> {
        let index = self.model.input_position(id.into())?;
        self.check_input(index, &input)?;
        let loc = self.input_locs[index];
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.take(&mut g);
        g.arena.bytes_mut()[loc.start..loc.start + loc.len].copy_from_slice(input.bytes());
        self.loaded[index] = true;
        Ok(())
    }

    /// Input `id`'s bytes in the arena (its position, or its name), for
    /// writing the input in place instead of copying it with
    /// [`Session::set_input`] (the C API's `jetrt_session_input_buffer`);
    /// the input counts as set. The arena never moves, so the pointer stays
    /// valid while the session lives; write through it only between runs,
    /// on the thread that runs the session, and on a shared arena only
    /// right before this session's own run.
    pub fn input_buffer<'n>(&mut self, id: impl Into<TensorId<'n>>) -> Result<(*mut u8, usize)> {
        let index = self.model.input_position(id.into())?;
        let loc = self.input_locs[index];
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.take(&mut g);
        let bytes = &mut g.arena.bytes_mut()[loc.start..loc.start + loc.len];
        self.loaded[index] = true;
        Ok((bytes.as_mut_ptr(), bytes.len()))
    }

    /// Checks input `index`'s dtype, shape and length against the model.
    fn check_input(&self, index: usize, input: &TensorRef<'_>) -> Result<()> {
        let d = self.model.d();
        let Some(&t) = d.inputs.get(index) else {
            return Err(Error::InputCount { expected: d.inputs.len(), found: index + 1 });
        };
        let rec = &d.tensors[t];
        if input.dtype() != rec.dtype {
            return Err(Error::InputDType { name: rec.name.clone(), expected: rec.dtype, found: input.dtype() });
        }
        if input.shape() != rec.shape.dims() {
            return Err(Error::InputShape { name: rec.name.clone(), expected: rec.shape.dims().to_vec(), found: input.shape().to_vec() });
        }
        if input.bytes().len() != rec.nbytes {
            return Err(Error::InputLength {
                name: rec.name.clone(),
                shape: input.shape().to_vec(),
                dtype: input.dtype(),
                expected: rec.nbytes,
                found: input.bytes().len(),
            });
        }
        Ok(())
    }

    /// Runs the plan on the inputs last set with [`Session::set_input`];
    /// read the results with [`Session::output`]. Allocates nothing.
    pub fn run_loaded(&mut self) -> Result<()> {
        self.run_with(None)
    }

    fn run_with(&mut self, times: Option<&mut [f64]>) -> Result<()> {
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.check_loaded(&g)?;
        self.take(&mut g);
        self.run_in(&mut g, times)
    }

    /// Runs the plan in the (locked) arena.
    fn run_in(&mut self, slot: &mut Slot, times: Option<&mut [f64]>) -> Result<()> {
        let model = &self.model;
        let weights = model.weights();
        let ctx = Ctx { isa: self.isa, qisa: self.qisa, par: &self.pool, scratch: &self.scratch, parallel: &self.parallel };
        #[cfg(feature = "cuda")]
        if let Some(g) = &mut self.gpu {
            return g.run(&ctx, model.plan(), slot.arena.bytes_mut(), weights, &self.input_locs, &self.output_locs, times);
        }
        exec::run_plan(&ctx, model.plan(), slot.arena.bytes_mut(), weights, times)
    }

    /// Like [`Session::run_loaded`], adding each step's duration in seconds
    /// to `step_seconds[step]` (a slice of [`Model::steps`]`().len()`), for
    /// profiling. Allocates nothing either.
    pub fn run_profiled(&mut self, step_seconds: &mut [f64]) -> Result<()> {
        self.run_with(Some(step_seconds))
    }

    /// Output `id` (its position, or its name) after a run, read in place.
    /// On a shared arena, an error once another session has used the arena
    /// since.
    pub fn output<'n>(&self, id: impl Into<TensorId<'n>>) -> Result<Output<'_>> {
        let index = self.model.output_position(id.into())?;
        let t = self.model.d().outputs[index];
        let loc = self.output_locs[index];
        self.read(t, loc, "output")
    }

    /// The bytes of tensor `t` of the file, at `loc`.
    fn read(&self, t: usize, loc: Loc, what: &str) -> Result<Output<'_>> {
        let rec = &self.model.d().tensors[t];
        let bytes = if !loc.in_arena {
            OutputBytes::Weights(&self.model.weights()[loc.start..loc.start + loc.len])
        } else {
            let g = lock(&self.slot);
            if self.shared && g.holder != self.id {
                return Err(Error::ArenaReused {
                    what: format!(
                        "{what} {:?} was overwritten by another session's run; read it before running another model in the arena",
                        rec.name
                    ),
                });
            }
            OutputBytes::Arena(g, loc.start..loc.start + loc.len)
        };
        Ok(Output { bytes, name: &rec.name, dtype: rec.dtype, shape: rec.shape.dims() })
    }

    /// The bytes of a model input or output (by its index in the file)
    /// after a run, read in place; for the drift monitor.
    pub(crate) fn tensor_bytes(&self, tensor: usize) -> Result<Output<'_>> {
        let d = self.model.d();
        if let Some(i) = d.outputs.iter().position(|&t| t == tensor) {
            return self.read(tensor, self.output_locs[i], "output");
        }
        let i = d.inputs.iter().position(|&t| t == tensor).ok_or(Error::OutputIndex { index: tensor, count: d.outputs.len() })?;
        self.read(tensor, self.input_locs[i], "input")
    }

    /// Sets every input, runs, and copies every output into `outputs`, in
    /// one go (no other session of a shared arena comes between).
    /// Allocates nothing.
    ///
    /// Inputs and outputs are matched by position, or by name when they
    /// are [named](TensorRef::named) (then in any order; name all or none).
    pub fn run(&mut self, inputs: &[TensorRef<'_>], outputs: &mut [TensorMut<'_>]) -> Result<()> {
        let d = self.model.d();
        if inputs.len() != d.inputs.len() {
            return Err(Error::InputCount { expected: d.inputs.len(), found: inputs.len() });
        }
        if outputs.len() != d.outputs.len() {
            return Err(Error::OutputCount { expected: d.outputs.len(), found: outputs.len() });
        }
        // Where each given tensor goes, checked before anything is written:
        // every input and output exactly once (quadratic, allocation-free;
        // models have a handful).
        let input_at = |k: usize| inputs[k].name().map_or(Ok(k), |n| self.model.input_position(TensorId::Name(n)));
        let output_at = |k: usize| outputs[k].name().map_or(Ok(k), |n| self.model.output_position(TensorId::Name(n)));
        for (k, input) in inputs.iter().enumerate() {
            let i = input_at(k)?;
            for j in 0..k {
                if input_at(j)? == i {
                    return Err(Error::DuplicateInput { name: d.tensors[d.inputs[i]].name.clone() });
                }
            }
            self.check_input(i, input)?;
        }
        for (k, o) in outputs.iter().enumerate() {
            let i = output_at(k)?;
            for j in 0..k {
                if output_at(j)? == i {
                    return Err(Error::DuplicateOutput { name: d.tensors[d.outputs[i]].name.clone() });
                }
            }
            let rec = &d.tensors[d.outputs[i]];
            if o.dtype() != rec.dtype || o.len() != rec.nbytes {
                return Err(Error::OutputBuffer {
                    name: rec.name.clone(),
                    expected_dtype: rec.dtype,
                    expected: rec.nbytes,
                    found_dtype: o.dtype(),
                    found: o.len(),
                });
            }
        }
        // One lock for the whole run: no other session can come between
        // the inputs, the run and the outputs.
        let slot = Arc::clone(&self.slot);
        let mut g = lock(&slot);
        self.take(&mut g);
        for (k, input) in inputs.iter().enumerate() {
            let i = input.name().map_or(Ok(k), |n| self.model.input_position(TensorId::Name(n)))?;
            let loc = self.input_locs[i];
            g.arena.bytes_mut()[loc.start..loc.start + loc.len].copy_from_slice(input.bytes());
            self.loaded[i] = true;
        }
        self.run_in(&mut g, None)?;
        let weights = self.model.weights();
        for (k, o) in outputs.iter_mut().enumerate() {
            let i = o.name().map_or(Ok(k), |n| self.model.output_position(TensorId::Name(n)))?;
            let loc = self.output_locs[i];
            let src = if loc.in_arena { g.arena.bytes() } else { weights };
            o.bytes_mut().copy_from_slice(&src[loc.start..loc.start + loc.len]);
        }
        Ok(())
    }
}
