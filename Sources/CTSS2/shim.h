// Thin shim over tpm2-tss (ESYS). Constants defined from other macros do not
// import into Swift; they are re-exported here as static const values with an
// `enroll_` prefix (the macro names themselves would be expanded by the
// preprocessor). Casts of literals (TPM2_ALG_*, TPMA_OBJECT_*, ESYS_TR_*,
// TPM2_CAP_*, TPM2_ST_*, TPM2_RH_*) import directly and are not repeated here.
#ifndef ENROLL_AGENT_CTSS2_SHIM_H
#define ENROLL_AGENT_CTSS2_SHIM_H
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

// Response-code layers (TSS2_RC bits 16..23).
static const TSS2_RC enroll_TSS2_RC_LAYER_MASK = TSS2_RC_LAYER_MASK;
static const TSS2_RC enroll_TSS2_TPM_RC_LAYER = TSS2_TPM_RC_LAYER;
static const TSS2_RC enroll_TSS2_TCTI_RC_LAYER = TSS2_TCTI_RC_LAYER;
static const TSS2_RC enroll_TSS2_ESAPI_RC_LAYER = TSS2_ESAPI_RC_LAYER;
static const TSS2_RC enroll_TSS2_MU_RC_LAYER = TSS2_MU_RC_LAYER;
static const TSS2_RC enroll_TSS2_RESMGR_RC_LAYER = TSS2_RESMGR_RC_LAYER;
static const TSS2_RC enroll_TSS2_RESMGR_TPM_RC_LAYER = TSS2_RESMGR_TPM_RC_LAYER;

// TPM 2.0 response codes (layer 0), format 0 ("VER1") and format 1.
static const TPM2_RC enroll_TPM2_RC_VER1 = TPM2_RC_VER1;
static const TPM2_RC enroll_TPM2_RC_FMT1 = TPM2_RC_FMT1;
static const TPM2_RC enroll_TPM2_RC_WARN = TPM2_RC_WARN;
static const TPM2_RC enroll_TPM2_RC_INITIALIZE = TPM2_RC_INITIALIZE;
static const TPM2_RC enroll_TPM2_RC_FAILURE = TPM2_RC_FAILURE;
static const TPM2_RC enroll_TPM2_RC_DISABLED = TPM2_RC_DISABLED;
static const TPM2_RC enroll_TPM2_RC_ASYMMETRIC = TPM2_RC_ASYMMETRIC;
static const TPM2_RC enroll_TPM2_RC_HASH = TPM2_RC_HASH;
static const TPM2_RC enroll_TPM2_RC_VALUE = TPM2_RC_VALUE;
static const TPM2_RC enroll_TPM2_RC_HIERARCHY = TPM2_RC_HIERARCHY;
static const TPM2_RC enroll_TPM2_RC_KEY_SIZE = TPM2_RC_KEY_SIZE;
static const TPM2_RC enroll_TPM2_RC_AUTH_FAIL = TPM2_RC_AUTH_FAIL;
static const TPM2_RC enroll_TPM2_RC_BAD_AUTH = TPM2_RC_BAD_AUTH;
static const TPM2_RC enroll_TPM2_RC_SCHEME = TPM2_RC_SCHEME;
static const TPM2_RC enroll_TPM2_RC_SIZE = TPM2_RC_SIZE;
static const TPM2_RC enroll_TPM2_RC_KEY = TPM2_RC_KEY;
static const TPM2_RC enroll_TPM2_RC_INTEGRITY = TPM2_RC_INTEGRITY;
static const TPM2_RC enroll_TPM2_RC_OBJECT_MEMORY = TPM2_RC_OBJECT_MEMORY;
static const TPM2_RC enroll_TPM2_RC_SESSION_MEMORY = TPM2_RC_SESSION_MEMORY;
static const TPM2_RC enroll_TPM2_RC_MEMORY = TPM2_RC_MEMORY;
static const TPM2_RC enroll_TPM2_RC_OBJECT_HANDLES = TPM2_RC_OBJECT_HANDLES;
static const TPM2_RC enroll_TPM2_RC_YIELDED = TPM2_RC_YIELDED;
static const TPM2_RC enroll_TPM2_RC_TESTING = TPM2_RC_TESTING;
static const TPM2_RC enroll_TPM2_RC_LOCKOUT = TPM2_RC_LOCKOUT;
static const TPM2_RC enroll_TPM2_RC_RETRY = TPM2_RC_RETRY;
static const TPM2_RC enroll_TPM2_RC_NV_RATE = TPM2_RC_NV_RATE;

// TCTI / ESYS base codes the agent explains to a person.
static const TSS2_RC enroll_TSS2_BASE_RC_IO_ERROR = TSS2_BASE_RC_IO_ERROR;
static const TSS2_RC enroll_TSS2_BASE_RC_NO_CONNECTION = TSS2_BASE_RC_NO_CONNECTION;
static const TSS2_RC enroll_TSS2_BASE_RC_NOT_PERMITTED = TSS2_BASE_RC_NOT_PERMITTED;
static const TSS2_RC enroll_TSS2_BASE_RC_BAD_VALUE = TSS2_BASE_RC_BAD_VALUE;
static const TSS2_RC enroll_TSS2_BASE_RC_NOT_SUPPORTED = TSS2_BASE_RC_NOT_SUPPORTED;

// Handle ranges.
static const TPM2_HC enroll_TPM2_TRANSIENT_FIRST = TPM2_TRANSIENT_FIRST;
static const TPM2_HC enroll_TPM2_PERSISTENT_FIRST = TPM2_PERSISTENT_FIRST;
static const TPM2_HC enroll_TPM2_PERSISTENT_LAST = TPM2_PERSISTENT_LAST;
static const UINT32 enroll_TPM2_MAX_CAP_HANDLES = TPM2_MAX_CAP_HANDLES;

// Capability properties.
static const TPM2_PT enroll_TPM2_PT_MANUFACTURER = TPM2_PT_MANUFACTURER;

#endif
