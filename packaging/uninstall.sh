#!/usr/bin/env bash
# make uninstall: remove what `make install` put under DESTDIR/PREFIX, and
# nothing else. The list comes from installing the same build into a scratch
# directory with the same PREFIX (CMake's install rules are the one list).
# sfbridge's own directories go when empty; under a DESTDIR, so does every
# directory the install made that is left empty.
#
#   packaging/uninstall.sh BUILD PREFIX [DESTDIR]
set -euo pipefail
build=$(realpath -m "$1")
prefix=${2%/}
prefix=${prefix:-/}
destdir=${3:-}
[[ -z $destdir ]] || destdir=$(realpath -m "$destdir")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage cmake --install "$build" --prefix "$prefix" >/dev/null
cd "$stage"
while IFS= read -r f; do
  if [[ -e $destdir/$f || -L $destdir/$f ]]; then
    rm -f -- "$destdir/$f"
    echo "-- Removed: $destdir/$f"
  fi
done < <(find . \( -type f -o -type l \) -printf '%P\n' | sort)
while IFS= read -r d; do
  if [[ -n $destdir || $d == *sfbridge* ]]; then
    rmdir -- "$destdir/$d" 2>/dev/null || true
  fi
done < <(find . -mindepth 1 -type d -printf '%P\n' | sort -r)
