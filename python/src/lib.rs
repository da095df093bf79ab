//! `jetrt._jetrt`, the native half of the `jetrt` Python package (the
//! Python half, `pysrc/jetrt/__init__.py`, re-exports it; docs/PYTHON.md is
//! the guide). The API follows onnxruntime's: `InferenceSession(path)`,
//! `get_inputs()`, `run(output_names, feeds)`.
//!
//! Inputs that are C-contiguous arrays of the model's dtype are read where
//! they lie (copied once, into the session's arena, as every run does);
//! others are converted first, and `InferenceSession.input_copies` counts
//! those conversions. The GIL is released while a model runs.
use jetrt::{Backend, DType, Isa, Model, QIsa, Session, SessionOptions, TensorMut, TensorRef};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Mutex;

mod convert;
mod info;

pyo3::create_exception!(jetrt, Error, PyException, "Every error jetrt raises; its message is the runtime's.");
pyo3::create_exception!(jetrt, InvalidArgument, Error, "A bad argument: an unknown input or output name, option or device.");
pyo3::create_exception!(jetrt, InvalidModel, Error, "The file is not a valid .jrt model (or cannot be read).");
pyo3::create_exception!(jetrt, InvalidInput, Error, "An input of the wrong dtype or shape, or a missing one.");
pyo3::create_exception!(jetrt, Unavailable, Error, "What was asked for is not available here (no usable GPU, say).");
pyo3::create_exception!(jetrt, RuntimeFailure, Error, "A run failed (a GPU error, say).");
pyo3::create_exception!(jetrt, ConversionError, Error, "jetrt.convert failed: a malformed or unsupported ONNX model.");

/// The runtime's error as the matching Python exception, with its causes.
fn py_err(e: jetrt::Error) -> PyErr {
    use jetrt::Error as E;
    let msg = e.chain();
    match e {
        E::Io { .. } | E::Format(_) => InvalidModel::new_err(msg),
        E::InputCount { .. } | E::InputDType { .. } | E::InputShape { .. } | E::InputLength { .. } | E::OutputBuffer { .. } => {
            InvalidInput::new_err(msg)
        }
        E::UnknownInput { .. } | E::UnknownOutput { .. } | E::Options(_) | E::OutputCount { .. } => InvalidArgument::new_err(msg),
        E::BackendUnavailable { .. } | E::DoesNotFit(_) => Unavailable::new_err(msg),
        _ => RuntimeFailure::new_err(msg),
    }
}

/// The numpy dtype name of a `.jrt` element type (numpy has no bfloat16:
/// its raw bits as uint16).
fn np_name(d: DType) -> &'static str {
    if d == DType::BF16 {
        "uint16"
    } else {
        d.numpy_name()
    }
}

/// `numpy.dtype(name)`.
fn np_dtype<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyArrayDescr>> {
    Ok(py.import("numpy")?.getattr("dtype")?.call1((name,))?.cast_into::<PyArrayDescr>()?)
}

/// onnxruntime's type string (`NodeArg.type`).
fn ort_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "tensor(float)",
        DType::F16 => "tensor(float16)",
        DType::BF16 => "tensor(bfloat16)",
        DType::F64 => "tensor(double)",
        DType::I8 => "tensor(int8)",
        DType::U8 => "tensor(uint8)",
        DType::I16 => "tensor(int16)",
        DType::U16 => "tensor(uint16)",
        DType::I32 => "tensor(int32)",
        DType::U32 => "tensor(uint32)",
        DType::I64 => "tensor(int64)",
        DType::U64 => "tensor(uint64)",
        DType::Bool => "tensor(bool)",
    }
}

/// A model input or output: `name`, `shape` (fixed), `dtype` (numpy) and
/// `type` (onnxruntime's string), as onnxruntime's `NodeArg`.
#[pyclass(frozen, module = "jetrt")]
struct NodeArg {
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    shape: Vec<usize>,
    #[pyo3(get, name = "type")]
    type_: &'static str,
    dtype_name: &'static str,
    nbytes: usize,
}

#[pymethods]
impl NodeArg {
    /// The element type as a numpy dtype.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDescr>> {
        np_dtype(py, self.dtype_name)
    }
    /// Bytes of the whole tensor.
    #[getter]
    fn nbytes(&self) -> usize {
        self.nbytes
    }
    fn __repr__(&self) -> String {
        format!("NodeArg(name={:?}, type={:?}, shape={:?})", self.name, self.type_, self.shape)
    }
}

fn node_args(list: &[jetrt::TensorInfo]) -> Vec<NodeArg> {
    list.iter()
        .map(|t| NodeArg {
            name: t.name.clone(),
            shape: t.shape.clone(),
            type_: ort_type(t.dtype),
            dtype_name: np_name(t.dtype),
            nbytes: t.nbytes(),
        })
        .collect()
}

/// The options `InferenceSession` takes.
/// A kernel variant by name (None or "auto": the best detected).
fn variant<T: Copy>(what: &str, want: Option<&str>, all: &[T], name: fn(T) -> &'static str) -> PyResult<Option<T>> {
    match want {
        None | Some("auto") => Ok(None),
        Some(w) => all.iter().copied().find(|&v| name(v) == w).map(Some).ok_or_else(|| {
            let known: Vec<_> = all.iter().map(|&v| name(v)).collect();
            InvalidArgument::new_err(format!("{what} {w:?}: no such kernel variant; known: auto, {}", known.join(", ")))
        }),
    }
}

fn options(device: &str, threads: usize, cpu_kernels: Option<&str>, int8_kernels: Option<&str>, fp16: bool) -> PyResult<SessionOptions> {
    let backend = match device {
        "auto" => Backend::Auto,
        "cpu" => Backend::Cpu,
        "cuda" | "gpu" => Backend::Cuda,
        _ => return Err(InvalidArgument::new_err(format!("device {device:?}: expected \"auto\", \"cpu\" or \"cuda\""))),
    };
    Ok(SessionOptions::default()
        .with_backend(backend)
        .with_threads(threads)
        .with_cpu_kernels(variant("cpu_kernels", cpu_kernels, &Isa::ALL, Isa::name)?)
        .with_int8_kernels(variant("int8_kernels", int8_kernels, &QIsa::ALL, QIsa::name)?)
        .with_fp16(fp16))
}

/// Pointers into arrays the caller holds (borrowed for the call) made
/// sendable, so the run can go on without the GIL.
struct Held<T>(T);
// SAFETY: the arrays behind the pointers stay alive and borrowed (numpy's
// borrow flags) for the whole call, which waits for the run to end.
unsafe impl<T> Send for Held<T> {}

/// A model ready to run (onnxruntime's `InferenceSession`). Thread-safe:
/// calls from several Python threads on one session run one at a time;
/// sessions of their own run in parallel (the GIL is released while a
/// model runs).
/// A session and, when asked for, the drift monitor that watches its runs.
struct Running {
    session: Session,
    monitor: Option<jetrt::monitor::Monitor>,
}

impl Running {
    /// Runs what is loaded, then lets the monitor see the inference.
    fn run_loaded(&mut self) -> Result<(), jetrt::Error> {
        self.session.run_loaded()?;
        self.observe()
    }

    fn observe(&mut self) -> Result<(), jetrt::Error> {
        if let Some(m) = &mut self.monitor {
            m.observe(&self.session)?;
        }
        Ok(())
    }
}

#[pyclass(module = "jetrt")]
struct InferenceSession {
    session: Mutex<Running>,
    model: Model,
    inputs: Vec<jetrt::TensorInfo>,
    outputs: Vec<jetrt::TensorInfo>,
    path: String,
    /// numpy's dtype of each input and output, and `numpy.empty`, looked
    /// up once: per call they were a third of the Python overhead.
    in_dtypes: Vec<Py<PyArrayDescr>>,
    out_dtypes: Vec<Py<PyArrayDescr>>,
    empty: Py<PyAny>,
    /// Inputs of the last run that had to be converted (copied) first:
    /// not C-contiguous, or another dtype's array.
    #[pyo3(get)]
    input_copies: usize,
}

impl InferenceSession {
    fn lock(&self) -> std::sync::MutexGuard<'_, Running> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The feeds, in the model's input order, as C-contiguous arrays of the
    /// model's dtypes (converted where they are not: counted).
    fn feeds<'py>(&self, py: Python<'py>, feeds: &Bound<'py, PyDict>) -> PyResult<(Vec<Bound<'py, PyUntypedArray>>, usize)> {
        // A key that names no input: the model's inputs found in the feeds
        // are fewer than its keys.
        let mut present = 0;
        for t in &self.inputs {
            present += usize::from(feeds.contains(&t.name)?);
        }
        if present != feeds.len() {
            self.unknown_feed(feeds)?;
        }
        let mut out = Vec::with_capacity(self.inputs.len());
        let mut copies = 0;
        for (t, want) in self.inputs.iter().zip(&self.in_dtypes) {
            let Some(value) = feeds.get_item(&t.name)? else {
                return Err(InvalidInput::new_err(format!(
                    "input {:?} is missing from the feeds (expected {} {:?})",
                    t.name,
                    np_name(t.dtype),
                    t.shape
                )));
            };
            let arr = match value.cast::<PyUntypedArray>() {
                Ok(a) => a.clone(),
                Err(_) => {
                    // A list or other sequence: it has no dtype, so it
                    // takes the model's.
                    copies += 1;
                    py.import("numpy")?.call_method1("asarray", (value, np_name(t.dtype)))?.cast_into::<PyUntypedArray>()?
                }
            };
            if !arr.dtype().is_equiv_to(want.bind(py)) {
                return Err(InvalidInput::new_err(format!(
                    "input {:?}: expected dtype {}, got {} (convert it, e.g. x.astype(np.{}))",
                    t.name,
                    np_name(t.dtype),
                    arr.dtype(),
                    np_name(t.dtype)
                )));
            }
            if arr.shape() != t.shape.as_slice() {
                return Err(InvalidInput::new_err(format!(
                    "input {:?}: expected shape {:?}, got {:?} (a .jrt model has fixed shapes: convert the ONNX model again with input_shapes={{{:?}: {:?}}})",
                    t.name,
                    t.shape,
                    arr.shape(),
                    t.name,
                    arr.shape()
                )));
            }
            let arr = if arr.is_c_contiguous() {
                arr
            } else {
                copies += 1;
                py.import("numpy")?.call_method1("ascontiguousarray", (arr,))?.cast_into::<PyUntypedArray>()?
            };
            out.push(arr);
        }
        Ok((out, copies))
    }

    /// The error for a feed key that names no input.
    fn unknown_feed(&self, feeds: &Bound<'_, PyDict>) -> PyResult<()> {
        for key in feeds.keys() {
            let name: String =
                key.extract().map_err(|_| InvalidArgument::new_err(format!("feed keys are input names (str), got {key}")))?;
            if !self.inputs.iter().any(|t| t.name == name) {
                let known: Vec<_> = self.inputs.iter().map(|t| t.name.as_str()).collect();
                return Err(InvalidArgument::new_err(format!("no input named {name:?}; the model's inputs are {known:?}")));
            }
        }
        Ok(())
    }
}

/// The bytes of a C-contiguous array.
fn bytes_of(a: &Bound<'_, PyUntypedArray>) -> (*const u8, usize) {
    let n = a.len() * a.dtype().itemsize();
    // SAFETY: the array is C-contiguous (checked by the caller), so its data
    // pointer addresses len · itemsize bytes.
    (unsafe { (*a.as_array_ptr()).data } as *const u8, n)
}

#[pymethods]
impl InferenceSession {
    /// Opens the `.jrt` file at `path` and makes a session: `device` "auto"
    /// (the GPU when one works, else the CPU), "cpu" or "cuda"; `threads` 0
    /// for what the process may use; `cpu_kernels` / `int8_kernels` name a
    /// kernel variant instead of the best detected; `fp16` multiplies in
    /// fp16 on the GPU's tensor cores; `monitor` watches every run with the
    /// drift monitor (the file must hold a drift reference) over a sliding
    /// window of `drift_window` runs: see `drift()`.
    #[new]
    #[pyo3(signature = (path, device = "auto", threads = 0, cpu_kernels = None, int8_kernels = None, fp16 = false, monitor = false, drift_window = jetrt::monitor::DEFAULT_WINDOW))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        device: &str,
        threads: usize,
        cpu_kernels: Option<&str>,
        int8_kernels: Option<&str>,
        fp16: bool,
        monitor: bool,
        drift_window: usize,
    ) -> PyResult<Self> {
        let opts = options(device, threads, cpu_kernels, int8_kernels, fp16)?;
        let (model, session, monitor) = py
            .detach(|| -> Result<_, jetrt::Error> {
                let model = Model::open(&path)?;
                let monitor = monitor
                    .then(|| {
                        let options = jetrt::monitor::MonitorOptions { window: drift_window, ..Default::default() };
                        jetrt::monitor::Monitor::new(&model, options)
                    })
                    .transpose()?;
                let session = model.session(opts)?;
                Ok((model, session, monitor))
            })
            .map_err(py_err)?;
        let (inputs, outputs) = (model.inputs(), model.outputs());
        let dtypes = |list: &[jetrt::TensorInfo]| {
            list.iter().map(|t| np_dtype(py, np_name(t.dtype)).map(Bound::unbind)).collect::<PyResult<Vec<_>>>()
        };
        Ok(InferenceSession {
            session: Mutex::new(Running { session, monitor }),
            model,
            in_dtypes: dtypes(&inputs)?,
            out_dtypes: dtypes(&outputs)?,
            empty: py.import("numpy")?.getattr("empty")?.unbind(),
            inputs,
            outputs,
            path: path.display().to_string(),
            input_copies: 0,
        })
    }

    /// The model's inputs (`NodeArg`: name, shape, dtype, type).
    fn get_inputs(&self) -> Vec<NodeArg> {
        node_args(&self.inputs)
    }

    /// The model's outputs.
    fn get_outputs(&self) -> Vec<NodeArg> {
        node_args(&self.outputs)
    }

    /// Runs the model on `input_feed` ({input name: array}) and returns the
    /// outputs named in `output_names` (None: all, in the model's order) as
    /// new numpy arrays.
    #[pyo3(signature = (output_names, input_feed))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        output_names: Option<Vec<String>>,
        input_feed: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyList>> {
        let wanted: Vec<usize> = match &output_names {
            None => (0..self.outputs.len()).collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.outputs.iter().position(|t| &t.name == n).ok_or_else(|| {
                        let known: Vec<_> = self.outputs.iter().map(|t| t.name.as_str()).collect();
                        InvalidArgument::new_err(format!("no output named {n:?}; the model's outputs are {known:?}"))
                    })
                })
                .collect::<PyResult<_>>()?,
        };
        let (arrays, copies) = self.feeds(py, input_feed)?;
        self.input_copies = copies;
        let ptrs = Held(arrays.iter().map(bytes_of).collect::<Vec<_>>());
        let inputs = &self.inputs;
        let session = &self.session;
        py.detach(move || -> Result<(), jetrt::Error> {
            let ptrs = ptrs;
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            for (i, (t, &(p, n))) in inputs.iter().zip(&ptrs.0).enumerate() {
                // SAFETY: p addresses n bytes of an array held for this call.
                let bytes = unsafe { std::slice::from_raw_parts(p, n) };
                s.session.set_input(i, TensorRef::from_bytes(t.dtype, &t.shape, bytes))?;
            }
            s.run_loaded()
        })
        .map_err(py_err)?;
        let s = self.lock();
        let list = PyList::empty(py);
        for i in wanted {
            let t = &self.outputs[i];
            let out = s.session.output(i).map_err(py_err)?;
            let dst = self.empty.bind(py).call1((t.shape.clone(), self.out_dtypes[i].bind(py)))?.cast_into::<PyUntypedArray>()?;
            let (p, n) = bytes_of(&dst);
            debug_assert_eq!(n, out.bytes().len());
            // SAFETY: the new array owns n bytes at p; nothing else uses it yet.
            unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) }.copy_from_slice(out.bytes());
            list.append(dst)?;
        }
        Ok(list)
    }

    /// Runs the model on `input_feed` and writes every output into the
    /// arrays of `outputs` ({output name: array}, C-contiguous, writable,
    /// of the output's dtype and shape), which the caller owns: no array
    /// is allocated.
    fn run_into<'py>(&mut self, py: Python<'py>, input_feed: &Bound<'py, PyDict>, outputs: &Bound<'py, PyDict>) -> PyResult<()> {
        let (arrays, copies) = self.feeds(py, input_feed)?;
        self.input_copies = copies;
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (t, want) in self.outputs.iter().zip(&self.out_dtypes) {
            let Some(value) = outputs.get_item(&t.name)? else {
                return Err(InvalidArgument::new_err(format!(
                    "outputs has no array for output {:?} ({} {:?})",
                    t.name,
                    np_name(t.dtype),
                    t.shape
                )));
            };
            let arr = value
                .cast::<PyUntypedArray>()
                .map_err(|_| InvalidArgument::new_err(format!("outputs[{:?}] is not a numpy array", t.name)))?;
            if !arr.dtype().is_equiv_to(want.bind(py)) || arr.shape() != t.shape.as_slice() || !arr.is_c_contiguous() {
                return Err(InvalidArgument::new_err(format!(
                    "outputs[{:?}]: expected a C-contiguous {} array of shape {:?}, got {} {:?}",
                    t.name,
                    np_name(t.dtype),
                    t.shape,
                    arr.dtype(),
                    arr.shape()
                )));
            }
            // SAFETY: reading the flags of a live array.
            let writeable = unsafe { (*arr.as_array_ptr()).flags } & numpy::npyffi::NPY_ARRAY_WRITEABLE != 0;
            if !writeable {
                return Err(InvalidArgument::new_err(format!("outputs[{:?}] is read-only", t.name)));
            }
            outs.push(arr.clone());
        }
        let ins = Held(arrays.iter().map(bytes_of).collect::<Vec<_>>());
        let outp = Held(outs.iter().map(bytes_of).collect::<Vec<_>>());
        let (inputs, outputs_info, session) = (&self.inputs, &self.outputs, &self.session);
        py.detach(move || -> Result<(), jetrt::Error> {
            let (ins, outp) = (ins, outp);
            let refs: Vec<TensorRef<'_>> = inputs
                .iter()
                .zip(&ins.0)
                // SAFETY: each pointer addresses n bytes of an array held for this call.
                .map(|(t, &(p, n))| TensorRef::from_bytes(t.dtype, &t.shape, unsafe { std::slice::from_raw_parts(p, n) }))
                .collect();
            let mut muts: Vec<TensorMut<'_>> = outputs_info
                .iter()
                .zip(&outp.0)
                // SAFETY: writable arrays held for this call, one per output.
                .map(|(t, &(p, n))| TensorMut::from_bytes(t.dtype, unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) }))
                .collect();
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            s.session.run(&refs, &mut muts)?;
            s.observe()
        })
        .map_err(py_err)
    }

    /// How the session runs and what it allocated: backend, threads,
    /// kernel variants, arena and allocated bytes.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = self.lock().session.info();
        let d = PyDict::new(py);
        d.set_item("path", &self.path)?;
        d.set_item("backend", i.backend.name())?;
        d.set_item("threads", i.threads)?;
        d.set_item("cpu_kernels", i.cpu_kernels.name())?;
        d.set_item("int8_kernels", i.int8_kernels.name())?;
        d.set_item("arena_bytes", i.arena_bytes)?;
        d.set_item("allocated_bytes", i.allocated_bytes)?;
        d.set_item("gpu", i.gpu.map(|g| g.name))?;
        Ok(d)
    }

    /// The model: its metadata, inputs and outputs, memory figures, and
    /// with `boards` ("all", a board profile name, or a list of names)
    /// whether it fits each board; as `jetrt.model_info(path)`.
    #[pyo3(signature = (boards = None))]
    fn model_info<'py>(&self, py: Python<'py>, boards: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyDict>> {
        info::model_dict(py, &self.model, boards)
    }

    /// The drift monitor's state (the session must be made with
    /// `monitor=True`): the verdict ("ok", "warn", "alarm"), whether the
    /// window is full yet ("ready"), runs seen, and per watched tensor the
    /// PSI, KS distance and mean shift against the file's reference.
    fn drift<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.lock();
        let m = s.monitor.as_ref().ok_or_else(|| {
            InvalidArgument::new_err(format!("the session watches no drift: make it with InferenceSession({:?}, monitor=True)", self.path))
        })?;
        info::drift_dict(py, &self.model, m)
    }

    fn __repr__(&self) -> String {
        format!("InferenceSession({:?}, inputs={}, outputs={})", self.path, self.inputs.len(), self.outputs.len())
    }
}

/// Whether a usable NVIDIA GPU is here: `(True, "NAME")` or `(False, why)`.
#[pyfunction]
fn cuda_available() -> (bool, String) {
    match jetrt::first_usable_gpu() {
        Ok(g) => (true, g.name),
        Err(why) => (false, why),
    }
}

#[pymodule]
fn _jetrt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", jetrt::VERSION)?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("InvalidModel", py.get_type::<InvalidModel>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("RuntimeFailure", py.get_type::<RuntimeFailure>())?;
    m.add_class::<InferenceSession>()?;
    m.add("ConversionError", py.get_type::<ConversionError>())?;
    m.add_class::<NodeArg>()?;
    m.add_function(wrap_pyfunction!(cuda_available, m)?)?;
    m.add_function(wrap_pyfunction!(info::model_info, m)?)?;
    m.add_function(wrap_pyfunction!(convert::convert, m)?)?;
    Ok(())
}
