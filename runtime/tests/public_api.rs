//! The public surface, used as the documentation promises it: a change that
//! breaks a program written against it fails to compile here. Each item is
//! named with its type, so a changed signature fails too.

use jetrt::monitor::{AlarmPin, MetricsFile, Monitor, MonitorOptions, TensorStats, Thresholds, Verdict, Watch};
use jetrt::{
    Backend, CudaFallback, CudaOptions, DType, Element, Error, GpuInfo, GpuMemory, Isa, MemoryInfo, Model, ModelInfo, Output, QIsa, Result,
    Session, SessionInfo, SessionOptions, SharedArena, StepInfo, TensorId, TensorInfo, TensorMut, TensorRef,
};

#[test]
fn the_documented_surface_compiles_and_runs() -> Result<()> {
    let bytes = jetrt::doc_example_model();
    let model: Model = Model::from_bytes(&bytes)?;
    let info: ModelInfo = model.info();
    let memory: MemoryInfo = info.memory;
    let inputs: &[TensorInfo] = &info.inputs;
    assert_eq!((inputs[0].name.as_str(), inputs[0].dtype, inputs[0].shape.as_slice()), ("x", DType::F32, &[1usize, 4][..]));
    assert_eq!(memory.session_bytes(1), memory.arena_bytes + memory.scratch_bytes_per_thread + memory.scratch_bytes_shared);
    let _: (u16, u16) = info.format_version;
    let _: Vec<StepInfo> = model.steps();
    let _: Vec<CudaFallback> = model.cuda_fallbacks(&SessionOptions::default());
    let _: Option<&str> = model.meta("name");

    let cuda: CudaOptions = CudaOptions::default().with_graph(true).with_unverified_kernels(false).with_kernel_cache_dir(None);
    let options = SessionOptions::new()
        .with_backend(Backend::Cpu)
        .with_threads(1)
        .with_cpu_kernels(None::<Isa>)
        .with_int8_kernels(None::<QIsa>)
        .with_fp16(false)
        .with_cuda(cuda);
    let mut assigned = SessionOptions::default();
    assigned.threads = 1;
    let _: (Isa, QIsa) = assigned.kernels()?;
    let available: usize = jetrt::available_threads();
    assert!(available >= 1);

    let mut session: Session = model.session(options)?;
    let x = [1.0f32, -2.0, 3.0, -4.0];
    let mut y = [0.0f32; 4];
    session.run(&[TensorRef::new(&[1, 4], &x)], &mut [TensorMut::new(&mut y)])?;
    assert_eq!(y, [1.0, 0.0, 3.0, 0.0]);
    session.run(&[TensorRef::f32(&[1, 4], &x).named("x")], &mut [TensorMut::f32(&mut y).named("y")])?;
    session.set_input(0, TensorRef::from_bytes(DType::F32, &[1, 4], bytemuck::cast_slice(&x)))?;
    session.set_input("x", TensorRef::new(&[1, 4], &x))?;
    session.set_input(TensorId::Name("x"), TensorRef::new(&[1, 4], &x))?;
    session.run_loaded()?;
    let mut step_seconds = vec![0.0; model.steps().len()];
    session.run_profiled(&mut step_seconds)?;
    {
        let out: Output<'_> = session.output("y")?;
        assert_eq!((out.name(), out.dtype(), out.shape()), ("y", DType::F32, &[1usize, 4][..]));
        assert_eq!(out.as_slice::<f32>()?, &[1.0, 0.0, 3.0, 0.0]);
        assert_eq!(out.bytes().len(), 16);
        assert!(matches!(out.as_slice::<u8>(), Err(Error::OutputDType { .. })));
    }
    let s: SessionInfo = session.info();
    assert_eq!((s.backend, s.threads, s.fp16, s.gpu_memory), (Backend::Cpu, 1, false, None::<GpuMemory>));
    let _: Option<GpuInfo> = s.gpu;

    // Every element type the format has a Rust type for.
    fn dtype<T: Element>() -> DType {
        T::DTYPE
    }
    assert_eq!(
        [
            dtype::<f32>(),
            dtype::<f64>(),
            dtype::<i8>(),
            dtype::<u8>(),
            dtype::<i16>(),
            dtype::<u16>(),
            dtype::<i32>(),
            dtype::<u32>(),
            dtype::<i64>(),
            dtype::<u64>()
        ],
        [DType::F32, DType::F64, DType::I8, DType::U8, DType::I16, DType::U16, DType::I32, DType::U32, DType::I64, DType::U64]
    );

    let arena = SharedArena::for_models(&[&model])?;
    let _: Session = Session::with_arena(&model, &arena, SessionOptions::default().with_backend(Backend::Cpu))?;

    // A CUDA session in a build or on a machine without one: a clear error.
    match model.session(SessionOptions::default().with_backend(Backend::Cuda)) {
        Ok(s) => assert_eq!(s.info().backend, Backend::Cuda),
        Err(e) => assert!(matches!(e, Error::BackendUnavailable { backend: "cuda", .. }), "{e}"),
    }

    // The monitor's surface (the example model has no drift reference).
    let _: fn(&Model, MonitorOptions) -> Result<Monitor> = Monitor::new;
    let _: fn(&Model, MonitorOptions) -> Result<Watch> = Watch::new;
    let _: fn(std::path::PathBuf, &str) -> MetricsFile = MetricsFile::new;
    let _: Option<TensorStats> = None;
    let _: Thresholds = MonitorOptions::default().thresholds;
    let _ = AlarmPin::<NoPin>::new;
    assert!(matches!(Watch::new(&model, MonitorOptions::default()), Err(Error::Options(_))));
    assert!(Verdict::Alarm > Verdict::Warn);
    Ok(())
}

struct NoPin;
impl embedded_hal::digital::ErrorType for NoPin {
    type Error = std::convert::Infallible;
}
impl embedded_hal::digital::OutputPin for NoPin {
    fn set_low(&mut self) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}
