//! Hand-built single-op (and fusion) ONNX graphs, converted and run, against
//! onnxruntime's outputs (tools/gen_testdata.py, group "ops").

use jetrt_tests::{manifest, require_testdata, run_case};

#[test]
fn every_op_case_matches_onnxruntime() {
    let Some(dir) = require_testdata("ops") else { return };
    let m = manifest(&dir);
    assert!(m.ops.len() >= 100, "only {} op cases: is the test data complete?", m.ops.len());
    let mut failures = Vec::new();
    for case in &m.ops {
        for threads in [1, 3] {
            match run_case(&dir.join(case), threads) {
                Ok(results) => {
                    for c in results.iter().filter(|c| c.mismatches > 0) {
                        failures.push(format!(
                            "{case} ({threads} threads) output {}: {} of {} outside tolerance, max abs err {:.3e}",
                            c.output, c.mismatches, c.len, c.max_abs
                        ));
                    }
                }
                Err(e) => failures.push(format!("{case}: {e:#}")),
            }
        }
    }
    eprintln!("{} op cases, {} failures", m.ops.len(), failures.len());
    assert!(failures.is_empty(), "{} failing:\n{}", failures.len(), failures.join("\n"));
}
