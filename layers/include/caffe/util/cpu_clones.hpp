#ifndef CAFFE_UTIL_CPU_CLONES_HPP_
#define CAFFE_UTIL_CPU_CLONES_HPP_

// FASSST_AVX2_CLONES before a hot CPU loop compiles it twice, for AVX2 (twice the SSE2
// baseline's width) and the baseline, and picks one at load time on the CPU it runs on (GCC
// function multi-versioning), so one build is both portable and fast. No FMA: every clone does
// the same float operations in the same order, so results do not depend on the CPU.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__x86_64__)
#define FASSST_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FASSST_AVX2_CLONES
#endif

#endif  // CAFFE_UTIL_CPU_CLONES_HPP_
