#!/usr/bin/env bash
# Fetch the second evaluation collection: bashref.pdf (bash-doc) and gnuplot.pdf (gnuplot-doc)
# from Debian's packages, into DIR (default ./second_corpus).
set -euo pipefail
dir=${1:-second_corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"
(cd "$work" && { apt-get download bash-doc gnuplot-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get download bash-doc gnuplot-doc >/dev/null; }; })
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
cp "$work/x/usr/share/doc/bash/bashref.pdf" "$work/x/usr/share/doc/gnuplot/gnuplot.pdf" "$dir/"
ls -l "$dir"
