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
