# Shared by scripts/*: make sure the project's virtualenv exists and is up to date.
# Sourced, not run. Sets ROOT, VENV, PY.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WECOM_APP_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

ensure_venv() {
  local stamp="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
  if [ ! -x "$PY" ]; then
    echo "==> creating virtualenv at $VENV"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ]; then
    echo "==> installing wecom-app and its dependencies (first run takes a minute)"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
    "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" 2>&1 | grep -v "is ignored" || true
    "$PY" -c "import wecom_app, callbacks" || { echo "install failed" >&2; exit 1; }
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

# Install a Debian package when the command it provides is missing (tests need real peers).
ensure_command() {
  local command="$1" package="$2"
  if command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ]; then
    return 0
  fi
  apt_install "$command" "$package"
}

# Install a Debian package that provides no command (a font) when it is missing.
ensure_package() {
  local package="$1"
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    return 0
  fi
  apt_install "$package" "$package"
}

apt_install() {
  local command="$1" package="$2"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: $command is missing and apt-get is not available; tests that need it skip" >&2
    return 0
  fi
  echo "==> installing $package (for $command)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q --no-install-recommends "$package" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q --no-install-recommends "$package" >/dev/null; }
}
