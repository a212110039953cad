#!/usr/bin/env bash
# Fetch the third evaluation collection: glpk.pdf and gmpl.pdf (glpk-doc) and asymptote.pdf
# (asymptote-doc) from Debian's packages, into DIR (default ./third_corpus).
set -euo pipefail
dir=${1:-third_corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"
(cd "$work" && { apt-get download glpk-doc asymptote-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get download glpk-doc asymptote-doc >/dev/null; }; })
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/x"; done
cp "$work/x/usr/share/doc/glpk-doc/glpk.pdf" "$work/x/usr/share/doc/glpk-doc/gmpl.pdf" "$work/x/usr/share/doc/asymptote/asymptote.pdf" "$dir/"
ls -l "$dir"
