// The KVM and guest_memfd uAPI this addon speaks, carried here because the distribution's
// <linux/kvm.h> (6.1 on Debian bookworm) predates guest_memfd. Values are from the 6.18 uAPI and
// the public conversion series (see shared/docs/kernel-uapi.md); each is guarded so a newer system
// header wins where it defines the same name.
#pragma once

#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/types.h>

#ifndef KVMIO
#define KVMIO 0xAE
#endif

// ---- capabilities --------------------------------------------------------------------------
#ifndef KVM_CAP_MULTI_ADDRESS_SPACE
#define KVM_CAP_MULTI_ADDRESS_SPACE 118
#endif
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif
// Proposed by the RFC v5 series, never merged; listed so `checkExtension` can name it.
#ifndef KVM_CAP_GUEST_MEMFD_MAPPABLE
#define KVM_CAP_GUEST_MEMFD_MAPPABLE 239
#endif

// ---- VM types (x86) ------------------------------------------------------------------------
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif
#ifndef KVM_X86_SEV_VM
#define KVM_X86_SEV_VM 2
#endif
#ifndef KVM_X86_SEV_ES_VM
#define KVM_X86_SEV_ES_VM 3
#endif
#ifndef KVM_X86_SNP_VM
#define KVM_X86_SNP_VM 4
#endif
#ifndef KVM_X86_TDX_VM
#define KVM_X86_TDX_VM 5
#endif

// ---- guest_memfd flags and memory slot flags -----------------------------------------------
#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif
#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1U << 2)
#endif
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif

// ---- structs --------------------------------------------------------------------------------
// Own names (kg_*) so they never clash with a newer system header's definitions.
struct kg_userspace_memory_region2 {
  __u32 slot;
  __u32 flags;
  __u64 guest_phys_addr;
  __u64 memory_size;
  __u64 userspace_addr;
  __u64 guest_memfd_offset;
  __u32 guest_memfd;
  __u32 pad1;
  __u64 pad2[14];
};
static_assert(sizeof(kg_userspace_memory_region2) == 160, "kvm_userspace_memory_region2 is 160 bytes");

struct kg_memory_attributes {
  __u64 address;
  __u64 size;
  __u64 attributes;
  __u64 flags;
};
static_assert(sizeof(kg_memory_attributes) == 32, "kvm_memory_attributes is 32 bytes");

struct kg_create_guest_memfd {
  __u64 size;
  __u64 flags;
  __u64 reserved[6];
};
static_assert(sizeof(kg_create_guest_memfd) == 64, "kvm_create_guest_memfd is 64 bytes");

struct kg_pre_fault_memory {
  __u64 gpa;
  __u64 size;
  __u64 flags;
  __u64 padding[5];
};
static_assert(sizeof(kg_pre_fault_memory) == 64, "kvm_pre_fault_memory is 64 bytes");

// In-place conversion series v8 (unmerged): an ioctl on the guest_memfd fd itself.
struct kg_memory_attributes2 {
  __u64 offset;
  __u64 size;
  __u64 attributes;
  __u64 flags;
  __u64 error_offset;
  __u64 reserved[11];
};
static_assert(sizeof(kg_memory_attributes2) == 128, "kvm_memory_attributes2 is 128 bytes");

// 1G-page series v2 (superseded): conversion ioctls on the guest_memfd fd.
struct kg_gmem_convert {
  __u64 offset;
  __u64 size;
  __u64 error_offset;
  __u64 reserved[5];
};
static_assert(sizeof(kg_gmem_convert) == 64, "kvm_gmem_convert is 64 bytes");

// ---- ioctl numbers ------------------------------------------------------------------------
#define KG_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kg_userspace_memory_region2)
#define KG_SET_MEMORY_ATTRIBUTES _IOW(KVMIO, 0xd2, struct kg_memory_attributes)
#define KG_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kg_create_guest_memfd)
#define KG_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kg_pre_fault_memory)
#define KG_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct kg_memory_attributes2)
#define KG_GMEM_CONVERT_SHARED _IOWR(0xAF, 0x41, struct kg_gmem_convert)
#define KG_GMEM_CONVERT_PRIVATE _IOWR(0xAF, 0x42, struct kg_gmem_convert)

static_assert(KG_SET_USER_MEMORY_REGION2 == 0x40A0AE49, "KVM_SET_USER_MEMORY_REGION2");
static_assert(KG_SET_MEMORY_ATTRIBUTES == 0x4020AED2, "KVM_SET_MEMORY_ATTRIBUTES");
static_assert(KG_CREATE_GUEST_MEMFD == 0xC040AED4, "KVM_CREATE_GUEST_MEMFD");
static_assert(KG_PRE_FAULT_MEMORY == 0xC040AED5, "KVM_PRE_FAULT_MEMORY");
static_assert(KG_SET_MEMORY_ATTRIBUTES2 == 0xC080AED2, "KVM_SET_MEMORY_ATTRIBUTES2");
static_assert(KG_GMEM_CONVERT_SHARED == 0xC040AF41, "KVM_GMEM_CONVERT_SHARED");
static_assert(KG_GMEM_CONVERT_PRIVATE == 0xC040AF42, "KVM_GMEM_CONVERT_PRIVATE");
static_assert(KVM_RUN == 0xAE80, "KVM_RUN");
static_assert(KVM_CHECK_EXTENSION == 0xAE03, "KVM_CHECK_EXTENSION");

// kvm_run.memory_fault (6.8+): the union member at the same offset as kvm_run.io; the 6.1 header
// lacks it, so the vCPU code reads it through this overlay.
struct kg_run_memory_fault {
  __u64 flags;
  __u64 gpa;
  __u64 size;
};
static_assert(sizeof(kg_run_memory_fault) == 24, "kvm_run.memory_fault is 24 bytes");

// kvm_cpuid2's header. <asm/kvm.h> declares its entries with __DECLARE_FLEX_ARRAY, which in C++
// adds a one-byte empty struct: sizeof becomes 12 and the ioctl numbers built from it are wrong.
// Entries (struct kvm_cpuid_entry2, 40 bytes) follow this header directly.
struct kg_cpuid2_header {
  __u32 nent;
  __u32 padding;
};
static_assert(sizeof(kg_cpuid2_header) == 8, "kvm_cpuid2 header is 8 bytes");
static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 is 40 bytes");
#define KG_GET_SUPPORTED_CPUID _IOWR(KVMIO, 0x05, struct kg_cpuid2_header)
#define KG_SET_CPUID2 _IOW(KVMIO, 0x90, struct kg_cpuid2_header)
static_assert(KG_GET_SUPPORTED_CPUID == 0xC008AE05, "KVM_GET_SUPPORTED_CPUID");
static_assert(KG_SET_CPUID2 == 0x4008AE90, "KVM_SET_CPUID2");

// MSRs: headers of our own for the same reason as kvm_cpuid2 above; entries follow directly.
struct kg_msr_list_header {
  __u32 nmsrs;
};
struct kg_msrs_header {
  __u32 nmsrs;
  __u32 pad;
};
static_assert(sizeof(struct kvm_msr_entry) == 16, "kvm_msr_entry is 16 bytes");
#define KG_GET_MSR_INDEX_LIST _IOWR(KVMIO, 0x02, struct kg_msr_list_header)
#define KG_GET_MSRS _IOWR(KVMIO, 0x88, struct kg_msrs_header)
#define KG_SET_MSRS _IOW(KVMIO, 0x89, struct kg_msrs_header)
#define KG_GET_CPUID2 _IOWR(KVMIO, 0x91, struct kg_cpuid2_header)
static_assert(KG_GET_MSR_INDEX_LIST == 0xC004AE02, "KVM_GET_MSR_INDEX_LIST");
static_assert(KG_GET_MSRS == 0xC008AE88, "KVM_GET_MSRS");
static_assert(KG_SET_MSRS == 0x4008AE89, "KVM_SET_MSRS");
static_assert(KG_GET_CPUID2 == 0xC008AE91, "KVM_GET_CPUID2");
static_assert(sizeof(struct kvm_enable_cap) == 104, "kvm_enable_cap is 104 bytes");
static_assert(KVM_ENABLE_CAP == 0x4068AEA3, "KVM_ENABLE_CAP");

// The hypercall exit (kvm_run.hypercall) and KVM_HC_MAP_GPA_RANGE's argument encoding
// (include/uapi/linux/kvm_para.h, arch/x86/include/uapi/asm/kvm_para.h).
#ifndef KVM_HC_MAP_GPA_RANGE
#define KVM_HC_MAP_GPA_RANGE 12
#endif
#ifndef KVM_MAP_GPA_RANGE_ENCRYPTED
#define KVM_MAP_GPA_RANGE_PAGE_SZ_4K 0
#define KVM_MAP_GPA_RANGE_PAGE_SZ_2M (1 << 0)
#define KVM_MAP_GPA_RANGE_PAGE_SZ_1G (1 << 1)
#define KVM_MAP_GPA_RANGE_ENCRYPTED (1 << 4)
#endif
#ifndef KVM_CAP_EXIT_HYPERCALL
#define KVM_CAP_EXIT_HYPERCALL 201
#endif
