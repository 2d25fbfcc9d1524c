#!/usr/bin/env bash
# Runs every Criterion test binary in the given directories, each under coreutils `timeout`
# (Criterion 2.4 only times out tests that set .timeout), and prints one closing line:
# "tests: N passed, M failed, K skipped", after naming every skipped test. Exits non-zero if
# anything failed, crashed or timed out. SLUICE_DOC_TESTS=DIR also runs the documentation's
# examples (scripts/doc-tests.sh) against the build in DIR, counted the same way.
# SLUICE_VALGRIND=1 runs each binary under valgrind (full leak check, errors fail the run),
# except the multi-process suites: their children are separate programs (valgrind 3.19 also
# lacks pidfd_open, which they wait with); make test runs them under ASan instead. System
# programs an exec stage starts (sh, tr, cat) are not traced: their own leaks are not ours.
set -u
limit=$1; shift
passed=0; failed=0; skipped=(); bad=()
for dir in "$@"; do
  for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    if [ "${SLUICE_VALGRIND:-}" = 1 ]; then
      case "$(basename "$t")" in
        test_cli|test_cli_security|test_faults|test_multihost|test_journal_crash)
          echo "== $t: skipped under valgrind (multi-process)"; continue ;;
      esac
    fi
    echo "== $t"
    if [ "${SLUICE_VALGRIND:-}" = 1 ]; then
      out=$(timeout "$limit" valgrind -q --error-exitcode=1 --leak-check=full \
              --errors-for-leak-kinds=definite --trace-children=yes \
              --trace-children-skip='/bin/*,/usr/bin/*,/usr/local/bin/*' \
              --suppressions="$(dirname "$0")/valgrind.supp" "$t" --jobs 1 --verbose 2>&1); rc=$?
    else
      out=$(timeout "$limit" "$t" --verbose 2>&1); rc=$?
    fi
    # --verbose is what makes Criterion name skipped tests ("[SKIP] suite::test: reason")
    echo "$out" | grep -vE '^\[(----|RUN |PASS|====\] Running)\]?' | tail -n 40
    while IFS= read -r s; do skipped+=("$(basename "$t") ${s#\[SKIP\] }"); done \
      < <(echo "$out" | grep '^\[SKIP\]')
    line=$(echo "$out" | grep 'Synthesis:' | tail -n 1)
    p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${c:-0}))
    # Criterion 2.4 counts a test as passed even when LeakSanitizer or UBSan reported at its
    # exit: a report anywhere fails the binary.
    if echo "$out" | grep -qE 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:'; then
      echo "$out" | grep -E -A12 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' | head -n 40
      rc=99
    fi
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
      bad+=("$t (exit $rc)")
      [ -z "$line" ] && failed=$((failed + 1))
    fi
  done
done
if [ -n "${SLUICE_DOC_TESTS:-}" ]; then
  echo "== documentation examples (scripts/doc-tests.sh)"
  out=$(timeout "$limit" bash "$(dirname "$0")/doc-tests.sh" "$SLUICE_DOC_TESTS" 2>&1); rc=$?
  echo "$out" | grep -vE '^(doc-tests|SKIP): ' | tail -n 60
  line=$(echo "$out" | grep '^doc-tests: ' | tail -n 1)
  p=$(echo "$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  while IFS= read -r s; do skipped+=("doc ${s#SKIP: }"); done < <(echo "$out" | grep '^SKIP: ')
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    bad+=("documentation examples (exit $rc)")
    [ -z "$line" ] && failed=$((failed + 1))
  fi
fi
echo
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "SKIPPED: $s"; done
for b in "${bad[@]+"${bad[@]}"}"; do echo "FAILED: $b"; done
echo "tests: $passed passed, $failed failed, ${#skipped[@]} skipped"
[ ${#bad[@]} -eq 0 ] && [ $failed -eq 0 ] && [ $passed -gt 0 ]
