#!/usr/bin/env bash
# Build real pycaffe (BVLC Caffe, CPU-only, from PyPI's brocolli-caffe sdist) once, and cache it outside the clone.
#
#   bash tools/build_pycaffe.sh [PYTHON]        # PYTHON: the Python that will import caffe (default .venv/bin/python)
#
# The last line on stdout is the cache folder; PYTHONPATH=<it> makes `import caffe` work. Progress goes to stderr.
# A cached build is checked with the given Python and reused (under half a second); a fresh one takes
# 6 to 12 minutes on 2 cores. Cache: ${LAYERJOULE_CACHE:-~/.cache/layerjoule}/pycaffe/brocolli-caffe-9.0.2-py<XY>-<machine>/
# Rebuild: delete that folder. docs/pycaffe.md has the why and the pitfalls.
set -euo pipefail

CAFFE_DIST=brocolli-caffe
CAFFE_VERSION=9.0.2
DEB_PACKAGES=(libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev
              libboost-regex-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
              libopenblas-dev libhdf5-dev libgtest-dev cmake g++)

say() { echo "pycaffe: $*" >&2; }
die() { echo "pycaffe: error: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${1:-$repo/.venv/bin/python}
# An absolute path to the Python, without resolving symlinks (a venv's python is one, and must stay the venv's).
case $python in
    */*) python="$(cd "$(dirname "$python")" 2>/dev/null && pwd)/$(basename "$python")" ;;
    *) python=$(command -v "$python" || true) ;;
esac
[ -x "$python" ] || die "no Python at ${1:-$repo/.venv/bin/python} (run 'make setup' first, or pass a Python)"

# Everything derived from the Python, in one call: XY tag, pythonX.Y, machine, base prefix, headers, numpy headers.
IFS=$'\t' read -r pytag pyver machine base_prefix py_include numpy_include < <("$python" - <<'EOF' || true
import platform, sys, sysconfig
try:
    import numpy
    numpy_include = numpy.get_include()
except ImportError:
    numpy_include = "-"
v = sys.version_info
print(f"py{v[0]}{v[1]}", f"python{v[0]}.{v[1]}", platform.machine(), sys.base_prefix,
      sysconfig.get_paths()["include"], numpy_include, sep="\t")
EOF
)
[ -n "${numpy_include:-}" ] || die "could not query $python"

cache_root=${LAYERJOULE_CACHE:-$HOME/.cache/layerjoule}/pycaffe
name=$CAFFE_DIST-$CAFFE_VERSION-$pytag-$machine
dest=$cache_root/$name

# A cached build works when its extension loads in this Python (all that a rebuild could change: Python ABI, numpy
# ABI, system libraries) and the modules `import caffe` needs are installed. A full `import caffe` would take about
# a second (it imports skimage and scipy); the full check, a net built and run, is done once after each build.
works() {
    [ -f "$1/caffe/__init__.py" ] && [ -f "$1/caffe/proto/caffe_pb2.py" ] && [ -f "$1/caffe/_caffe.so" ] &&
    "$python" - "$1/caffe/_caffe.so" >/dev/null 2>&1 <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_caffe", sys.argv[1])
_caffe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(_caffe)
_caffe.Net
sys.exit(any(importlib.util.find_spec(m) is None for m in ("numpy", "six", "skimage", "scipy", "google.protobuf")))
EOF
}

if works "$dest"; then
    say "cached build for $python"
    echo "$dest"
    exit 0
fi

# What pycaffe imports besides itself: fail now, not after a 12-minute build.
missing=$("$python" -c '
import importlib.util as u
def absent(m):
    try:
        return u.find_spec(m) is None
    except ImportError:
        return True
print(" ".join(m for m in ("numpy", "six", "skimage", "scipy", "google.protobuf") if absent(m)))')
[ -z "$missing" ] || die "$python lacks $missing (pycaffe imports them; 'make setup' installs them into .venv)"

mkdir -p "$cache_root"
# One build at a time per cache (two `make test` at once would otherwise both compile).
if command -v flock >/dev/null; then
    exec 9>"$cache_root/.$name.lock"
    flock -n 9 || { say "another build of $name is running; waiting for it"; flock 9; }
    if works "$dest"; then
        say "built meanwhile by the other process"
        echo "$dest"
        exit 0
    fi
fi

start=$SECONDS
say "no working build in $dest: building $CAFFE_DIST $CAFFE_VERSION for $python (6 to 12 minutes on 2 cores)"

# 1. Debian packages (apt-get update once, and only when something is missing).
needed=()
for pkg in "${DEB_PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || needed+=("$pkg")
done
if [ ${#needed[@]} -gt 0 ]; then
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    say "installing Debian packages: ${needed[*]}"
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >&2
else
    say "Debian packages: all present"
fi

multiarch=$(gcc -print-multiarch 2>/dev/null || true)
libdir=/usr/lib/${multiarch:-$machine-linux-gnu}
boost_python=$libdir/libboost_${pytag/py/python}.so     # e.g. libboost_python311.so
[ -e "$boost_python" ] || die "$boost_python is missing: Debian's libboost-python-dev has no build for $pyver"
[ -f "$py_include/Python.h" ] || die "no Python.h in $py_include (for Debian's own Python: apt-get install $pyver-dev)"

# 2. Work in a temporary folder; the package is staged beside the cache folder and moved into place at the end,
#    so an interrupted build never leaves a half cache.
work=$(mktemp -d "${TMPDIR:-/tmp}/pycaffe-build.XXXXXX")
stage=$(mktemp -d "$cache_root/.$name.tmp.XXXXXX")
cleanup() { rm -rf "$work" "$stage"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
log=$work/build.log
fail() {
    cp "$log" "$cache_root/$name.last-build.log" 2>/dev/null || true
    tail -n 40 "$log" >&2 || true
    die "$1 (full log: $cache_root/$name.last-build.log)"
}

if [ -n "${PYCAFFE_SDIST:-}" ]; then
    say "using the sdist $PYCAFFE_SDIST"
    cp "$PYCAFFE_SDIST" "$work/$CAFFE_DIST-$CAFFE_VERSION.tar.gz"
else
    say "downloading the $CAFFE_DIST==$CAFFE_VERSION sdist"
    "$python" -m pip download --quiet --no-deps --no-binary :all: --dest "$work" "$CAFFE_DIST==$CAFFE_VERSION" >&2
fi
tar -xzf "$work/$CAFFE_DIST-$CAFFE_VERSION.tar.gz" -C "$work" || die "cannot unpack the sdist"
src=$work/$CAFFE_DIST-$CAFFE_VERSION
build=$work/build
[ -f "$src/CMakeLists.txt" ] || die "unexpected sdist layout: no $src/CMakeLists.txt"

# 3. Caffe's CMake links -lboost_python; Debian names it libboost_python311.so.
mkdir -p "$work/links"
ln -s "$boost_python" "$work/links/libboost_python.so"

# 4. CMake directly (the sdist's setup.py wants conda and Python <= 3.9).
say "configuring (cmake)"
cmake -S "$src" -B "$build" \
    -DANACONDA_HOME="$base_prefix" -DPYTHON_VERSION="$pyver" -DCMAKE_BUILD_TYPE=Release -DBLAS=Open \
    -DCMAKE_CXX_FLAGS="-I/usr/include/hdf5/serial -I$numpy_include -I$py_include" \
    -DCMAKE_SHARED_LINKER_FLAGS="-L$libdir/hdf5/serial -L$work/links" >"$log" 2>&1 || fail "cmake configuration failed"

jobs=$(nproc)
say "compiling with $jobs jobs (log: $log)"
# Progress: only CMake's "[ NN%]" lines reach the terminal; everything goes to the log.
cmake --build "$build" -j"$jobs" 2>&1 | tee -a "$log" \
    | { grep --line-buffered -E '^\[ *[0-9]+%\]' | sed -u 's/^/pycaffe:   /' >&2 || true; } \
    || fail "compilation failed"

# 5. The package folder: python/caffe + _caffe.so + the freshly generated caffe_pb2.py (the sdist ships a stale one).
say "assembling the package"
cp -r "$src/python/caffe" "$stage/caffe"
rm -rf "$stage/caffe/__pycache__" "$stage/caffe/_caffe.so" "$stage/caffe/_caffe.cpp" "$stage/caffe/test"
cp -L "$build/lib/_caffe.so" "$stage/caffe/_caffe.so"
cp "$build/include/caffe/proto/caffe_pb2.py" "$stage/caffe/proto/caffe_pb2.py"
touch "$stage/caffe/proto/__init__.py"
{
    echo "$CAFFE_DIST $CAFFE_VERSION (BVLC Caffe, CPU-only), built by layerjoule's tools/build_pycaffe.sh"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "python: $python ($pyver, base prefix $base_prefix)"
    echo "numpy headers: $numpy_include"
    echo "protoc: $(protoc --version)"
} >"$stage/BUILD-INFO"

# 6. Verify with a tiny net before publishing: build it and run one layer.
say "verifying the import"
PYTHONPATH=$stage "$python" - >"$work/verify.log" 2>&1 <<'EOF' || { cat "$work/verify.log" >&2; die "the built pycaffe does not work"; }
import os, tempfile
import caffe
proto = """name: "check" input: "data" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }"""
with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
    f.write(proto)
try:
    net = caffe.Net(f.name, caffe.TEST)
finally:
    os.unlink(f.name)
net.forward(start="conv", end="conv")
assert net.blobs["conv"].data.shape == (1, 2, 2, 2), net.blobs["conv"].data.shape
EOF

# 7. Publish atomically (a broken earlier cache, if any, is moved aside first).
if [ -e "$dest" ]; then
    old=$(mktemp -d "$cache_root/.$name.old.XXXXXX")
    mv "$dest" "$old/"
    rm -rf "$old"
fi
chmod 755 "$stage"
mv -T "$stage" "$dest"
rm -f "$cache_root/$name.last-build.log"
say "built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s; PYTHONPATH=$dest makes 'import caffe' work"
echo "$dest"
