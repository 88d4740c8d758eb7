// SPDX-License-Identifier: Apache-2.0
// tcx-attach OBJECT IFACE PIN: loads OBJECT's first program as a tc classifier, attaches
// it at IFACE's tcx egress hook by a BPF link pinned at PIN (removing the pin detaches
// it) and prints the program's id. For tests: bpftool 7.1 cannot attach at tcx.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <stdio.h>

// BPF_TCX_EGRESS in the kernel's enum bpf_attach_type (6.6 and later); the system's
// linux/bpf.h does not name it.
#define TCX_EGRESS 47

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tcx-attach OBJECT IFACE PIN\n");
    return 2;
  }
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  struct bpf_program *prog = obj ? bpf_object__next_program(obj, NULL) : NULL;
  if (!prog) {
    perror(argv[1]);
    return 1;
  }
  bpf_program__set_type(prog, BPF_PROG_TYPE_SCHED_CLS);
  if (bpf_object__load(obj)) {
    perror("load");
    return 1;
  }
  unsigned ifindex = if_nametoindex(argv[2]);
  if (!ifindex) {
    perror(argv[2]);
    return 1;
  }
  int link = bpf_link_create(bpf_program__fd(prog), (int)ifindex, TCX_EGRESS, NULL);
  if (link < 0 || bpf_obj_pin(link, argv[3])) {
    perror("tcx egress link");
    return 1;
  }
  struct bpf_prog_info info = {0};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
    perror("program info");
    return 1;
  }
  printf("%u\n", info.id);
  return 0;
}
