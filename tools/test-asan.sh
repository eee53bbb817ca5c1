#!/usr/bin/env bash
# The whole suite against an AddressSanitizer + UBSan build of the addon (build-asan/), with the
# sanitizer runtimes preloaded into node (node itself is not instrumented). The normal build in
# build/ is not touched. Any sanitizer report fails the run. Arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
# Others may be building the same tree: one compiler at a time on this 2-core machine.
flock /tmp/kg-build.lock npx cmake-js compile --out build-asan --CDKVM_GMEM_SANITIZE=ON --CDKVM_GMEM_TEST_HOOKS=ON \
  >build-asan.log 2>&1 || { tail -40 build-asan.log; exit 1; }
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
report_dir=$(mktemp -d)
out="$report_dir/vitest.out"
export KVM_GMEM_ADDON="$PWD/build-asan/Release/kvm_gmem.node"
export KVM_GMEM_SANITIZED=1
# Node keeps memory to the end on purpose: leak checking would only report V8. SIGBUS is ours
# to handle (the guard chains to whatever was there before for faults it does not own).
# allow_user_segv_handler: V8 installs its own SIGSEGV handler (WebAssembly trap handling).
export ASAN_OPTIONS="detect_leaks=0:handle_sigbus=0:allow_user_segv_handler=1:log_path=$report_dir/asan:abort_on_error=1"
# UBSan's runtime beside libasan writes to stderr whatever log_path says; the output is scanned too.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$report_dir/ubsan"
status=0
# pipefail: the status is vitest's.
LD_PRELOAD="$asan $ubsan" npx vitest run "$@" 2>&1 | tee "$out" || status=$?
reports=$(grep -cE 'runtime error:|ERROR: AddressSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$out" || true)
if compgen -G "$report_dir/asan*" >/dev/null || compgen -G "$report_dir/ubsan*" >/dev/null || [ "$reports" != 0 ]; then
  echo "sanitizer reports:"; cat "$report_dir"/asan* "$report_dir"/ubsan* 2>/dev/null || true
  grep -E -A3 'runtime error:|ERROR: AddressSanitizer' "$out" || true
  exit 1
fi
echo "sanitizer suite: 0 reports (exit $status)"
exit $status
