#!/usr/bin/env bash
# Installs Label Studio (and its Python SDK, label-studio-sdk, which it depends on) into its own
# virtual environment, .venv-labelstudio in the repository root, so that its many pinned
# dependencies (Django, numpy, pandas, pyarrow, ...) never touch the project's .venv.
# tests/test_label_studio_e2e.py runs the real Label Studio server and drives it from this
# environment; it skips where the environment is missing.
#
# Usage: scripts/install_label_studio.sh   (PYTHON=python3.12 to choose the interpreter, 3.10 to 3.13;
#        LABEL_STUDIO_VERSION=1.23.2 to choose the release)
# Exit status 3: the package registry cannot be reached (nothing was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-labelstudio
# The release the end-to-end test was written against (its ML-backend protocol, webhook payloads
# and REST API were checked on it).
VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"

if [ -x "$VENV/bin/label-studio" ] && "$VENV/bin/python" -c "import label_studio_sdk" 2>/dev/null; then
    echo "$VENV already has Label Studio $("$VENV/bin/python" -c 'import label_studio; print(label_studio.__version__)')"
    exit 0
fi

# Ask the registry (pip's configured index) for the release before creating anything.
if ! "$PYTHON" -m pip index versions label-studio >/dev/null 2>&1; then
    echo "cannot reach the package registry to install label-studio==$VERSION; $VENV was not made" >&2
    exit 3
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "label-studio==$VERSION"
# The SDK comes with label-studio (it pins the matching release); check that both import.
"$VENV/bin/python" -c "import label_studio, label_studio_sdk; print('Label Studio', label_studio.__version__, 'installed in $VENV')"
