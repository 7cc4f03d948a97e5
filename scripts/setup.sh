#!/usr/bin/env bash
# Arbalest machine set-up: the Rust target for the kernel, QEMU >= 8 (for igb),
# and the host tools the network tests use (iproute2, iputils-ping, nftables).
# Idempotent and quiet when everything is already in place.
# Run as root to install; without root it prints the commands to run instead.
set -euo pipefail

need_target=0
if ! rustup target list --installed 2>/dev/null | grep -qx 'x86_64-unknown-none'; then
    need_target=1
fi
if [ "$need_target" = 1 ]; then
    echo "arbalest setup: adding Rust target x86_64-unknown-none" >&2
    rustup target add x86_64-unknown-none >&2
fi

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    local v
    v=$(qemu-system-x86_64 --version | head -1 | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 8 ]
}

# Host tools the network tests drive: ip (iproute2), Linux ping, and nft
# (nftables: keeps a namespace's kernel from answering raw test segments).
missing_pkgs=""
command -v ip >/dev/null 2>&1 || missing_pkgs="$missing_pkgs iproute2"
command -v ping >/dev/null 2>&1 || missing_pkgs="$missing_pkgs iputils-ping"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing_pkgs="$missing_pkgs nftables"

if qemu_ok && [ -z "$missing_pkgs" ]; then
    exit 0
fi

if [ -n "$missing_pkgs" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "arbalest setup: missing$missing_pkgs; as root run: apt-get install -y$missing_pkgs" >&2
        exit 1
    fi
    echo "arbalest setup: installing$missing_pkgs" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq $missing_pkgs >/dev/null 2>&1 || {
        apt-get update -qq >&2
        apt-get install -y -qq $missing_pkgs >/dev/null
    }
fi
if qemu_ok; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "arbalest setup: QEMU >= 8 is missing; as root run: bash $(realpath "$0")" >&2
    exit 1
fi

# Derive a bookworm-backports entry from the machine's own apt source: same
# URIs and keyring as the existing bookworm entry, suite bookworm-backports.
. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
bp="/etc/apt/sources.list.d/arbalest-backports.sources"
if [ ! -e "$bp" ]; then
    src=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        src=/etc/apt/sources.list.d/debian.sources
    fi
    if [ -n "$src" ]; then
        # First deb822 stanza whose Suites contain the plain codename.
        awk -v cn="$codename" '
            BEGIN { RS=""; FS="\n" }
            {
                if ($0 ~ ("Suites:[^\n]*(^|[ ])" cn "([ ]|$)") || $0 ~ ("Suites: " cn)) {
                    for (i = 1; i <= NF; i++) {
                        if ($i ~ /^Suites:/) print "Suites: " cn "-backports";
                        else if ($i ~ /^#/) continue;
                        else print $i;
                    }
                    exit
                }
            }' "$src" > "$bp.tmp"
    elif [ -f /etc/apt/sources.list ]; then
        line=$(grep -E "^deb [^ ]+ $codename( |$)" /etc/apt/sources.list | head -1 || true)
        if [ -n "$line" ]; then
            echo "$line" | sed -E "s/ $codename( |$)/ $codename-backports\\1/" > "${bp%.sources}.list.tmp"
        fi
    fi
    if [ -s "$bp.tmp" ]; then
        mv "$bp.tmp" "$bp"
    elif [ -s "${bp%.sources}.list.tmp" ]; then
        mv "${bp%.sources}.list.tmp" "${bp%.sources}.list"
        rm -f "$bp.tmp"
    else
        rm -f "$bp.tmp" "${bp%.sources}.list.tmp"
        echo "arbalest setup: could not find a $codename apt source to derive backports from" >&2
        exit 1
    fi
fi
echo "arbalest setup: installing QEMU from $codename-backports (this takes a minute)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq -t "$codename-backports" qemu-system-x86 >/dev/null
qemu_ok || { echo "arbalest setup: QEMU >= 8 still missing after install" >&2; exit 1; }
