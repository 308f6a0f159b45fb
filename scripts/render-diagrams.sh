#!/usr/bin/env bash
# Renders diagrams/*.mmd (or the .mmd files given as arguments) to the .svg
# beside each, with Debian's Chromium, and stamps every SVG with the sha256 of
# its source so that test/diagrams/diagrams.test.ts can tell a stale render.
#   bash scripts/render-diagrams.sh [diagrams/x.mmd ...]
# mermaid-cli is a render-time tool, fetched by npx at a pinned version (not a
# dependency of the package); puppeteer is pinned too, to a major that still
# runs on Node 20 (puppeteer 25 and mermaid-cli 12 need Node 22). Same source,
# same bytes: diagrams/mermaid.config.json fixes the ids and the rough.js seed.
set -euo pipefail

MERMAID_CLI=@mermaid-js/mermaid-cli@11.17.0
PUPPETEER=puppeteer@24.43.1
CHROMIUM=/usr/bin/chromium

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIAGRAMS="$ROOT/diagrams"

if [ ! -x "$CHROMIUM" ]; then
  echo "render-diagrams: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Liberation Sans has Arial's metrics: the boxes are sized for the font viewers use
  apt-get install -y -qq chromium fonts-liberation >/dev/null
fi

if [ $# -gt 0 ]; then
  sources=()
  for f in "$@"; do
    [ -f "$f" ] || { echo "render-diagrams: no such file: $f" >&2; exit 2; }
    case "$f" in *.mmd) ;; *) echo "render-diagrams: not a .mmd file: $f" >&2; exit 2 ;; esac
    sources+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
  done
else
  shopt -s nullglob
  sources=("$DIAGRAMS"/*.mmd)
  shopt -u nullglob
  [ ${#sources[@]} -gt 0 ] || { echo "render-diagrams: no .mmd files in $DIAGRAMS" >&2; exit 2; }
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# puppeteer must neither download a browser (nothing but package registries is
# reachable) nor let Chromium phone home while it renders
cat >"$tmp/puppeteer.json" <<EOF
{
  "executablePath": "$CHROMIUM",
  "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
}
EOF
export PUPPETEER_SKIP_DOWNLOAD=1

for src in "${sources[@]}"; do
  svg="${src%.mmd}.svg"
  echo "render-diagrams: ${src#"$ROOT"/} -> ${svg#"$ROOT"/}"
  npx -y -p "$MERMAID_CLI" -p "$PUPPETEER" mmdc --quiet \
    --puppeteerConfigFile "$tmp/puppeteer.json" \
    --configFile "$DIAGRAMS/mermaid.config.json" \
    --backgroundColor white \
    --input "$src" --output "$tmp/out.svg"
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  # the stamp goes right after the opening <svg ...> tag; mmdc writes the whole SVG on one line
  node -e '
    const fs = require("node:fs");
    const [file, out, sum] = process.argv.slice(1);
    const svg = fs.readFileSync(file, "utf8");
    const open = /<svg\b[^>]*>/.exec(svg);
    if (!open) { console.error(`render-diagrams: ${file} holds no <svg> element`); process.exit(1); }
    const at = open.index + open[0].length;
    fs.writeFileSync(out, `${svg.slice(0, at)}<!-- source-sha256: ${sum} -->${svg.slice(at).replace(/\n*$/, "\n")}`);
  ' "$tmp/out.svg" "$svg" "$sum"
done
