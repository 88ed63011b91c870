#!/usr/bin/env bash
# Re-vendors GraphiQL's UMD bundle and React 18's UMD builds into this folder from the
# npm registry (`npm pack` checks each tarball against the registry's integrity hash).
# Bump the versions here, run it, then update README.md and SHA256SUMS
# (`sha256sum -c SHA256SUMS` must pass before commit; unchanged versions reproduce the
# same bytes). Needs npm, node and tar.
set -euo pipefail

GRAPHIQL_VERSION=4.1.2 # newest major with a UMD build: graphiql 5 ships ESM only
REACT_VERSION=18.3.1   # React 19 ships no UMD builds

dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null
for p in graphiql react react-dom; do
    mkdir "$p"
    tar xzf "$p-$([ "$p" = graphiql ] && echo "$GRAPHIQL_VERSION" || echo "$REACT_VERSION").tgz" -C "$p" --strip-components=1
done

cp graphiql/graphiql.min.js "$dir/graphiql.min.js"
cp react/umd/react.production.min.js "$dir/react.production.min.js"
cp react-dom/umd/react-dom.production.min.js "$dir/react-dom.production.min.js"
cp graphiql/LICENSE "$dir/LICENSE.graphiql"
cp react/LICENSE "$dir/LICENSE.react"
cp react-dom/LICENSE "$dir/LICENSE.react-dom"

# graphiql.min.css embeds its Roboto and Fira Code fonts as data: URLs, which the app's
# CSP (font-src falls back to default-src 'self') blocks, one console error per face.
# Drop the @font-face rules: the UI falls back to the stacks' sans-serif / monospace.
GRAPHIQL_VERSION=$GRAPHIQL_VERSION node -e '
const fs = require("fs");
const css = fs.readFileSync("graphiql/graphiql.min.css", "utf8");
const out = css.replace(/@font-face\s*\{[^}]*\}\s*/g, "");
if (/url\(\s*["\x27]?data:font/.test(out) || /@font-face/.test(out)) {
  console.error("graphiql.min.css still has @font-face / data: fonts; update refresh.sh");
  process.exit(1);
}
process.stdout.write(`/* graphiql ${process.env.GRAPHIQL_VERSION} graphiql.min.css less the fonts it embeds as data: URLs, which the CSP blocks; see README.md */\n` + out);
' >"$dir/graphiql.min.css"

cd "$dir"
if sha256sum --quiet -c SHA256SUMS; then
    echo "vendored files unchanged"
else
    echo "vendored files changed: review, then: sha256sum $(awk '{print $2}' SHA256SUMS | tr '\n' ' ')>SHA256SUMS; update README.md"
fi
