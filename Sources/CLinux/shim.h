// Linux calls Glibc's Swift module does not export.
#pragma once
#include <sys/prctl.h>
#include <sys/resource.h>

/// prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace by same-uid processes.
static inline int enroll_disable_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

/// setrlimit(RLIMIT_CORE, 0).
static inline int enroll_disable_core_files(void) {
    struct rlimit none = { 0, 0 };
    return setrlimit(RLIMIT_CORE, &none);
}
