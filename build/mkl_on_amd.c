/* Opt-in (STITCHING_MKL_ON_AMD=1, see build/README.md "MKL on AMD"): libtorch's CPU build links Intel MKL, which
 * takes its generic code path unless this vendor check says Intel. libtorch_cpu.so exports the check and calls it
 * through its PLT, so a preloaded definition replaces it; MKL then picks code paths by the CPU's feature flags.
 * Built by ./stitch with the system C compiler into ~/.cache/stitching and preloaded (LD_PRELOAD). */
int mkl_serv_intel_cpu_true(void) { return 1; }
