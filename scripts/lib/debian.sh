# debian.sh — helpers shared by the scripts that install Debian packages (setup.sh,
# bench-peer.sh, onnx-fixtures.sh, slurm/local-cluster.sh). Sourced, not run: the caller
# defines say() (its own message prefix) before sourcing.

# as_root runs its arguments as root: directly when we are root, else through sudo.
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		say "need root (or sudo) to run: $*"; exit 1
	fi
}

# installed reports whether Debian package $1 is installed.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
