#!/usr/bin/env bash
# Installs the Python reference peer, tractor 0.1.0a5, into a virtual environment: the interop
# tests, the `polyglot` example and the golden-frame generator run against it.
#
#   usage: tools/install-tractor-a5.sh [VENV_DIR]      (default: target/tractor-a5-venv)
#
# The venv's python is printed on the last line of stdout; everything else goes to stderr.
# Running it again is cheap: an existing venv made from the same pins is reused.
#
# tractor 0.1.0a5 cannot be installed as published: its setup.py names pdbpp by a git URL, which
# pip refuses for a registry package. So the sdist is downloaded, checked against the sha256
# below, its pdbpp requirement pointed at the registry's release, and installed with every
# dependency pinned (tractor-a5-requirements.txt).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/tractor-a5-requirements.txt
sdist_sha256=20390371dff39659dbe4d2a4088a27a571570cedd23fb5714bc033c9e883eea1
venv=${1:-target/tractor-a5-venv}
py=${PYTHON:-python3}

fail() { echo "install-tractor-a5: $*" >&2; exit 1; }

if ! command -v "$py" >/dev/null 2>&1; then
  fail "no $py on PATH: the Python reference peer needs Python 3.9 or later with venv" \
       "(Debian/Ubuntu: apt-get install python3 python3-venv)"
fi
if ! "$py" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
  fail "$("$py" --version 2>&1) is too old: tractor 0.1.0a5 needs Python 3.9 or later"
fi
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  fail "$py has no working venv module (Debian/Ubuntu: apt-get install python3-venv)"
fi

mkdir -p "$(dirname "$venv")"
venv=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")

# One installer at a time per venv (test binaries may start it concurrently).
exec 9>"$venv.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

stamp=$venv/.actor-pins
want=$( { cat "$requirements"; echo "sdist $sdist_sha256"; "$py" --version; } 2>&1 | sha256sum | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]] \
  && "$venv/bin/python" -c 'import tractor, msgspec, trio' 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi

echo "install-tractor-a5: installing tractor 0.1.0a5 into $venv" >&2
rm -rf "$venv"
"$py" -m venv "$venv" >&2 || fail "$py -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${pip[@]}" download --no-deps --no-binary :all: -d "$work" tractor==0.1.0a5 >&2 \
  || fail "cannot download tractor 0.1.0a5's sdist from the package index"
sdist=$work/tractor-0.1.0a5.tar.gz
[[ -f $sdist ]] || fail "pip downloaded no $sdist"
got=$(sha256sum "$sdist" | cut -d' ' -f1)
[[ $got == "$sdist_sha256" ]] || fail "tractor-0.1.0a5.tar.gz has sha256 $got, expected $sdist_sha256"
tar -xzf "$sdist" -C "$work"
setup=$work/tractor-0.1.0a5/setup.py
sed -i -E "s#'pdbpp @ git\+[^']*'#'pdbpp'#" "$setup"
if grep -q 'git+' "$setup"; then
  fail "tractor's setup.py still names a git URL after patching"
fi

"${pip[@]}" install -r "$requirements" "$work/tractor-0.1.0a5" >&2 \
  || fail "pip could not install tractor 0.1.0a5 with the pinned dependencies"
"$venv/bin/python" -W ignore -c '
import trio, msgspec, tractor
assert trio.__version__ == "0.22.2", trio.__version__
' >&2 || fail "the installed venv cannot import tractor 0.1.0a5"
echo "$want" >"$stamp"
echo "$venv/bin/python"
