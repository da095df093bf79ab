use super::split::{conv, conv_split, qconv_split, split_floats};
use super::*;
use crate::arena::Loc;
use crate::lower::{Step, StepKind};
use jetrt_format::op::QOutParams;
use jetrt_kernels::cpu::conv::Conv2dShape;
use jetrt_kernels::cpu::Activation;

/// A plan of convolutions, each with its own input, weights and output
/// in the arena.
fn plan_of(kinds: Vec<StepKind>) -> Program {
    let mut plan = Program::default();
    for kind in kinds {
        let s = match &kind {
            StepKind::Conv { shape, .. } | StepKind::QConv { shape, .. } => *shape,
            _ => unreachable!(),
        };
        let at = plan.locs.len();
        let loc = |len| Loc { in_arena: true, start: 0, len };
        plan.locs.extend([loc(4 * s.batch * s.in_channels * s.in_h * s.in_w), loc(4), loc(4), loc(4)]);
        plan.locs.push(loc(4 * s.batch * s.out_channels * s.out_h * s.out_w));
        plan.steps.push(Step { kind, name: "Conv", inputs: at..at + 4, outputs: at + 4..at + 5 });
    }
    plan
}

/// The workspace is sized for every split step, float and int8 (an
/// int8-only plan once got none, and its split steps wrote through a null
/// pointer on the GPU).
#[test]
fn the_workspace_covers_every_split_step() {
    let (small, wide) = (conv(512, 7, 512, 3), conv(64, 56, 64, 3));
    let q = |shape| StepKind::QConv { shape, x_zp: 0, act: Activation::None, out: QOutParams::F32 };
    let f = |shape| StepKind::Conv { shape, act: Activation::None, bias: false };
    let options = CudaOptions::default();
    let target = Target { sms: 132, fp16: false };
    for kinds in [vec![q(small), q(wide)], vec![f(wide), q(small)], vec![f(small)]] {
        let plan = plan_of(kinds);
        let lowered = lower(&plan, &[], &options, target);
        assert!(lowered.workspace > 0);
        for (s, l) in plan.steps.iter().zip(&lowered.steps) {
            let need = match &s.kind {
                StepKind::Conv { shape, .. } => split_floats(conv_split(shape, 132), shape),
                StepKind::QConv { shape, .. } => split_floats(qconv_split(shape, 132), shape),
                _ => 0,
            };
            assert!(need <= lowered.workspace, "{need} > {}", lowered.workspace);
            let Lowering::Gpu(launches) = l else { panic!("a convolution runs on the GPU") };
            let uses = launches.iter().any(|l| matches!(l, LaunchSpec::Kernel(k) if k.args.contains(&Arg::Ptr(Buf::Workspace))));
            assert_eq!(uses, need > 0, "the workspace pointer is passed exactly when the step splits");
        }
    }
    let plan = plan_of(vec![q(conv(64, 224, 64, 3))]);
    assert_eq!(lower(&plan, &[], &options, target).workspace, 0, "a wide layer needs no split");
}

/// Unverified kernels fall back with the reason, and run when asked for.
#[test]
fn unverified_kernels_run_only_when_asked() {
    let s: Conv2dShape = conv(4, 5, 4, 3);
    let mut plan = plan_of(vec![StepKind::Conv { shape: s, act: Activation::None, bias: false }]);
    plan.steps[0].kind = StepKind::Dequantize { scale: 0.5, zp: 0 };
    let target = Target { sms: 8, fp16: false };
    let off = lower(&plan, &[], &CudaOptions::default(), target);
    assert!(matches!(&off.steps[0], Lowering::Cpu(r) if r == UNVERIFIED));
    let on = CudaOptions { unverified_kernels: true, ..CudaOptions::default() };
    let Lowering::Gpu(l) = &lower(&plan, &[], &on, target).steps[0] else { panic!("asked for") };
    assert!(matches!(&l[..], [LaunchSpec::Kernel(k)] if k.name == "jrt_dequantize"));
}
