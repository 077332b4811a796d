# Shared by scripts/serve, scripts/test and the benchmarks: create or update .venv, and add
# the system libraries the service renders faster with.
# Sourced, not executed. Usage: ensure_venv [extra]   (extra: "" for runtime, "dev" for tests)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is required" >&2
  return 1
}

# WeasyPrint subsets the fonts it embeds in each PDF with HarfBuzz when Debian's
# libharfbuzz-subset0 is present and falls back to fontTools otherwise, at more than twice the
# CPU per report (ADR 0039). The service works either way, so a machine that cannot install
# the library (no apt, not root, no registry) gets a notice, not a failure.
ensure_system_libraries() {
  # grep reads all of ldconfig's output (no -q): under pipefail, a grep that stops at the
  # first match leaves ldconfig writing to a closed pipe, and the pipeline fails.
  if ldconfig -p 2>/dev/null | grep 'libharfbuzz-subset\.so\.0' >/dev/null; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    echo "Installing libharfbuzz-subset0 (faster PDF reports) ..." >&2
    if $sudo apt-get install -y -qq libharfbuzz-subset0 >/dev/null 2>&1 ||
       { $sudo apt-get update -qq >/dev/null 2>&1 &&
         $sudo apt-get install -y -qq libharfbuzz-subset0 >/dev/null 2>&1; }; then
      return 0
    fi
  fi
  echo "Notice: libharfbuzz-subset0 is not installed; PDF reports render with fontTools," \
       "at about twice the CPU per report." >&2
}

# The pages' language catalogues (src/training/locale/*/LC_MESSAGES/messages.po) are compiled
# to .mo files, which are not kept in git: every start compiles them again (a fraction of a
# second), so an edited catalogue is never served stale.
compile_catalogues() {
  "$VENV/bin/pybabel" -q compile -d "$ROOT/src/training/locale" -D messages
}

ensure_venv() {
  ensure_system_libraries
  local extra="${1:-}"
  local spec="$ROOT"
  [ -n "$extra" ] && spec="$ROOT[$extra]"
  # The stamp records what was installed; when pyproject.toml and the extras are unchanged
  # the venv is reused and start-up takes seconds.
  local want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)-${extra:-runtime}"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-${extra:-runtime}"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing dependencies into .venv ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" >&2
    echo "$want" > "$stamp"
  fi
  compile_catalogues
}
