// The teacher-logit cache's file format: "DTKDTLC1", key u64, rows i64, classes i64,
// checksum u64 (FNV-1a 64 of the logits), then rows*classes float32 (all little-endian,
// host order). Split from teacher_logit_cache.cpp so the reader can be fuzzed and tested
// without a teacher model.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace dtokd {

// The logits stored in `path` (float32 [rows, classes]), or an undefined tensor when the
// file is absent, has another key or shape, is truncated or longer, or does not verify:
// a cache miss, never an error. `rows` and `classes` are the caller's (the dataset's).
at::Tensor read_teacher_logit_file(const std::string &path, uint64_t key, int64_t rows, int64_t classes);

// Writes `logits` (float32 [rows, classes], contiguous) under `key` atomically.
void write_teacher_logit_file(const std::string &path, uint64_t key, const at::Tensor &logits);

}  // namespace dtokd
