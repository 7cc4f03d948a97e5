#!/usr/bin/env bash
# Arbalest machine set-up: the Rust target for the kernel, QEMU >= 8 (for igb),
# and the host tools the tests and benchmarks drive:
#   ip, tc (iproute2; tc for netem), ping (iputils-ping), nft (nftables: keeps
#   a namespace's kernel from answering raw test segments), hping3, tshark,
#   iperf3, curl, wrk, and scapy for Debian's python3 (python3-scapy).
# Idempotent: each item is checked first and skipped when present; when
# everything is in place it prints nothing, installs nothing and takes well
# under a second. Non-interactive (tshark's debconf question is preseeded).
# Run as root to install; without root it prints the command to run instead.
#
#   bash scripts/setup.sh           set up what is missing
#   bash scripts/setup.sh --check   install nothing: print one line per
#                                   missing item, exit 1 if anything is
set -euo pipefail

check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "arbalest setup: unknown argument '$1' (usage: setup.sh [--check])" >&2
        exit 2
        ;;
esac

say() { echo "arbalest setup: $*" >&2; }

# A program on PATH, or in the sbin directories a non-root PATH lacks.
have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

target_ok() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx 'x86_64-unknown-none'
}

qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
    local v
    v=$(qemu-system-x86_64 --version 2>/dev/null | head -1 | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
    [ -n "$v" ] && [ "$v" -ge 8 ]
}

# Debian's scapy is importable by Debian's python3 (not by a pyenv or venv
# python that may come first on PATH).
scapy_ok() {
    local py
    for py in /usr/bin/python3 "$(command -v python3 2>/dev/null || true)"; do
        [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import scapy' >/dev/null 2>&1 && return 0
    done
    if command -v dpkg-query >/dev/null 2>&1; then
        [ "$(dpkg-query -W -f='${db:Status-Status}' python3-scapy 2>/dev/null || true)" = installed ] && return 0
    fi
    return 1
}

# program:package pairs, checked in this order.
tools="ip:iproute2 tc:iproute2 ping:iputils-ping nft:nftables hping3:hping3 tshark:tshark iperf3:iperf3 curl:curl wrk:wrk"

missing_pkgs=""
missing_what=""
add_pkg() {
    case " $missing_pkgs " in *" $1 "*) ;; *) missing_pkgs="$missing_pkgs $1" ;; esac
}
for t in $tools; do
    prog=${t%%:*} pkg=${t#*:}
    if ! have "$prog"; then
        add_pkg "$pkg"
        missing_what="$missing_what
$prog (Debian package $pkg)"
    fi
done
if ! scapy_ok; then
    add_pkg python3-scapy
    missing_what="$missing_what
scapy for /usr/bin/python3 (Debian package python3-scapy)"
fi
need_target=0
target_ok || need_target=1
need_qemu=0
qemu_ok || need_qemu=1

if [ "$check_only" = 1 ]; then
    [ "$need_target" = 1 ] && echo "missing: Rust target x86_64-unknown-none (rustup target add x86_64-unknown-none)"
    [ "$need_qemu" = 1 ] && echo "missing: qemu-system-x86_64 >= 8 (Debian package qemu-system-x86 from the backports suite)"
    printf '%s\n' "$missing_what" | sed -n 's/^./missing: &/p'
    if [ "$need_target" = 1 ] || [ "$need_qemu" = 1 ] || [ -n "$missing_pkgs" ]; then
        exit 1
    fi
    exit 0
fi

if [ "$need_target" = 0 ] && [ "$need_qemu" = 0 ] && [ -z "$missing_pkgs" ]; then
    exit 0
fi

if [ "$need_target" = 1 ]; then
    if ! command -v rustup >/dev/null 2>&1; then
        say "the Rust target x86_64-unknown-none is missing and rustup is not on PATH: install Rust with rustup, then run: rustup target add x86_64-unknown-none"
        exit 1
    fi
    say "adding Rust target x86_64-unknown-none"
    rustup target add x86_64-unknown-none >&2
    target_ok || { say "the Rust target x86_64-unknown-none is still missing after rustup target add"; exit 1; }
fi

if [ "$need_qemu" = 0 ] && [ -z "$missing_pkgs" ]; then
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    what=""
    [ "$need_qemu" = 1 ] && what=" qemu-system-x86_64>=8"
    say "missing$what$missing_pkgs; as root run: bash $(realpath "$0")"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    # Quietly from the package lists as they are; on failure (stale or no
    # lists) once more after apt-get update, with its errors shown.
    apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null 2>&1 || {
        apt-get update -qq >&2
        apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/dev/null
    }
}

if [ -n "$missing_pkgs" ]; then
    case " $missing_pkgs " in
        *" tshark "*)
            # tshark asks whether non-root users may capture: no.
            echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
            ;;
    esac
    say "installing$missing_pkgs"
    # shellcheck disable=SC2086
    apt_install $missing_pkgs
    for t in $tools; do
        prog=${t%%:*} pkg=${t#*:}
        have "$prog" || { say "$prog still missing after installing $pkg"; exit 1; }
    done
    scapy_ok || { say "scapy still missing after installing python3-scapy"; exit 1; }
fi
if [ "$need_qemu" = 0 ]; then
    exit 0
fi

# Derive a backports entry from the machine's own apt source: same URIs and
# keyring as the existing entry for the release, suite <codename>-backports.
. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"
bp="/etc/apt/sources.list.d/arbalest-backports.sources"
if [ ! -e "$bp" ] && [ ! -e "${bp%.sources}.list" ]; then
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
        say "could not find a $codename apt source to derive backports from"
        exit 1
    fi
fi
say "installing QEMU from $codename-backports (this takes a minute)"
apt-get update -qq >&2
apt-get install -y -qq -t "$codename-backports" qemu-system-x86 >/dev/null
qemu_ok || { say "QEMU >= 8 still missing after install"; exit 1; }
