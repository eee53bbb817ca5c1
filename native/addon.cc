// Module init only: classes, constants, the error factory hook and the teardown hook.
#include <napi.h>

#include <vector>

#include "errors.h"
#include "extent_map_binding.h"
#include "fault_inject.h"
#include "guest_memfd.h"
#include "kvm.h"
#include "mapping.h"
#include "owned.h"
#include "uapi.h"
#include "vcpu.h"
#include "vm.h"

namespace kg {

namespace {

// Closes every object still open when the environment (main thread or worker) goes away.
void CleanupHook(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  // Set first: no HandleScope exists here, so Close() must not touch JS handles (views, refs).
  data->tearingDown = true;
  std::vector<Owned*> roots;
  for (Owned* o : data->live) {
    if (o->owner() == nullptr) roots.push_back(o);
  }
  for (Owned* o : roots) o->Close();
  std::vector<Owned*> rest(data->live.begin(), data->live.end());
  for (Owned* o : rest) o->Close();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  Napi::Object caps = Napi::Object::New(env);
#define CAP(name) caps.Set(#name, Napi::Number::New(env, KVM_CAP_##name))
  CAP(IRQCHIP);
  CAP(HLT);
  CAP(USER_MEMORY);
  CAP(SET_TSS_ADDR);
  CAP(EXT_CPUID);
  CAP(NR_VCPUS);
  CAP(NR_MEMSLOTS);
  CAP(MULTI_ADDRESS_SPACE);
  CAP(MP_STATE);
  CAP(IMMEDIATE_EXIT);
  CAP(MAX_VCPUS);
  CAP(MAX_VCPU_ID);
  CAP(READONLY_MEM);
  CAP(SYNC_REGS);
  CAP(USER_MEMORY2);
  CAP(MEMORY_FAULT_INFO);
  CAP(MEMORY_ATTRIBUTES);
  CAP(GUEST_MEMFD);
  CAP(VM_TYPES);
  CAP(PRE_FAULT_MEMORY);
  CAP(GUEST_MEMFD_FLAGS);
  CAP(GUEST_MEMFD_MAPPABLE);
  CAP(EXIT_HYPERCALL);
  CAP(ENABLE_CAP);
  CAP(ENABLE_CAP_VM);
  // Caps whose answers the simulator's profiles set by rule (lib/sim/profiles.ts).
  CAP(XEN_HVM);
  CAP(HYPERV);
  CAP(HYPERV_VAPIC);
  CAP(HYPERV_SPIN);
  CAP(HYPERV_TIME);
  CAP(X86_SMM);
  CAP(HYPERV_SYNIC);
  CAP(X2APIC_API);
  CAP(X86_DISABLE_EXITS);
  CAP(HYPERV_SYNIC2);
  CAP(HYPERV_VP_INDEX);
  CAP(HYPERV_EVENTFD);
  CAP(HYPERV_TLBFLUSH);
  CAP(NESTED_STATE);
  CAP(HYPERV_SEND_IPI);
  CAP(HYPERV_CPUID);
  CAP(SMALLER_MAXPHYADDR);
  CAP(SYS_HYPERV_CPUID);
  CAP(SGX_ATTRIBUTE);
  CAP(HYPERV_ENFORCE_CPUID);
  CAP(DISABLE_QUIRKS2);
#undef CAP
  c.Set("caps", caps);

  Napi::Object ioctls = Napi::Object::New(env);
#define IOC(name, value) ioctls.Set(name, Napi::Number::New(env, static_cast<double>(value)))
  IOC("KVM_GET_API_VERSION", KVM_GET_API_VERSION);
  IOC("KVM_CREATE_VM", KVM_CREATE_VM);
  IOC("KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION);
  IOC("KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE);
  IOC("KVM_CREATE_VCPU", KVM_CREATE_VCPU);
  IOC("KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION);
  IOC("KVM_SET_USER_MEMORY_REGION2", KG_SET_USER_MEMORY_REGION2);
  IOC("KVM_SET_MEMORY_ATTRIBUTES", KG_SET_MEMORY_ATTRIBUTES);
  IOC("KVM_CREATE_GUEST_MEMFD", KG_CREATE_GUEST_MEMFD);
  IOC("KVM_RUN", KVM_RUN);
  IOC("KVM_PRE_FAULT_MEMORY", KG_PRE_FAULT_MEMORY);
  IOC("KVM_SET_MEMORY_ATTRIBUTES2", KG_SET_MEMORY_ATTRIBUTES2);
  IOC("KVM_GMEM_CONVERT_SHARED", KG_GMEM_CONVERT_SHARED);
  IOC("KVM_GMEM_CONVERT_PRIVATE", KG_GMEM_CONVERT_PRIVATE);
  IOC("KVM_GET_SUPPORTED_CPUID", KG_GET_SUPPORTED_CPUID);
  IOC("KVM_SET_CPUID2", KG_SET_CPUID2);
  IOC("KVM_GET_CPUID2", KG_GET_CPUID2);
  IOC("KVM_GET_MSR_INDEX_LIST", KG_GET_MSR_INDEX_LIST);
  IOC("KVM_GET_MSRS", KG_GET_MSRS);
  IOC("KVM_SET_MSRS", KG_SET_MSRS);
  IOC("KVM_ENABLE_CAP", KVM_ENABLE_CAP);
#undef IOC
  c.Set("ioctls", ioctls);

  Napi::Object vmTypes = Napi::Object::New(env);
  vmTypes.Set("DEFAULT", KVM_X86_DEFAULT_VM);
  vmTypes.Set("SW_PROTECTED", KVM_X86_SW_PROTECTED_VM);
  vmTypes.Set("SEV", KVM_X86_SEV_VM);
  vmTypes.Set("SEV_ES", KVM_X86_SEV_ES_VM);
  vmTypes.Set("SNP", KVM_X86_SNP_VM);
  vmTypes.Set("TDX", KVM_X86_TDX_VM);
  c.Set("vmTypes", vmTypes);

  Napi::Object flags = Napi::Object::New(env);
  flags.Set("GUEST_MEMFD_FLAG_MMAP", Napi::Number::New(env, static_cast<double>(GUEST_MEMFD_FLAG_MMAP)));
  flags.Set("GUEST_MEMFD_FLAG_INIT_SHARED", Napi::Number::New(env, static_cast<double>(GUEST_MEMFD_FLAG_INIT_SHARED)));
  flags.Set("KVM_MEM_LOG_DIRTY_PAGES", Napi::Number::New(env, KVM_MEM_LOG_DIRTY_PAGES));
  flags.Set("KVM_MEM_READONLY", Napi::Number::New(env, KVM_MEM_READONLY));
  flags.Set("KVM_MEM_GUEST_MEMFD", Napi::Number::New(env, KVM_MEM_GUEST_MEMFD));
  flags.Set("KVM_MEMORY_ATTRIBUTE_PRIVATE", Napi::Number::New(env, static_cast<double>(KVM_MEMORY_ATTRIBUTE_PRIVATE)));
  flags.Set("KVM_MEMORY_EXIT_FLAG_PRIVATE", Napi::Number::New(env, static_cast<double>(KVM_MEMORY_EXIT_FLAG_PRIVATE)));
  flags.Set("KVM_MAP_GPA_RANGE_ENCRYPTED", Napi::Number::New(env, KVM_MAP_GPA_RANGE_ENCRYPTED));
  flags.Set("KVM_MAP_GPA_RANGE_PAGE_SZ_2M", Napi::Number::New(env, KVM_MAP_GPA_RANGE_PAGE_SZ_2M));
  flags.Set("KVM_MAP_GPA_RANGE_PAGE_SZ_1G", Napi::Number::New(env, KVM_MAP_GPA_RANGE_PAGE_SZ_1G));
  c.Set("flags", flags);
  Napi::Object hypercalls = Napi::Object::New(env);
  hypercalls.Set("KVM_HC_MAP_GPA_RANGE", Napi::Number::New(env, KVM_HC_MAP_GPA_RANGE));
  c.Set("hypercalls", hypercalls);

  Napi::Object exits = Napi::Object::New(env);
#define EXIT(name) exits.Set(#name, Napi::Number::New(env, KVM_EXIT_##name))
  EXIT(UNKNOWN);
  EXIT(EXCEPTION);
  EXIT(IO);
  EXIT(HYPERCALL);
  EXIT(DEBUG);
  EXIT(HLT);
  EXIT(MMIO);
  EXIT(IRQ_WINDOW_OPEN);
  EXIT(SHUTDOWN);
  EXIT(FAIL_ENTRY);
  EXIT(INTR);
  EXIT(INTERNAL_ERROR);
  EXIT(SYSTEM_EVENT);
  EXIT(MEMORY_FAULT);
#undef EXIT
  c.Set("exits", exits);
  c.Set("PAGE_SIZE", 4096);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, CleanupHook, data);

  Napi::Function kvm = KvmObject::Init(env);
  data->vmCtor = Napi::Persistent(VmObject::Init(env));
  data->gmemCtor = Napi::Persistent(GuestMemfdObject::Init(env));
  data->mappingCtor = Napi::Persistent(MappingObject::Init(env));
  data->vcpuCtor = Napi::Persistent(InitVcpu(env));

  exports.Set("NativeKvm", kvm);
  exports.Set("setErrorFactory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                SetErrorFactory(info);
                return info.Env().Undefined();
              }));
  exports.Set("constants", Constants(env));
  InitExtentMap(env, exports);
  InitFaultInjection(env, exports);
  return exports;
}

}  // namespace

}  // namespace kg

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return kg::Init(env, exports); }

NODE_API_MODULE(kvm_gmem, InitAddon)
