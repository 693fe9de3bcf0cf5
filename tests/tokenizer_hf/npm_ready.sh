# npm_ready.sh — sourced by run.sh and published.sh after they set $sc: the start both made. Sets $here (this
# folder), $npmdir (SC_NPM_DIR, else npm/ beside the smallcoder binary) with HF tokenizers' Node binding installed
# there by install.sh, or exits 77 (skipped) when it is unavailable; and $work, a scratch directory removed at exit.
here=$(cd "$(dirname "$0")" && pwd)
npmdir=${SC_NPM_DIR:-$(cd "$(dirname "$sc")" && pwd)/npm}
if ! why=$("$here/install.sh" "$npmdir"); then
  echo "SKIP: HF tokenizers (npm package) unavailable: $why"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
