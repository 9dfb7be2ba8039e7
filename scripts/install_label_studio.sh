#!/usr/bin/env bash
# Installs Label Studio (and its Python SDK, label-studio-sdk, which it depends on) into its own
# virtual environment, .venv-labelstudio in the repository root, so that its many pinned
# dependencies (Django, numpy, pandas, pyarrow, ...) never touch the project's .venv.
# tests/test_label_studio_e2e.py runs the real Label Studio server and drives it from this
# environment; it skips where the environment is missing.
#
# Usage: scripts/install_label_studio.sh   (PYTHON=python3.11 to choose the interpreter;
#        LABEL_STUDIO_VERSION=1.23.2 to choose the release)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-labelstudio
# The release the end-to-end test was written against; its ML-backend protocol (GET /health,
# POST /setup, /predict, /webhook) has been stable across the 1.x line.
VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"

if [ -x "$VENV/bin/label-studio" ] && "$VENV/bin/python" -c "import label_studio_sdk" 2>/dev/null; then
    echo "$VENV already has Label Studio: $("$VENV/bin/python" -c 'import label_studio; print(label_studio.__version__)')"
    exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "label-studio==$VERSION"
# The SDK comes with label-studio (it pins the matching release); check that both import.
"$VENV/bin/python" -c "import label_studio, label_studio_sdk; print('Label Studio', label_studio.__version__, 'installed in $VENV')"
