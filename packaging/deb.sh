#!/usr/bin/env bash
# make deb: BUILD/sfbridge_<version>_<arch>.deb from the programs built in BUILD
# (the Makefile builds them first), with dpkg-deb alone: no debian/ directory,
# no debhelper. The files are the ones `make install PREFIX=/usr` installs
# (CMake's install rules), binaries stripped, man pages gzipped, plus the
# maintainer scripts of packaging/deb/. The version is SFBRIDGE_VERSION
# (#define'd under src/sfbridge); Depends is what dpkg-shlibdeps finds the two
# programs need, plus adduser for the postinst.
#
#   packaging/deb.sh [BUILD]     (default build)
#   DEB_MAINTAINER='Name <mail>' to name the maintainer in the control file
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath -m "${1:-$ROOT/build}")
cd "$ROOT"

for p in sfbridge localforce; do
  [[ -x $BUILD/$p ]] || { echo "deb: $BUILD/$p is not built (make build BUILD=$BUILD)" >&2; exit 1; }
done
command -v dpkg-deb >/dev/null || { echo "deb: dpkg-deb not found (Debian's dpkg)" >&2; exit 1; }
version=$(grep -rhoP '^#define SFBRIDGE_VERSION "\K[^"]+' src/sfbridge | head -1)
[[ -n $version ]] || { echo "deb: no '#define SFBRIDGE_VERSION' under src/sfbridge" >&2; exit 1; }
arch=$(dpkg --print-architecture)
work=$BUILD/deb
root=$work/root
out=$BUILD/sfbridge_${version}_${arch}.deb

rm -rf "$work"
mkdir -p "$root/DEBIAN"
DESTDIR=$root cmake --install "$BUILD" --prefix /usr --strip >/dev/null
# The postinst's template for /etc/sfbridge/sfbridge.conf: /usr/share/doc may be
# left out of an installation (dpkg path-exclude, as slim images do).
install -D -m 0644 packaging/sfbridge.conf.example "$root/usr/share/sfbridge/sfbridge.conf.example"
gzip -9n "$root"/usr/share/man/man1/*.1
# Debian 12 packages ship units in /lib/systemd/system (the same directory as
# /usr/lib/systemd/system on a merged-/usr system, but dpkg tells them apart).
mkdir -p "$root/lib"
mv "$root/usr/lib/systemd" "$root/lib/systemd"
rmdir "$root/usr/lib"
find "$root" -type d -exec chmod 0755 {} +

# Depends: the shared libraries' packages (dpkg-shlibdeps wants a debian/control).
libs="libc6, libcurl4, libjansson4, libmicrohttpd12, libpq5, libsqlite3-0, libssl3, libxml2"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$work/src/debian"
  printf 'Source: sfbridge\n\nPackage: sfbridge\nArchitecture: any\n' >"$work/src/debian/control"
  libs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/sfbridge" "$root/usr/bin/localforce" |
    sed -n 's/^shlibs:Depends=//p')
fi

for s in postinst prerm postrm; do
  install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"
done
cat >"$root/DEBIAN/control" <<CONTROL
Package: sfbridge
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-sfbridge maintainers <sfbridge@localhost>}
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $libs, adduser
Section: database
Priority: optional
Description: Salesforce to Postgres sync, a self-hosted Heroku Connect replacement
 sfbridge keeps a Postgres schema in step with a Salesforce org, laid out as
 Heroku Connect lays it out: initial loads, polling, streaming (Change Data
 Capture), and write-back of the changes applications make to the tables.
 It runs as the systemd service sfbridge, configured in
 /etc/sfbridge/sfbridge.conf.
 .
 Also localforce, a local Salesforce-compatible org for testing clients.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
  xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

rm -f "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
