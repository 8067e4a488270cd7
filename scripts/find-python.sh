#!/usr/bin/env sh
# Print the path of a working Python >= 3.12, or explain on stderr and exit 1.
# Order: $PYTHON if set; then, for 3.12, 3.13, 3.14 in turn (oldest supported first:
# its wheels are the most complete), python3.N on PATH and pyenv's versions/3.N.*;
# last, python3 on PATH. Each candidate is *run*, not just located: pyenv shims are
# on PATH but fail unless PYENV_VERSION names a version, so a broken shim is skipped.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
try() { if [ -n "$1" ] && ok "$1"; then echo "$1"; exit 0; fi; }
root=${PYENV_ROOT:-$HOME/.pyenv}
[ -n "${PYTHON:-}" ] && try "$(command -v "$PYTHON" 2>/dev/null)"
for minor in 12 13 14; do
    try "$(command -v python3.$minor 2>/dev/null)"
    for path in $(ls -d "$root"/versions/3.$minor.*/bin/python3 2>/dev/null | sort -r); do try "$path"; done
done
try "$(command -v python3 2>/dev/null)"
echo "error: no working Python >= 3.12 found (tried \$PYTHON, python3.12-3.14 and python3 on PATH, $root/versions/3.1[2-4].*)." >&2
echo "Install Python 3.12+ (e.g. 'pyenv install 3.12') or name one: make PYTHON=/path/to/python3.12 test" >&2
exit 1
