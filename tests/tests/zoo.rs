//! The nine model-zoo models the `onnx` package ships (onnx/backend/test/
//! data/light): converted by jetc, run by jetrt, compared with the reference
//! outputs stored beside them (inputs made as onnx's own runner makes them),
//! and the same models with random weights against onnxruntime.

use jetrt_tests::{require_testdata, run_case};

fn check(group: &str, model: &str) {
    let Some(dir) = require_testdata(&format!("{group}/{model}")) else { return };
    let case = dir.join(group).join(model);
    let results = run_case(&case, 2).unwrap_or_else(|e| panic!("{group}/{model}: {e:#}"));
    for c in &results {
        eprintln!(
            "{group}/{model} {}: max abs err {:.3e}, cosine {:.8}, {} of {} outside tolerance",
            c.output, c.max_abs, c.cosine, c.mismatches, c.len
        );
        assert_eq!(
            c.mismatches, 0,
            "{group}/{model} output {}: {} elements outside tolerance (max abs err {:.3e})",
            c.output, c.mismatches, c.max_abs
        );
        assert!(c.cosine > 0.9999, "{group}/{model} output {}: cosine similarity {}", c.output, c.cosine);
    }
}

macro_rules! zoo {
    ($($test:ident => $model:literal),* $(,)?) => {
        mod reference {
            $(#[test] fn $test() { super::check("zoo", $model) })*
        }
        mod random_weights {
            $(#[test] fn $test() { super::check("zoo_random", $model) })*
        }
    };
}

zoo! {
    alexnet => "light_bvlc_alexnet",
    densenet121 => "light_densenet121",
    inception_v1 => "light_inception_v1",
    inception_v2 => "light_inception_v2",
    resnet50 => "light_resnet50",
    shufflenet => "light_shufflenet",
    squeezenet => "light_squeezenet",
    vgg19 => "light_vgg19",
    zfnet512 => "light_zfnet512",
}
