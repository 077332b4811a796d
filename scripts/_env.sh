# Shared by scripts/serve, scripts/test and the benchmarks: create or update .venv, and add
# the system libraries the service renders faster with and the font Chinese names need.
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

# Installs Debian packages as root, or through sudo when it asks no password; an install that
# fails runs `apt-get update` and tries once more (a new machine's package lists may be old or
# absent). Returns non-zero when it cannot, and leaves apt-get's output in the file $APT_LOG.
APT_LOG=""
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  APT_LOG="$(mktemp "${TMPDIR:-/tmp}/training-apt.XXXXXX")"
  local apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get"
  if $apt install -y -qq "$@" >"$APT_LOG" 2>&1 ||
     { $apt update -qq >>"$APT_LOG" 2>&1 && $apt install -y -qq "$@" >>"$APT_LOG" 2>&1; }; then
    rm -f "$APT_LOG"
    APT_LOG=""
    return 0
  fi
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
  echo "Installing libharfbuzz-subset0 (faster PDF reports) ..." >&2
  apt_install libharfbuzz-subset0 && return 0
  echo "Notice: libharfbuzz-subset0 is not installed; PDF reports render with fontTools," \
       "at about twice the CPU per report." >&2
}

# Chinese names in PDF reports and in the web app's screenshots need a font with CJK glyphs;
# without one they print as empty boxes. The service works either way: a notice, not a failure.
ensure_cjk_font() {
  # The font list is read whole into a variable, not piped into grep (see above).
  if command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; then
    return 0
  fi
  echo "Installing fonts-noto-cjk (Chinese text in reports and pages) ..." >&2
  apt_install fontconfig fonts-noto-cjk && return 0
  echo "Notice: no Chinese font is installed (fonts-noto-cjk); Chinese names in PDF reports" \
       "show as empty boxes." >&2
}

# The browser tests (tests/browser) drive Debian's Chromium with Playwright; Playwright's own
# browser download is never used. The tests must run wherever the suite runs, so a machine
# that cannot install Chromium fails the set-up instead of skipping them.
CHROMIUM=/usr/bin/chromium
ensure_chromium() {
  [ -x "$CHROMIUM" ] && return 0
  echo "Installing chromium (the browser tests) ..." >&2
  if apt_install chromium && [ -x "$CHROMIUM" ]; then
    return 0
  fi
  echo "Error: the browser tests need Debian's chromium at $CHROMIUM, and it could not be" \
       "installed (apt-get as root or through passwordless sudo)." >&2
  if [ -n "$APT_LOG" ]; then tail -n 20 "$APT_LOG" >&2; fi
  return 1
}

# The pages' language catalogues (src/training/locale/*/LC_MESSAGES/messages.po) are compiled
# to .mo files, which are not kept in git: every start compiles them again (a fraction of a
# second), so an edited catalogue is never served stale.
compile_catalogues() {
  "$VENV/bin/pybabel" -q compile -d "$ROOT/src/training/locale" -D messages
}

ensure_venv() {
  ensure_system_libraries
  ensure_cjk_font
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
