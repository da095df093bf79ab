#!/usr/bin/env bash
# Creates <repo>/.venv and installs tools/requirements.txt into it.
#
# Idempotent: .venv/.requirements.sha256 holds the sha256 of requirements.txt;
# when it matches, nothing is done. Progress goes to stderr; the venv's python
# path is printed on stdout at the end (so callers can do py=$(setup_venv.sh)).
#
# Usage: tools/setup_venv.sh [EXTRA_REQUIREMENTS.txt ...]
#   Extra requirement files (e.g. tools/requirements-examples.txt) are
#   installed on top and take part in the stamp.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
py="$venv/bin/python"
stamp="$venv/.requirements.sha256"
reqs=("$root/tools/requirements.txt" "$@")

log() { echo "setup_venv: $*" >&2; }

for r in "${reqs[@]}"; do
  [[ -f "$r" ]] || { log "no such requirements file: $r"; exit 1; }
done

# A stamp of every requirements file involved, in order.
want=$(for r in "${reqs[@]}"; do sha256sum "$r" | cut -d' ' -f1; done | tr '\n' ' ')
want=${want% }

# Fast path: every line of the wanted stamp is already recorded.
if [[ -x "$py" && -f "$stamp" ]]; then
  have=$(cat "$stamp")
  ok=1
  for h in $want; do
    [[ " $have " == *" $h "* ]] || ok=0
  done
  if [[ $ok == 1 ]]; then
    echo "$py"
    exit 0
  fi
fi

python=${PYTHON:-python3}

# Installs Debian's venv support (python3-venv and the versioned python3.X-venv).
install_venv_support() {
  local pyver pkgs sudo=()
  pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  pkgs=(python3-venv "python${pyver}-venv")
  if ! command -v apt-get >/dev/null; then
    log "error: '$python -m venv' does not work and there is no apt-get; install Python's venv module (Debian: ${pkgs[*]})"
    return 1
  fi
  if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      log "error: '$python -m venv' does not work; as root run: apt-get install -y ${pkgs[*]}"
      return 1
    fi
  fi
  log "'$python -m venv' does not work; running apt-get install -y ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y "${pkgs[@]}" >&2 && return 0
  # An old or empty package list, or no versioned package on this release.
  "${sudo[@]}" apt-get update >&2 || true
  "${sudo[@]}" apt-get install -y "${pkgs[@]}" >&2 || "${sudo[@]}" apt-get install -y python3-venv >&2
}

# A venv is healthy when its python runs pip (a failed `-m venv` can leave one without).
healthy() { [[ -x "$py" ]] && "$py" -m pip --version >/dev/null 2>&1; }

if ! healthy; then
  command -v "$python" >/dev/null || {
    log "error: $python not found; install Python 3 (Debian: apt-get install python3 python3-venv)"
    exit 1
  }
  log "creating $venv"
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >&2; then
    rm -rf "$venv"
    install_venv_support || exit 1
    "$python" -m venv "$venv" >&2 || {
      rm -rf "$venv"
      log "error: '$python -m venv' still fails; install Python's venv module (Debian: apt-get install python3-venv)"
      exit 1
    }
  fi
fi

log "installing ${reqs[*]#"$root/"}"
args=()
for r in "${reqs[@]}"; do args+=(-r "$r"); done
"$py" -m pip install --quiet --disable-pip-version-check "${args[@]}" >&2

echo "$want" >"$stamp"
log "ready: $py"
echo "$py"
