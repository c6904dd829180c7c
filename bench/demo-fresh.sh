#!/usr/bin/env bash
# How long `make demo` takes on a fresh Debian 12: each run copies a minimal
# Debian 12 (debootstrap --variant=minbase bookworm, plus make), puts this
# repository's HEAD in /root/sfbridge, runs `make demo` as root on a
# pseudo-terminal and prints the seconds until its instructions; then the
# median. Root only; installs debootstrap if missing (and says so).
#   bench/demo-fresh.sh [RUNS]      (default 3)
# The base is kept in /var/tmp/sfbridge-demo-base (rm -rf it to refresh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
[[ $(id -u) == 0 ]] || { echo "demo-fresh: run as root (chroot, mounts)" >&2; exit 2; }
BASE=/var/tmp/sfbridge-demo-base RUN=/var/tmp/sfbridge-demo-run
if [[ ! -x $BASE/usr/bin/make ]]; then
  command -v debootstrap >/dev/null || { echo "demo-fresh: installing debootstrap"; apt-get install -y -qq debootstrap >/dev/null; }
  rm -rf --one-file-system "$BASE"
  debootstrap --variant=minbase bookworm "$BASE" http://deb.debian.org/debian >/dev/null
  chroot "$BASE" apt-get install -y -qq --no-install-recommends make >/dev/null
fi
unmount() { for m in "$RUN/dev/shm" "$RUN/dev/pts" "$RUN/proc"; do mountpoint -q "$m" && umount "$m"; done; true; }
trap 'unmount; rm -rf --one-file-system "$RUN"' EXIT
times=()
for i in $(seq "$RUNS"); do
  unmount; rm -rf --one-file-system "$RUN"
  cp -a "$BASE" "$RUN"
  mkdir -p "$RUN/root/sfbridge" && git archive HEAD | tar -C "$RUN/root/sfbridge" -x
  mount -t proc proc "$RUN/proc"
  mkdir -p "$RUN/dev/pts" "$RUN/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$RUN/dev/pts"
  mount -t tmpfs tmpfs "$RUN/dev/shm"
  line=$(/usr/bin/python3 bench/demo_timer.py "$RUN" "make demo" || true)
  echo "run $i: $line (load $(cut -d' ' -f1 /proc/loadavg))"
  t=$(sed -n 's/^instructions after \([0-9.]*\) s.*/\1/p' <<<"$line")
  [[ -n $t ]] && times+=("$t")
done
((${#times[@]})) || { echo "demo-fresh: no run showed the instructions" >&2; exit 1; }
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "median %.1f s of %d runs\n", m, NR}'
