// The floor of any N-API binding of KVM_CHECK_EXTENSION and of KVM_RUN: plain N-API functions
// doing only the ioctl (no argument checks, no closed check, no decoding), and the same ioctls
// looped in C inside the Node process. Loaded by the benchmark as a .node file, compiled in the
// same run against the headers of the Node that runs it.
//   open(path)    opens the fd
//   call(x)       gives x back: the crossing alone (one number in, one out, no syscall)
//   check(cap)    one ioctl
//   loop(n, cap)  n ioctls in C, returning their sum
//   ioGuest()     makes the io-exit guest of kvm_guest.h
//   ioRun()       one KVM_RUN of it
//   ioLoop(n)     n of them in C
#include <node_api.h>

#include <stdio.h>

#include "kvm_guest.h"

static int kvm_fd = -1;

static double arg_double(napi_env env, napi_callback_info info, size_t i) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  double d = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (i < argc) napi_get_value_double(env, argv[i], &d);
  return d;
}

static napi_value number(napi_env env, double d) {
  napi_value out;
  napi_create_double(env, d, &out);
  return out;
}

static napi_value open_kvm(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  char path[256] = {0};
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_get_value_string_utf8(env, arg, path, sizeof path, &len);
  if (kvm_fd >= 0) close(kvm_fd);
  kvm_fd = open(path, O_RDWR | O_CLOEXEC);
  return number(env, kvm_fd);
}

// The one number argument of call() and check(), read the same way for both.
static double one_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  double x = 0;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_get_value_double(env, arg, &x);
  return x;
}

// check() without the ioctl: the same argument handling and result.
static napi_value call(napi_env env, napi_callback_info info) { return number(env, one_arg(env, info)); }

static napi_value check(napi_env env, napi_callback_info info) {
  unsigned long cap = (unsigned long)one_arg(env, info);
  return number(env, (double)ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap));
}

static napi_value loop(napi_env env, napi_callback_info info) {
  long n = (long)arg_double(env, info, 0);
  unsigned long cap = (unsigned long)arg_double(env, info, 1);
  long sum = 0;
  for (long i = 0; i < n; i++) sum += ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap);
  return number(env, (double)sum);
}

static int io_vcpu = -1;
static struct kvm_run* io_run = NULL;

static napi_value fail(napi_env env, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value io_guest(napi_env env, napi_callback_info info) {
  (void)info;
  struct guest g;
  const char* what = "";
  if (io_run) return number(env, 0);
  if (make_guest(&g, 0x10000, &what) < 0) return fail(env, what);
  io_run = make_io_vcpu(&g, &io_vcpu, &what);
  if (!io_run) return fail(env, what);
  return number(env, 0);
}

static napi_value io_once(napi_env env, napi_callback_info info) {
  (void)info;
  if (run_io_exit(io_vcpu, io_run) < 0) return fail(env, "KVM_RUN");
  return number(env, io_run->exit_reason);
}

static napi_value io_loop(napi_env env, napi_callback_info info) {
  long n = (long)arg_double(env, info, 0);
  for (long i = 0; i < n; i++)
    if (run_io_exit(io_vcpu, io_run) < 0) return fail(env, "KVM_RUN");
  return number(env, (double)n);
}

NAPI_MODULE_INIT() {
  const struct {
    const char* name;
    napi_callback cb;
  } fns[] = {{"open", open_kvm},    {"call", call},     {"check", check},   {"loop", loop},
             {"ioGuest", io_guest}, {"ioRun", io_once}, {"ioLoop", io_loop}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
