#!/usr/bin/env bash
# Runs the examples in README.md and docs/*.md, so that they cannot drift from the code.
#   bash scripts/doc-tests.sh BUILD_DIR
# Every ```c block is a complete program: compiled against BUILD_DIR/lib/libsluice.a with
# $SLUICE_DOC_CFLAGS (make test passes the ASan + UBSan flags) and run; it must exit 0 with no
# sanitizer report. Every ```sh block runs with bash -e in a fresh temporary directory holding
# a link to examples/, with bin/ on PATH. A block preceded by the line
#   <!-- doc-test: skip REASON -->
# is not run (it needs other machines, or is `make` itself) and is reported as skipped.
# Prints "SKIP: FILE:LINE REASON" and "FAILED: FILE:LINE" lines, then
# "doc-tests: N passed, M failed, K skipped"; exits non-zero when a block failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: doc-tests.sh BUILD_DIR}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
limit=${SLUICE_DOC_TIMEOUT:-120}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read -r -a pkg_flags <<< "$(pkg-config --cflags --libs libczmq libzmq)"
read -r -a doc_flags <<< "${SLUICE_DOC_CFLAGS:-}"
passed=0; failed=0; skipped=0; n=0

# Extract the blocks: one file per block, named after where it starts.
# awk writes "LANG FILE LINE SKIPREASON" lines to the index and each block's text to work/N.
for doc in "$root"/README.md "$root"/docs/*.md; do
  awk -v doc="${doc#"$root"/}" -v out="$work" -v start="$n" '
    BEGIN { k = start }
    /^<!-- doc-test: skip/ { reason = $0; sub(/^<!-- doc-test: skip */, "", reason);
                             sub(/ *-->.*$/, "", reason); pending = 1; next }
    !inblock && /^```(c|sh)$/ {
      lang = substr($0, 4); inblock = 1; k++
      printf "%s %s %d %s\n", lang, doc, NR, (pending ? (reason == "" ? "-" : reason) : "") >> (out "/index")
      pending = 0; next }
    inblock && /^```$/ { inblock = 0; next }
    inblock { print > (out "/" k) ; next }
    /^[^ \t]/ && !/^<!--/ { pending = 0 }
    END { print k > (out "/count") }
  ' "$doc"
  n=$(cat "$work/count")
done

k=0
while read -r lang doc line reason; do
  k=$((k + 1))
  name="$doc:$line"
  [ -f "$work/$k" ] || : > "$work/$k"
  if [ -n "$reason" ]; then
    echo "SKIP: $name ($lang block: $reason)"
    skipped=$((skipped + 1)); continue
  fi
  dir="$work/run-$k"; mkdir -p "$dir"; ln -s "$root/examples" "$dir/examples"
  if [ "$lang" = c ]; then
    cp "$work/$k" "$dir/example.c"
    if ! ${CC:-cc} -std=gnu11 -Wall -Wextra -Werror -g "${doc_flags[@]}" -I"$root/include" \
         "$dir/example.c" -o "$dir/example" "$build/lib/libsluice.a" "${pkg_flags[@]}" -lpthread \
         > "$dir/log" 2>&1; then
      echo "FAILED: $name (c block does not compile)"; cat "$dir/log"
      failed=$((failed + 1)); continue
    fi
    (cd "$dir" && timeout "$limit" ./example) > "$dir/log" 2>&1; rc=$?
  else
    (cd "$dir" && PATH="$root/bin:$PATH" timeout "$limit" bash -e "$work/$k") > "$dir/log" 2>&1
    rc=$?
  fi
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' "$dir/log"; then
    echo "FAILED: $name ($lang block, exit $rc)"; tail -n 30 "$dir/log"
    failed=$((failed + 1))
  else
    echo "ok: $name ($lang block)"
    passed=$((passed + 1))
  fi
done < "$work/index"

echo "doc-tests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
