// Internal: the schedule variants of every Halide kernel that has them, as typed function
// tables. All variants of one kernel are the same generator with other schedule params (or
// an autoscheduler), so they share the C signature of the default-schedule function.
// The tables are generated at build time from generators/CMakeLists.txt
// (DTOKD_KERNEL_VARIANTS, see runtime/CMakeLists.txt); the default comes first. Kernels
// built with NO_VARIANTS (the Gram for N != 2, the updates for N >= 3 gradients) are not
// here: kernels_halide.cpp calls them directly.
// Not thread-safe to change: select variants before running kernels concurrently.
#pragma once
#include <string>
#include <vector>

#include "dtokd_adamw_update1.h"
#include "dtokd_adamw_update2.h"
#include "dtokd_kd_loss.h"
#include "dtokd_log_gram.h"
#include "dtokd_sgd_update1.h"
#include "dtokd_sgd_update2.h"

namespace dtokd::detail {

using LogGramFn = decltype(&dtokd_log_gram);
using KdLossFn = decltype(&dtokd_kd_loss);
using SgdUpdate2Fn = decltype(&dtokd_sgd_update2);
using SgdUpdate1Fn = decltype(&dtokd_sgd_update1);
using AdamwUpdate2Fn = decltype(&dtokd_adamw_update2);
using AdamwUpdate1Fn = decltype(&dtokd_adamw_update1);

template <class Fn>
struct KernelVariant {
    std::string name;  // the generated function's name, e.g. dtokd_log_gram__w16_c16384
    Fn fn;
};

// One member per kernel, named as the kernel (the key in tuning files).
struct KernelVariantTables {
    std::vector<KernelVariant<LogGramFn>> log_gram;
    std::vector<KernelVariant<KdLossFn>> kd_loss;
    std::vector<KernelVariant<SgdUpdate2Fn>> sgd_update2;
    std::vector<KernelVariant<SgdUpdate1Fn>> sgd_update1;
    std::vector<KernelVariant<AdamwUpdate2Fn>> adamw_update2;
    std::vector<KernelVariant<AdamwUpdate1Fn>> adamw_update1;
};

// Every variant this binary was built with (generated source).
const KernelVariantTables &kernel_variant_tables();

// The functions the Halide back end calls now (kernel_selection.cpp): the defaults
// until a tuning file is loaded or a variant is selected.
struct SelectedKernels {
    LogGramFn log_gram = &dtokd_log_gram;
    KdLossFn kd_loss = &dtokd_kd_loss;
    SgdUpdate2Fn sgd_update2 = &dtokd_sgd_update2;
    SgdUpdate1Fn sgd_update1 = &dtokd_sgd_update1;
    AdamwUpdate2Fn adamw_update2 = &dtokd_adamw_update2;
    AdamwUpdate1Fn adamw_update1 = &dtokd_adamw_update1;
};
const SelectedKernels &selected_kernels();

}  // namespace dtokd::detail
