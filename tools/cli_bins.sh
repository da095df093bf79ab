#!/usr/bin/env bash
# Prints the folder that holds the jetc and jetrt binaries the test scripts
# run: $JETRT_CLI_DIR when it has both (tools/test.sh sets it to the ones
# `cargo test --workspace` has just built for the integration tests), else
# target/debug after building them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n ${JETRT_CLI_DIR:-} && -x ${JETRT_CLI_DIR}/jetc && -x ${JETRT_CLI_DIR}/jetrt ]]; then
    echo "$JETRT_CLI_DIR"
    exit 0
fi
(cd "$root" && cargo build --profile test -p jetrt-tools --bin jetc --bin jetrt --quiet) >&2
echo "$root/target/debug"
